package provision

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// glueScriptFile writes the Glue job script as the binary embeds it (and
// uploads it) to a file for the tests to run. Using GlueScript, not the
// source file, also keeps the script in the test binary, so that go test's
// cache sees a change to it.
func glueScriptFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "convert_ndjson.py")
	if err := os.WriteFile(path, GlueScript, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// glueTable runs the Glue job script's build_table on records (NDJSON) typed
// by cols, with the project's venv, writes the table to Parquet and reads it
// back with pyarrow. It returns the rows, or the job's error message.
func glueTable(t *testing.T, cols []schema.Column, records string) ([]map[string]any, string) {
	t.Helper()
	colJSON, err := json.Marshal(cols) // as StartGlueRun passes them
	if err != nil {
		t.Fatal(err)
	}
	const driver = `
import decimal, importlib.util, io, json, sys
import pyarrow.parquet as pq
spec = importlib.util.spec_from_file_location("job", sys.argv[1])
job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)
records = [json.loads(l, parse_float=decimal.Decimal) for l in sys.argv[3].splitlines()]
try:
    table = job.build_table(records, json.loads(sys.argv[2]))
except job.ColumnError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(0)
buf = io.BytesIO()
pq.write_table(table, buf)
print(json.dumps({"rows": pq.read_table(io.BytesIO(buf.getvalue())).to_pylist()}, default=str))
`
	out := pyarrowtest.Run(t, driver, glueScriptFile(t), string(colJSON), records)
	var res struct {
		Rows  []map[string]any
		Error string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return res.Rows, res.Error
}

var glueCols = []schema.Column{
	{Name: "id", Type: schema.Int64},
	{Name: "amount", Type: schema.Decimal, Precision: 10, Scale: 2, Nullable: true},
	{Name: "at", Type: schema.Timestamp, Nullable: true},
	{Name: "day", Type: schema.Date, Nullable: true},
	{Name: "label", Type: schema.String, Nullable: true, AnyScalar: true},
	{Name: "meta", Type: schema.JSON, Nullable: true},
	{Name: "addr", Type: schema.Object, Nullable: true, Fields: []schema.Column{
		{Name: "city", Type: schema.String, Nullable: true},
		{Name: "geo", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Float64, Nullable: true}},
	}},
	{Name: "events", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Object, Fields: []schema.Column{
		{Name: "n", Type: schema.Int64, Nullable: true},
	}}},
}

// The Glue job types every kind of column the local converter does: exact
// decimals, UTC microsecond timestamps, dates, objects as structs and lists
// as lists.
func TestGlueScriptTypesEveryColumnKind(t *testing.T) {
	rows, errMsg := glueTable(t, glueCols, strings.Join([]string{
		`{"_feed_id":"f","_line":1,"id":1,"amount":12.3,"at":"2026-01-02T03:04:05.123456789+01:00","day":"2026-01-31","label":7,"meta":{"a":[1,2.5]},"addr":{"city":"Oslo","geo":[59.9,null]},"events":[{"n":1},{"n":null}],"extra":true}`,
		`{"_feed_id":"f","_line":2,"id":2,"amount":"0.05","at":"2026-01-02","label":true,"addr":null,"events":[]}`,
	}, "\n"))
	if errMsg != "" {
		t.Fatal(errMsg)
	}
	want := []map[string]any{
		{"_feed_id": "f", "_line": 1.0, "id": 1.0, "amount": "12.30", "at": "2026-01-02 02:04:05.123456+00:00", "day": "2026-01-31",
			"label": "7", "meta": `{"a":[1,2.5]}`, "addr": map[string]any{"city": "Oslo", "geo": []any{59.9, nil}},
			"events": []any{map[string]any{"n": 1.0}, map[string]any{"n": nil}}},
		{"_feed_id": "f", "_line": 2.0, "id": 2.0, "amount": "0.05", "at": "2026-01-02 00:00:00+00:00", "day": nil,
			"label": "true", "meta": nil, "addr": nil, "events": []any{}},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		g, _ := json.Marshal(rows[i])
		w, _ := json.Marshal(want[i])
		if string(g) != string(w) {
			t.Errorf("row %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
}

// A value that does not fit fails the job with the line and the field's path.
func TestGlueScriptNamesTheLineAndField(t *testing.T) {
	for rec, want := range map[string]string{
		`{"_line":3,"id":1,"amount":1.234}`:               "line 3: field amount: 1.234 has more digits after the point",
		`{"_line":4,"id":1,"amount":123456789.5}`:         "more than the 10 digits",
		`{"_line":5,"id":1,"at":"yesterday"}`:             "field at: 'yesterday' is not an RFC 3339 timestamp",
		`{"_line":6,"id":1,"addr":{"geo":["x"]}}`:         "field addr.geo[1]: want a number",
		`{"_line":7,"id":1,"events":[null]}`:              "field events[1] is required",
		`{"_line":8,"amount":1}`:                          "field id is required",
		`{"_line":9,"id":1,"addr":[1]}`:                   "field addr: want an object",
		`{"_line":10,"id":1,"at":"2026-02-30T00:00:00Z"}`: "not an RFC 3339 timestamp",
		`{"_line":11,"id":1.5}`:                           "field id: want an integer",
	} {
		_, errMsg := glueTable(t, glueCols, rec)
		if !strings.Contains(errMsg, want) {
			t.Errorf("%s: error %q, want %q", rec, errMsg, want)
		}
	}
}

// glueJobDriver runs the Glue job script's main against an in-process fake
// of the S3 calls it makes (list_objects_v2 two keys a page, get_object with
// a streaming body, upload_file), with the job arguments on the command line
// (Glue) or in the environment (MiniStack). It prints what happened as JSON
// and copies the file uploaded to TARGET to cfg["out"].
const glueJobDriver = `
import contextlib, importlib.util, io, json, os, sys
import pyarrow.parquet as pq
spec = importlib.util.spec_from_file_location("job", sys.argv[1])
job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)
cfg = json.loads(sys.argv[2])
for name in ("BATCH_ROWS", "BATCH_BYTES", "READ_CHUNK"):
    if cfg.get(name):
        setattr(job, name, cfg[name])
stats = {"lists": 0, "open": 0, "max_open": 0, "max_read": 0, "max_batch": 0, "uploads": []}

class Body:
    def __init__(self, data):
        self.data, self.pos, self.closed = data, 0, False
        stats["open"] += 1
        stats["max_open"] = max(stats["max_open"], stats["open"])
    def read(self, n=-1):
        assert n > 0, "the job reads a whole object at once"
        stats["max_read"] = max(stats["max_read"], n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk
    def close(self):
        if not self.closed:
            self.closed = True
            stats["open"] -= 1

class FakeS3:
    def __init__(self, objects):
        self.objects = {tuple(k.split("/", 1)): v.encode() for k, v in objects.items()}
    def list_objects_v2(self, Bucket, Prefix="", ContinuationToken=None):
        stats["lists"] += 1
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
        start = int(ContinuationToken or 0)
        page = keys[start:start + 2]
        resp = {"KeyCount": len(page), "IsTruncated": start + 2 < len(keys)}
        if page:
            resp["Contents"] = [{"Key": k, "Size": len(self.objects[(Bucket, k)])} for k in page]
        if resp["IsTruncated"]:
            resp["NextContinuationToken"] = str(start + 2)
        return resp
    def get_object(self, Bucket, Key):
        return {"Body": Body(self.objects[(Bucket, Key)])}
    def upload_file(self, Filename, Bucket, Key):
        stats["uploads"].append(Bucket + "/" + Key)
        with open(Filename, "rb") as src, open(cfg["out"], "wb") as dst:
            dst.write(src.read())

fake = FakeS3(cfg["objects"] or {})
job.s3_client = lambda: fake
build_table = job.build_table
def counting_build_table(records, *args, **kwargs):
    stats["max_batch"] = max(stats["max_batch"], len(records))
    return build_table(records, *args, **kwargs)
job.build_table = counting_build_table

sys.argv = [sys.argv[1]]
for name in ("STAGING", "LINES", "TARGET", "FEED_ID", "COLUMNS", "WORKFLOW_ID"):
    os.environ.pop(name, None)
for name, value in cfg["args"].items():
    if cfg["env"]:
        os.environ[name] = value
    else:
        sys.argv += ["--" + name, value]
out, err = io.StringIO(), io.StringIO()
stats["exit"] = 0
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        job.main()
    except SystemExit as e:
        stats["exit"] = e.code
stats["stdout"], stats["stderr"] = out.getvalue(), err.getvalue()
if stats["uploads"]:
    stats["schema"] = str(pq.read_schema(cfg["out"]))
print(json.dumps(stats))
`

// glueJobRun is one run of the Glue job script against the fake S3.
type glueJobRun struct {
	Objects map[string]string `json:"objects"` // "bucket/key": content
	Args    map[string]string `json:"args"`    // job arguments by name
	Env     bool              `json:"env"`     // arguments as environment variables (MiniStack), not --NAME value (Glue)
	// Module settings replaced for the run, when not zero.
	BatchRows  int `json:"BATCH_ROWS,omitempty"`
	BatchBytes int `json:"BATCH_BYTES,omitempty"`
	ReadChunk  int `json:"READ_CHUNK,omitempty"`
}

// glueJobResult is what the run did.
type glueJobResult struct {
	Exit     int      `json:"exit"`
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr"`
	Lists    int      `json:"lists"`     // list_objects_v2 calls
	Open     int      `json:"open"`      // object bodies not closed
	MaxOpen  int      `json:"max_open"`  // object bodies open at once
	MaxRead  int      `json:"max_read"`  // largest read of a body
	MaxBatch int      `json:"max_batch"` // most records given to build_table at once
	Uploads  []string `json:"uploads"`
	Schema   string   `json:"schema"` // of the uploaded file, with nullability
	File     pyarrowtest.File
}

func runGlueJob(t *testing.T, run glueJobRun) glueJobResult {
	t.Helper()
	out := filepath.Join(t.TempDir(), "target.parquet")
	cfg, err := json.Marshal(struct {
		glueJobRun
		Out string `json:"out"`
	}{run, out})
	if err != nil {
		t.Fatal(err)
	}
	var res glueJobResult
	printed := pyarrowtest.Run(t, glueJobDriver, glueScriptFile(t), string(cfg))
	if err := json.Unmarshal(printed, &res); err != nil {
		t.Fatalf("%v: %s", err, printed)
	}
	if len(res.Uploads) > 0 {
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		res.File = pyarrowtest.Read(t, data)
	}
	return res
}

// succeeded fails the test unless the run succeeded with one upload to the
// target, and returns the rows sorted by _line and the job's summary.
func (r glueJobResult) succeeded(t *testing.T) ([]map[string]any, map[string]any) {
	t.Helper()
	if r.Exit != 0 {
		t.Fatalf("job failed: %s", r.Stderr)
	}
	if len(r.Uploads) != 1 || r.Uploads[0] != "dest/feeds/f1.parquet" {
		t.Fatalf("uploads %v, want [dest/feeds/f1.parquet]", r.Uploads)
	}
	if r.Open != 0 || r.MaxOpen > 1 {
		t.Errorf("%d object bodies left open, %d open at once; want 0 and 1", r.Open, r.MaxOpen)
	}
	var summary map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &summary); err != nil {
		t.Fatalf("job's summary: %v: %q", err, r.Stdout)
	}
	rows := append([]map[string]any(nil), r.File.Rows...)
	sort.Slice(rows, func(i, j int) bool { return rows[i]["_line"].(float64) < rows[j]["_line"].(float64) })
	return rows, summary
}

// failed fails the test unless the run failed, uploaded nothing and said want.
func (r glueJobResult) failed(t *testing.T, want string) {
	t.Helper()
	if r.Exit != 1 {
		t.Errorf("exit %d, want 1 (stderr %q)", r.Exit, r.Stderr)
	}
	if len(r.Uploads) != 0 {
		t.Errorf("uploaded %v, want nothing", r.Uploads)
	}
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("error %q, want it to contain %q", r.Stderr, want)
	}
	t.Log(strings.TrimSpace(r.Stderr))
}

const glueStaging = "staging/raw/feed=f1/2026/01/02/"

// glueArgs are the job arguments for feed f1 of lines lines staged under
// s3://staging/raw/feed=f1/, typed by cols (none: inferred).
func glueArgs(t *testing.T, lines int, cols []schema.Column) map[string]string {
	t.Helper()
	args := map[string]string{"STAGING": "s3://staging/raw/feed=f1/", "LINES": strconv.Itoa(lines),
		"TARGET": "s3://dest/feeds/f1.parquet", "FEED_ID": "f1", "WORKFLOW_ID": "wf-1"}
	if cols != nil {
		b, err := json.Marshal(cols)
		if err != nil {
			t.Fatal(err)
		}
		args["COLUMNS"] = string(b)
	}
	return args
}

var glueJobCols = []schema.Column{
	{Name: "id", Type: schema.Int64},
	{Name: "name", Type: schema.String, Nullable: true},
	{Name: "amount", Type: schema.Decimal, Precision: 10, Scale: 2, Nullable: true},
	{Name: "tags", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.String}},
}

func ndjson(lines ...string) string { return strings.Join(lines, "\n") }

// The job lists the feed's staging prefix page by page, reads its objects one
// at a time in chunks (lines split across chunks), keeps one row per line
// (duplicates within and across objects dropped, another feed's record
// skipped, a neighbouring feed's prefix not read) and uploads a typed Parquet
// file; with the arguments as Glue passes them and as MiniStack does.
func TestGlueJobStreamsTheFeedPrefixToParquet(t *testing.T) {
	rec := func(line int, rest string) string { return fmt.Sprintf(`{"_feed_id":"f1","_line":%d,%s}`, line, rest) }
	r1, r2, r3 := rec(1, `"id":10,"name":"a","amount":1.5,"tags":["x","y"]`), rec(2, `"id":20,"name":null,"amount":"0.05"`), rec(3, `"id":30,"extra":{"k":1}`)
	r4, r5 := rec(4, `"id":40,"name":"a much longer name than one read chunk holds","tags":[]`), rec(5, `"id":50,"amount":-7`)
	r6 := rec(6, `"id":60,"name":"ü"`)
	objects := map[string]string{
		glueStaging + "03/a": ndjson(r1, r2, "", r3) + "\n",
		glueStaging + "03/b": ndjson(r2, `{"_feed_id":"f2","_line":99,"id":"not f1's"}`, r4),
		glueStaging + "04/c": ndjson(r5, r1, r6, r6) + "\n",
		glueStaging + "04/d": ndjson(r3),
		glueStaging + "05/":  "",
		// A neighbouring feed's prefix: reading it would fail (line 7 of 6).
		"staging/raw/feed=f10/2026/01/02/03/a": rec(7, `"id":70`),
	}
	want := []string{
		`{"_feed_id":"f1","_line":1,"amount":"1.50","id":10,"name":"a","tags":["x","y"]}`,
		`{"_feed_id":"f1","_line":2,"amount":"0.05","id":20,"name":null,"tags":null}`,
		`{"_feed_id":"f1","_line":3,"amount":null,"id":30,"name":null,"tags":null}`,
		`{"_feed_id":"f1","_line":4,"amount":null,"id":40,"name":"a much longer name than one read chunk holds","tags":[]}`,
		`{"_feed_id":"f1","_line":5,"amount":"-7.00","id":50,"name":null,"tags":null}`,
		`{"_feed_id":"f1","_line":6,"amount":null,"id":60,"name":"ü","tags":null}`,
	}
	for _, env := range []bool{false, true} {
		t.Run(fmt.Sprintf("env=%v", env), func(t *testing.T) {
			res := runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 6, glueJobCols), Env: env, ReadChunk: 16})
			rows, summary := res.succeeded(t)
			if len(rows) != len(want) {
				t.Fatalf("%d rows, want %d: %v", len(rows), len(want), rows)
			}
			for i := range want {
				if got, _ := json.Marshal(rows[i]); string(got) != want[i] {
					t.Errorf("row %d:\n got %s\nwant %s", i+1, got, want[i])
				}
			}
			wantSchema := map[string]string{"_feed_id": "string", "_line": "int64", "id": "int64", "name": "string",
				"amount": "decimal128(10, 2)", "tags": "list<element: string not null>"}
			if fmt.Sprint(res.File.Schema) != fmt.Sprint(wantSchema) {
				t.Errorf("schema %v, want %v", res.File.Schema, wantSchema)
			}
			for k, v := range map[string]float64{"rows": 6, "lines": 6, "missing": 0, "objects": 4, "duplicates": 4, "other_feeds": 1, "row_groups": 1} {
				if summary[k] != v {
					t.Errorf("summary %s = %v, want %v (%s)", k, summary[k], v, res.Stdout)
				}
			}
			if res.Lists != 3 {
				t.Errorf("%d list_objects_v2 calls, want 3 (5 keys, 2 a page)", res.Lists)
			}
			if res.MaxRead != 16 {
				t.Errorf("largest read %d bytes, want READ_CHUNK (16)", res.MaxRead)
			}
		})
	}
}

// The job holds one batch of records at a time and writes each as a row
// group; without COLUMNS every batch takes the first batch's inferred types
// (integers widened to a float column, nulls and new keys' absence allowed).
func TestGlueJobBatchBoundsTheRowsHeld(t *testing.T) {
	// Lines 1-6 in object a, 7-10 and copies of 1 and 2 in b. The first batch
	// (lines 1-3) types score as a float and note as a string; later lines
	// have integer scores and no note.
	var recs []string
	for line := 1; line <= 10; line++ {
		r := fmt.Sprintf(`{"_feed_id":"f1","_line":%d,"id":%d,"score":%d.5,"note":"n%d"}`, line, line, line, line)
		if line > 3 {
			r = fmt.Sprintf(`{"_feed_id":"f1","_line":%d,"id":%d,"score":%d}`, line, line, line)
		}
		recs = append(recs, r)
	}
	objects := map[string]string{glueStaging + "03/a": ndjson(recs[:6]...), glueStaging + "03/b": ndjson(append(recs[6:], recs[0], recs[1])...)}

	t.Run("columns", func(t *testing.T) {
		cols := []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "score", Type: schema.Float64}}
		res := runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 10, cols), BatchRows: 3})
		rows, summary := res.succeeded(t)
		if res.MaxBatch != 3 {
			t.Errorf("build_table got up to %d records at once, want 3", res.MaxBatch)
		}
		if fmt.Sprint(res.File.RowGroups) != "[3 3 3 1]" {
			t.Errorf("row groups %v, want [3 3 3 1]", res.File.RowGroups)
		}
		if len(rows) != 10 || summary["duplicates"] != 2.0 || summary["row_groups"] != 4.0 {
			t.Fatalf("%d rows, summary %s", len(rows), res.Stdout)
		}
		for i, r := range rows {
			if r["_line"] != float64(i+1) || r["id"] != float64(i+1) {
				t.Errorf("row %d = %v", i+1, r)
			}
		}
	})
	t.Run("inferred", func(t *testing.T) {
		res := runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 10, nil), BatchRows: 3})
		rows, _ := res.succeeded(t)
		if fmt.Sprint(res.File.RowGroups) != "[3 3 3 1]" || res.MaxBatch != 3 {
			t.Errorf("row groups %v, batches of up to %d; want [3 3 3 1] and 3", res.File.RowGroups, res.MaxBatch)
		}
		wantSchema := map[string]string{"_feed_id": "string", "_line": "int64", "id": "int64", "score": "double", "note": "string"}
		if fmt.Sprint(res.File.Schema) != fmt.Sprint(wantSchema) {
			t.Errorf("schema %v, want %v (the first batch's)", res.File.Schema, wantSchema)
		}
		if len(rows) != 10 || rows[9]["score"] != 10.0 || rows[9]["note"] != nil || rows[0]["score"] != 1.5 || rows[0]["note"] != "n1" {
			t.Errorf("rows %v", rows)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		res := runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 10, nil), BatchBytes: 1})
		res.succeeded(t)
		if len(res.File.RowGroups) != 10 || res.MaxBatch != 1 {
			t.Errorf("row groups %v, batches of up to %d; want a row each", res.File.RowGroups, res.MaxBatch)
		}
	})
}

// A feed without records (none staged, or only another feed's) gets a valid
// Parquet file with no rows and the schema a file with records has.
func TestGlueJobWithoutRecordsWritesAnEmptyFile(t *testing.T) {
	full := runGlueJob(t, glueJobRun{Objects: map[string]string{glueStaging + "03/a": `{"_feed_id":"f1","_line":1,"id":1}`},
		Args: glueArgs(t, 1, glueJobCols)})
	full.succeeded(t)
	for name, objects := range map[string]map[string]string{
		"nothing staged":  {"staging/raw/feed=f2/2026/01/02/03/a": `{"_feed_id":"f2","_line":1,"id":1}`},
		"other feed only": {glueStaging + "03/a": `{"_feed_id":"f2","_line":1,"id":1}` + "\n\n"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 0, glueJobCols)})
			rows, summary := res.succeeded(t)
			if len(rows) != 0 || len(res.File.RowGroups) != 0 || summary["rows"] != 0.0 {
				t.Errorf("rows %v, row groups %v, summary %s; want none", rows, res.File.RowGroups, res.Stdout)
			}
			if res.Schema != full.Schema || !strings.Contains(res.Schema, "_feed_id: string not null\n_line: int64 not null\nid: int64 not null") {
				t.Errorf("schema\n%s\nwant that of a file with records:\n%s", res.Schema, full.Schema)
			}
		})
	}
	t.Run("inferred", func(t *testing.T) {
		res := runGlueJob(t, glueJobRun{Args: glueArgs(t, 0, nil)})
		res.succeeded(t)
		if want := map[string]string{"_feed_id": "string", "_line": "int64"}; fmt.Sprint(res.File.Schema) != fmt.Sprint(want) {
			t.Errorf("schema %v, want %v", res.File.Schema, want)
		}
	})
}

// Bad input fails the job, uploading nothing, with a message that names the
// object, the line in it and, for a value, the record's _line and the field.
func TestGlueJobFailsNamingTheObjectAndLine(t *testing.T) {
	const obj = "s3://" + glueStaging + "03/b"
	ok := `{"_feed_id":"f1","_line":1,"id":1,"score":1}`
	for _, tc := range []struct {
		name      string
		record    string // line 3 of object b, after a good record and a blank line
		cols      []schema.Column
		batchRows int
		want      string
	}{
		{"line past the feed", `{"_feed_id":"f1","_line":4,"id":2}`, glueJobCols, 0,
			obj + " line 3: _line 4 is out of range: the feed has 3 lines"},
		{"line zero", `{"_feed_id":"f1","_line":0,"id":2}`, glueJobCols, 0, obj + " line 3: _line 0 is out of range"},
		{"line not a number", `{"_feed_id":"f1","_line":"2","id":2}`, glueJobCols, 0, obj + ` line 3: _line "2" is not a line number`},
		{"not JSON", `{"_feed_id":"f1",`, glueJobCols, 0, obj + " line 3: not JSON"},
		{"not a record", `{"_feed_id":"f1","id":2}`, glueJobCols, 0, obj + " line 3: not a feedpipe record (no _line)"},
		{"value", `{"_feed_id":"f1","_line":2,"id":2,"amount":1.234}`, glueJobCols, 0,
			"records of feed f1 do not fit the columns: " + obj + " line 3 (_line 2): field amount: 1.234 has more digits after the point"},
		{"nested value", `{"_feed_id":"f1","_line":2,"id":2,"tags":["a",7]}`, glueJobCols, 0,
			obj + " line 3 (_line 2): field tags[2]: want a string"},
		{"integer too big", `{"_feed_id":"f1","_line":2,"id":9223372036854775808}`, glueJobCols, 0,
			obj + " line 3 (_line 2): field id: 9223372036854775808 does not fit a 64-bit integer"},
		{"inferred: conflict in the first batch", `{"_feed_id":"f1","_line":2,"id":"x"}`, nil, 0,
			"do not fit the types inferred from its first records (declare the pipeline's columns to type them): " + obj + " line 3 (_line 2): field id:"},
		{"inferred: fraction in an integer column", `{"_feed_id":"f1","_line":2,"id":1.5}`, nil, 1,
			obj + " line 3 (_line 2): field id: want int64, got double"},
		{"inferred: string in an integer column", `{"_feed_id":"f1","_line":2,"id":"7"}`, nil, 1,
			obj + " line 3 (_line 2): field id: want int64, got string"},
		{"inferred: object in an integer column", `{"_feed_id":"f1","_line":2,"id":2,"score":{"a":1}}`, nil, 1,
			obj + " line 3 (_line 2): field score: want int64, got struct<a: int64>"},
		{"inferred: list in an integer column", `{"_feed_id":"f1","_line":2,"id":2,"score":[1]}`, nil, 1,
			obj + " line 3 (_line 2): field score: want int64, got list<item: int64>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objects := map[string]string{glueStaging + "03/a": ok, glueStaging + "03/b": ndjson(ok, "", tc.record)}
			runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 3, tc.cols), BatchRows: tc.batchRows}).failed(t, tc.want)
		})
	}
	t.Run("new nested field in a later batch", func(t *testing.T) {
		objects := map[string]string{glueStaging + "03/a": ndjson(`{"_feed_id":"f1","_line":1,"addr":{"city":"Oslo"}}`,
			`{"_feed_id":"f1","_line":2,"addr":{"city":"Bergen","zip":"5003"}}`)}
		runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 2, nil), BatchRows: 1}).failed(t,
			"s3://"+glueStaging+"03/a line 2 (_line 2): field addr.zip: not a field of addr in the first batch")
	})
	t.Run("integer too big for a float", func(t *testing.T) {
		objects := map[string]string{glueStaging + "03/a": ndjson(`{"_feed_id":"f1","_line":1,"x":1.5}`,
			`{"_feed_id":"f1","_line":2,"x":3}`, `{"_feed_id":"f1","_line":3,"x":9007199254740993}`)}
		runGlueJob(t, glueJobRun{Objects: objects, Args: glueArgs(t, 3, nil), BatchRows: 2}).failed(t,
			"s3://"+glueStaging+"03/a line 3 (_line 3): field x:")
	})
	for name, tc := range map[string]struct {
		args map[string]string
		want string
	}{
		"staging not a prefix": {map[string]string{"STAGING": "s3://staging/raw/feed=f1"}, `STAGING 's3://staging/raw/feed=f1' is not a prefix ending with /`},
		"no line count":        {map[string]string{"LINES": ""}, "missing job argument --LINES"},
		"bad line count":       {map[string]string{"LINES": "-1"}, "LINES '-1' is not a line count"},
		"bad target":           {map[string]string{"TARGET": "dest"}, "not an s3://bucket/key URL: 'dest'"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := glueArgs(t, 3, glueJobCols)
			for k, v := range tc.args {
				if v == "" {
					delete(args, k)
				} else {
					args[k] = v
				}
			}
			runGlueJob(t, glueJobRun{Objects: map[string]string{glueStaging + "03/a": ok}, Args: args}).failed(t, tc.want)
		})
	}
}
