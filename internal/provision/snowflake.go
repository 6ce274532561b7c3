package provision

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/feedpipe/feedpipe/deploy"
)

// Column is one column of a Snowflake table.
type Column struct {
	Name string
	Type string // Snowflake type, e.g. NUMBER(38,0), VARCHAR, TIMESTAMP_NTZ
}

// SnowflakeNames are the Snowflake objects of one pipeline deployment: the
// variables of deploy/snowflake.sql.
type SnowflakeNames struct {
	Database    string
	Schema      string
	Table       string
	Stage       string // external stage on the destination bucket
	Versions    string // the loaded uploads of each key (pipelines with on_new_version = replace)
	FileFormat  string // the stage's Parquet file format
	Integration string // storage integration through which the stage reads the bucket
	Pipe        string // Snowpipe loading the stage into Table
	WorkerRole  string // the worker's role
	WorkerUser  string // the worker's user, granted WorkerRole
	Warehouse   string // the warehouse the worker's queries run on
	// RoleARN is the AWS role the storage integration assumes (the
	// CloudFormation stack's SnowflakeRoleArn output).
	RoleARN string
	Columns []Column
}

// DefaultSnowflakeNames is the layout of the local stack's sample customers feed.
// _FEED_ID and _LINE identify each row's source feed and line, so loads can be
// reconciled per feed and duplicates found.
func DefaultSnowflakeNames() SnowflakeNames {
	return SnowflakeNames{
		Database:    "FEEDPIPE",
		Schema:      "RAW",
		Table:       "CUSTOMERS",
		Stage:       "FEEDPIPE_DEST",
		Versions:    "FEEDPIPE_VERSIONS",
		FileFormat:  "FEEDPIPE_PARQUET",
		Integration: "FEEDPIPE_S3",
		Pipe:        "FEEDPIPE_PIPE",
		WorkerRole:  "FEEDPIPE_WORKER",
		WorkerUser:  "FEEDPIPE",
		Warehouse:   "FEEDPIPE_WH",
		RoleARN:     "arn:aws:iam::000000000000:role/feedpipe-snowflake",
		Columns: []Column{
			{"_FEED_ID", "VARCHAR"},
			{"_LINE", "BIGINT"},
			{"ID", "BIGINT"},
			{"NAME", "VARCHAR"},
			{"EMAIL", "VARCHAR"},
			{"COUNTRY", "VARCHAR"},
			{"BALANCE", "DOUBLE"},
			{"ACTIVE", "BOOLEAN"},
			{"SIGNED_UP", "VARCHAR"},
		},
	}
}

// SQLVars are the variables of deploy/snowflake.sql for n, with the stage on
// destBucket.
func SQLVars(n SnowflakeNames, destBucket string) map[string]string {
	var cols []string
	for _, c := range n.Columns {
		if c.Name != "_FEED_ID" && c.Name != "_LINE" { // the file declares them
			cols = append(cols, c.Name+" "+c.Type)
		}
	}
	return map[string]string{
		"database": n.Database, "schema": n.Schema, "table": n.Table, "columns": strings.Join(cols, ", "),
		"versions_table": n.Versions, "file_format": n.FileFormat, "integration": n.Integration,
		"stage": n.Stage, "pipe": n.Pipe, "bucket": destBucket, "snowflake_role_arn": n.RoleARN, "worker_role": n.WorkerRole,
		"worker_user": n.WorkerUser, "warehouse": n.Warehouse,
	}
}

// LocalS3 tells a Snowflake emulator (fakesnow, DuckDB inside) how to reach
// an S3 emulator; real Snowflake reaches S3 through the stage's storage
// integration instead.
type LocalS3 struct {
	Endpoint string // host:port
	KeyID    string
	Secret   string
	Region   string
}

// Snowflake applies deploy/snowflake.sql for n to a Snowflake emulator (the
// local stack's fakesnow): every statement but those the file marks as ones
// the emulator cannot take, which it returns. Production runs the whole file
// with snowsql. db must be a gosnowflake connection; each statement is sent
// on its own.
func Snowflake(ctx context.Context, db *sql.DB, n SnowflakeNames, destBucket string, local *LocalS3) ([]deploy.Statement, error) {
	stmts, err := deploy.Statements("deploy/snowflake.sql", deploy.SnowflakeSQL, SQLVars(n, destBucket))
	if err != nil {
		return nil, err
	}
	var run, skipped []deploy.Statement
	for _, s := range stmts {
		if s.LocalSkip != "" {
			skipped = append(skipped, s)
			continue
		}
		run = append(run, s)
	}
	if local != nil {
		// A DuckDB statement that fakesnow passes through: httpfs then reads
		// s3:// URLs from the emulator. Secrets live in the DuckDB instance,
		// so this is sent at every start. (fakesnow recognises CREATE SECRET
		// but not CREATE OR REPLACE SECRET.)
		run = append(run, deploy.Statement{SQL: fmt.Sprintf(
			"CREATE SECRET IF NOT EXISTS feedpipe_local_s3 (TYPE s3, KEY_ID '%s', SECRET '%s', REGION '%s', ENDPOINT '%s', URL_STYLE 'path', USE_SSL false)",
			local.KeyID, local.Secret, local.Region, local.Endpoint)})
	}
	for _, s := range run {
		if _, err := db.ExecContext(ctx, s.SQL); err != nil {
			if s.Line > 0 {
				return nil, fmt.Errorf("snowflake provisioning, deploy/snowflake.sql line %d %q: %w", s.Line, s.SQL, err)
			}
			return nil, fmt.Errorf("snowflake provisioning %q: %w", s.SQL, err)
		}
	}
	return skipped, nil
}

// CopyStatement is the pipe's COPY INTO (from deploy/snowflake.sql) for one
// file of the stage: the statement Snowpipe runs on auto-ingest, and the
// local stand-in runs too.
func CopyStatement(n SnowflakeNames, destBucket, key string) (string, error) {
	copy, err := PipeCopy(n, destBucket)
	if err != nil {
		return "", err
	}
	return deploy.CopyFile(copy, key)
}

// PipeCopy is the pipe's COPY INTO of deploy/snowflake.sql for a stage on
// destBucket, for deploy.CopyFile to narrow to one file.
func PipeCopy(n SnowflakeNames, destBucket string) (string, error) {
	stmts, err := deploy.Statements("deploy/snowflake.sql", deploy.SnowflakeSQL, SQLVars(n, destBucket))
	if err != nil {
		return "", err
	}
	copy, err := deploy.PipeCopy(stmts)
	if err != nil {
		return "", fmt.Errorf("deploy/snowflake.sql: %w", err)
	}
	return copy, nil
}
