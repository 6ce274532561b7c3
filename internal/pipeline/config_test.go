package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const minimal = `
[[pipeline]]
name = "c"
source_bucket = "src"
source_prefix = "c/"
stream = "s"
delivery_stream = "d"
staging_bucket = "st"
destination_bucket = "dst"
quarantine_bucket = "q"
snowflake = { database = "DB", schema = "S", table = "T" }
schema.columns = [ { name = "id", type = "int64" } ]
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pipelines[0]
	if c.TaskQueue != "feedpipe" || p.Conversion != ConvertLocal || p.Confirm != ConfirmCopyHistory || p.Deadlines.Delivery.Std() != 30*time.Minute {
		t.Errorf("defaults: %+v", c)
	}
	if p.OnNewVersion != NewVersionReplace || p.VersionsTable != "FEEDPIPE_VERSIONS" {
		t.Errorf("on_new_version %q, versions_table %q; want replace and FEEDPIPE_VERSIONS", p.OnNewVersion, p.VersionsTable)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	for name, c := range map[string]struct{ text, want string }{
		"unknown key":    {minimal + "\nstreem = \"x\"\n", "unknown key pipeline.streem"},
		"missing":        {strings.Replace(minimal, `stream = "s"`, "", 1), "stream is required"},
		"conversion":     {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\nconversion = \"spark\"", 1), `conversion = "spark"`},
		"glue job":       {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\nconversion = \"glue\"", 1), "needs glue_job"},
		"staging prefix": {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\nstaging_prefix = \"raw\"", 1), `staging_prefix = "raw" must end with "/"`},
		"ratio":          {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\nmax_rejected_ratio = 5.0", 1), "max_rejected_ratio"},
		"duration":       {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\ndeadlines = { put = \"soon\" }", 1), `"soon" is not a duration`},
		"bad type":       {strings.Replace(minimal, `"int64"`, `"integer"`, 1), `unknown type "integer"`},
		"syntax":         {minimal + "\n[[pipeline]\n", "line"},
		"new version":    {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\non_new_version = \"overwrite\"", 1), `on_new_version = "overwrite"; use "replace"`},
		"versions table": {strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\nversions_table = \"v; DROP TABLE T\"", 1), `versions_table = "v; DROP TABLE T" is not a plain Snowflake identifier`},
		"table name":     {strings.Replace(minimal, `table = "T"`, `table = "my-table"`, 1), `snowflake.table = "my-table" is not a plain Snowflake identifier`},
		"pipe name":      {strings.Replace(minimal, `table = "T"`, `table = "T", pipe = "P.Q"`, 1), `snowflake.pipe = "P.Q" is not a plain Snowflake identifier`},
		"same routing":   {minimal + strings.Replace(minimal, `name = "c"`, `name = "d"`, 1), "both route s3://src/c/"},
		"empty object":   {strings.Replace(minimal, `{ name = "id", type = "int64" }`, `{ name = "id", type = "int64" }, { name = "a", type = "object" }`, 1), `column "a": an object needs fields`},
		"no items":       {strings.Replace(minimal, `{ name = "id", type = "int64" }`, `{ name = "id", type = "int64" }, { name = "l", type = "list" }`, 1), `column "l": a list needs items`},
		"nested type": {strings.Replace(minimal, `{ name = "id", type = "int64" }`, `{ name = "id", type = "int64" }, { name = "a", type = "object", fields = [ { name = "b", type = "list", items = { type = "uuid" } } ] }`, 1),
			`column "a.b[]": unknown type "uuid"`},
		"firehose nested": {strings.Replace(strings.Replace(minimal, `stream = "s"`, "stream = \"s\"\nconversion = \"firehose\"", 1),
			`{ name = "id", type = "int64" }`, `{ name = "id", type = "int64" }, { name = "tags", type = "list", items = { type = "string" } }`, 1),
			`column "tags" is of type list, but conversion = "firehose"`},
	} {
		_, err := Parse("t.toml", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "t.toml") {
			t.Errorf("%s: %v, want an error naming t.toml and %q", name, err, c.want)
		}
	}
}

func TestRouteLongestPrefix(t *testing.T) {
	text := minimal + strings.NewReplacer(`name = "c"`, `name = "deep"`, `source_prefix = "c/"`, `source_prefix = "c/deep/"`).Replace(minimal)
	c, err := Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"c/a.ndjson": "c", "c/deep/a.ndjson": "deep"} {
		p, err := c.Route("src", key)
		if err != nil || p.Name != want {
			t.Errorf("Route(%s) = %v, %v; want %s", key, p, err, want)
		}
	}
	if _, err := c.Route("src", "other/a"); err == nil || !strings.Contains(err.Error(), "no pipeline routes s3://src/other/a") {
		t.Errorf("unrouted key: %v", err)
	}
}

// The configs shipped in the repository load.
func TestShippedConfigsLoad(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, name := range []string{"pipelines.local.toml", "pipelines.example.toml"} {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := Load(filepath.Join(root, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A column named _feed_id or _line in another case would be the column
// feedpipe adds, in Snowflake, whose names ignore case (issue 9, review 6).
func TestReservedColumnNamesIgnoreCase(t *testing.T) {
	for _, name := range []string{"_LINE", "_Feed_Id", "_line"} {
		text := strings.Replace(minimal, `{ name = "id", type = "int64" }`, `{ name = "id", type = "int64" }, { name = "`+name+`", type = "string" }`, 1)
		if _, err := Parse("t.toml", []byte(text)); err == nil || !strings.Contains(err.Error(), `column "`+name+`" is reserved`) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// parquet_plain_integers is off by default and set per pipeline; it goes
// with the pipeline into a run's input (JSON), and a run started before
// the key existed reads as off.
func TestParquetPlainIntegers(t *testing.T) {
	c, err := Parse("t.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Pipelines[0].ParquetPlainIntegers {
		t.Error("parquet_plain_integers is on by default")
	}
	c, err = Parse("t.toml", []byte(minimal+"parquet_plain_integers = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c.Pipelines[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Pipeline
	if err := json.Unmarshal(b, &back); err != nil || !back.ParquetPlainIntegers {
		t.Errorf("parquet_plain_integers = true: through JSON %v, %v", back.ParquetPlainIntegers, err)
	}
	var old Pipeline
	if err := json.Unmarshal([]byte(`{"Name":"c"}`), &old); err != nil || old.ParquetPlainIntegers {
		t.Errorf("an older run's pipeline: %v, %v", old.ParquetPlainIntegers, err)
	}
}
