// Package deploy holds the files that create feedpipe's resources outside
// the code: snowflake.sql, the Snowflake objects of a pipeline. Operators run
// it with snowsql; the local stack applies the same file to its emulator, so
// what the tests run on is what production gets.
package deploy

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// SnowflakeSQL is deploy/snowflake.sql.
//
//go:embed snowflake.sql
var SnowflakeSQL string

// Statement is one statement of a deploy SQL file.
type Statement struct {
	SQL  string
	Line int // where it starts in the file
	// LocalSkip, when set, is why the local stack's emulator cannot take the
	// statement (the file's "-- local: skip, WHY" mark).
	LocalSkip string
}

var variable = regexp.MustCompile(`&\{([a-z_]+)\}`)

// Statements splits a deploy SQL file into its statements, with its
// &{name} variables replaced by vars. A variable without a value is an
// error naming it and its line.
func Statements(file, text string, vars map[string]string) ([]Statement, error) {
	var out []Statement
	var cur []string
	var skip string
	start := 0
	var missing []string
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if len(cur) == 0 {
			if trimmed == "" {
				continue
			}
			if c, ok := strings.CutPrefix(trimmed, "--"); ok {
				if why, ok := strings.CutPrefix(strings.TrimSpace(c), "local: skip"); ok {
					skip = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(why), ","))
				}
				continue
			}
			start = i + 1
		}
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		line = variable.ReplaceAllStringFunc(line, func(m string) string {
			name := variable.FindStringSubmatch(m)[1]
			v, ok := vars[name]
			if !ok {
				missing = append(missing, fmt.Sprintf("&{%s} (line %d)", name, i+1))
			}
			return v
		})
		cur = append(cur, strings.TrimSpace(line))
		if strings.HasSuffix(trimmed, ";") {
			sql := strings.TrimSuffix(strings.Join(cur, " "), ";")
			out = append(out, Statement{SQL: strings.TrimSpace(sql), Line: start, LocalSkip: skip})
			cur, skip = nil, ""
		}
	}
	if len(cur) > 0 {
		return nil, fmt.Errorf("%s: the statement at line %d does not end with ;", file, start)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%s: no value for %s", file, strings.Join(missing, ", "))
	}
	return out, nil
}

// PipeCopy is the COPY INTO of the file's CREATE PIPE: what Snowpipe runs
// for each new file, and what the local stand-in runs.
func PipeCopy(stmts []Statement) (string, error) {
	for _, s := range stmts {
		if !strings.HasPrefix(strings.ToUpper(s.SQL), "CREATE PIPE") {
			continue
		}
		i := strings.Index(strings.ToUpper(s.SQL), " AS COPY INTO ")
		if i < 0 {
			return "", fmt.Errorf("the CREATE PIPE at line %d has no AS COPY INTO", s.Line)
		}
		return s.SQL[i+len(" AS "):], nil
	}
	return "", fmt.Errorf("no CREATE PIPE statement")
}

// CopyFile narrows a pipe's COPY INTO … FROM @stage … to one file of the
// stage (its path in the stage, here the S3 key), as Snowpipe does for the
// file a notification names.
func CopyFile(copy, path string) (string, error) {
	m := fromStage.FindStringIndex(copy)
	if m == nil {
		return "", fmt.Errorf("the pipe's COPY has no FROM @stage: %s", copy)
	}
	return copy[:m[1]] + " FILES = ('" + strings.ReplaceAll(path, "'", "''") + "')" + copy[m[1]:], nil
}

var fromStage = regexp.MustCompile(`(?i)\bFROM\s+@[A-Za-z0-9_$.]+`)

// AWSTemplate is deploy/aws.yaml, the CloudFormation template of the AWS
// side.
//
//go:embed aws.yaml
var AWSTemplate string
