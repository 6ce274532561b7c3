package provision

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// glueTable runs the Glue job script's build_table on records (NDJSON) typed
// by cols, with the project's venv, writes the table to Parquet and reads it
// back with pyarrow. It returns the rows, or the job's error message.
func glueTable(t *testing.T, cols []schema.Column, records string) ([]map[string]any, string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
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
	out := pyarrowtest.Run(t, driver, filepath.Join(dir, "glue", "convert_ndjson.py"), string(colJSON), records)
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
