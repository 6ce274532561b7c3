package convert

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/schema"
)

type rejected struct {
	line   int64
	reason string
}

func convertBytes(t *testing.T, in []byte, opt Options) ([]byte, Stats, []rejected) {
	t.Helper()
	var rej []rejected
	opt.OnReject = func(line int64, reason string, _ []byte) { rej = append(rej, rejected{line, reason}) }
	var out bytes.Buffer
	st, err := Convert(context.Background(), bytes.NewReader(in), &out, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != st.Rows+st.Rejected {
		t.Errorf("lines %d != rows %d + rejected %d", st.Lines, st.Rows, st.Rejected)
	}
	return out.Bytes(), st, rej
}

// readBack reads a Parquet file with pyarrow, an independent reader, from
// the project's venv (make venv), and returns its rows as JSON objects.
func readBack(t *testing.T, pq []byte) []map[string]any {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	py := filepath.Join(filepath.Dir(file), "..", "..", ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("no %s: run `make venv` (pyarrow reads our Parquet back in this test)", py)
	}
	path := filepath.Join(t.TempDir(), "out.parquet")
	if err := os.WriteFile(path, pq, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, datetime, decimal, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
def conv(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v
print(json.dumps({"schema": {f.name: str(f.type) for f in t.schema}, "rows": [{k: conv(v) for k, v in r.items()} for r in t.to_pylist()]}))
`
	cmd := exec.Command(py, "-c", script, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pyarrow could not read our Parquet: %v\n%s", err, stderr.String())
	}
	var res struct {
		Schema map[string]string
		Rows   []map[string]any
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res.Rows
}

// Every value of a wide generated feed — numbers, booleans, strings,
// timestamps, nulls, nested objects and arrays — reads back from our Parquet
// with pyarrow as it was in the NDJSON.
func TestConvertRoundTripThroughPyarrow(t *testing.T) {
	var in bytes.Buffer
	st, err := feedgen.Write(&in, feedgen.Options{Records: 2000, Wide: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	pq, cst, rej := convertBytes(t, in.Bytes(), Options{})
	if cst.Rows != int64(st.Good) || len(rej) != st.Bad {
		t.Fatalf("rows %d rejected %d, want %d and %d", cst.Rows, len(rej), st.Good, st.Bad)
	}
	for i, r := range rej {
		if r.line != int64(st.BadLines[i]) || r.reason == "" {
			t.Errorf("reject %d = %+v, want line %d with a reason", i, r, st.BadLines[i])
		}
	}
	types := map[string]schema.Type{}
	for _, c := range cst.Schema.Columns {
		types[c.Name] = c.Type
	}
	for name, want := range map[string]schema.Type{"id": schema.Int64, "balance": schema.Float64, "active": schema.Bool,
		"name": schema.String, "created_at": schema.Timestamp, "address": schema.JSON, "tags": schema.JSON, "referrer": schema.String} {
		if types[name] != want {
			t.Errorf("inferred %s as %q, want %q", name, types[name], want)
		}
	}
	rows := readBack(t, pq)
	if len(rows) != st.Good {
		t.Fatalf("pyarrow read %d rows, want %d", len(rows), st.Good)
	}
	bad := map[int]bool{}
	for _, l := range st.BadLines {
		bad[l] = true
	}
	r := 0
	for i, line := range bytes.Split(bytes.TrimSpace(in.Bytes()), []byte("\n")) {
		if bad[i+1] {
			continue
		}
		var want map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		got := rows[r]
		r++
		for k, wv := range want {
			gv := got[k]
			if !sameValue(types[k], wv, gv) {
				t.Errorf("line %d field %s: got %v (%T), want %v", i+1, k, gv, gv, wv)
			}
		}
	}
}

func sameValue(typ schema.Type, want, got any) bool {
	switch typ {
	case schema.Timestamp:
		if want == nil {
			return got == nil
		}
		tw, err := time.Parse(time.RFC3339Nano, want.(string))
		if err != nil {
			return false
		}
		return got == tw.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
	case schema.JSON:
		b, _ := json.Marshal(want)
		if want == nil {
			return got == nil
		}
		var a, g any
		_ = json.Unmarshal(b, &a)
		if s, ok := got.(string); !ok || json.Unmarshal([]byte(s), &g) != nil {
			return false
		}
		return fmt.Sprint(a) == fmt.Sprint(g)
	}
	if n, ok := want.(json.Number); ok {
		f, _ := n.Float64()
		g, ok := got.(float64)
		return ok && g == f
	}
	return fmt.Sprint(want) == fmt.Sprint(got)
}

// Each kind of bad input has a defined outcome, never a panic.
func TestConvertBadInput(t *testing.T) {
	explicit := &schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "s", Type: schema.String, Nullable: true}}}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	big := strings.Repeat("x", 10<<20)
	cases := []struct {
		name       string
		in         string
		rows       int64
		rejectedAt []int64
		check      func(t *testing.T, rows []map[string]any)
	}{
		{"empty file", "", 0, nil, nil},
		{"only newlines", "\n\n", 0, []int64{1, 2}, nil},
		{"BOM and CRLF", "\xef\xbb\xbf{\"id\":1,\"s\":\"a\"}\r\n{\"id\":2}\r\n", 2, nil, func(t *testing.T, rows []map[string]any) {
			if rows[0]["s"] != "a" || rows[1]["s"] != nil {
				t.Errorf("rows %v", rows)
			}
		}},
		{"truncated last line", "{\"id\":1}\n{\"id\":2,\"s\":\"tr", 1, []int64{2}, nil},
		{"last line without newline", "{\"id\":1}\n{\"id\":2}", 2, nil, nil},
		{"invalid UTF-8", "{\"id\":1,\"s\":\"\xff\xfe\"}\n{\"id\":2}\n", 1, []int64{1}, nil},
		{"top-level array and scalar", "[1,2]\n42\n\"x\"\nnull\n{\"id\":5}\n", 1, []int64{1, 2, 3, 4}, nil},
		{"duplicate keys: the last wins", "{\"id\":1,\"s\":\"first\",\"s\":\"last\"}\n", 1, nil, func(t *testing.T, rows []map[string]any) {
			if rows[0]["s"] != "last" {
				t.Errorf("duplicate key kept %v", rows[0]["s"])
			}
		}},
		{"deep nesting", "{\"id\":1,\"s\":" + deep + "}\n{\"id\":2}\n", 1, []int64{1}, nil},
		{"10 MB line", "{\"id\":1,\"s\":\"" + big + "\"}\n", 1, nil, func(t *testing.T, rows []map[string]any) {
			if s, _ := rows[0]["s"].(string); len(s) != len(big) {
				t.Errorf("10 MB value read back with %d bytes", len(s))
			}
		}},
		{"line over the limit", "{\"id\":1,\"s\":\"" + strings.Repeat("y", MaxLineBytes) + "\"}\n{\"id\":2}\n", 1, []int64{1}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pq, st, rej := convertBytes(t, []byte(c.in), Options{Schema: explicit})
			if st.Rows != c.rows {
				t.Errorf("rows %d, want %d", st.Rows, c.rows)
			}
			var lines []int64
			for _, r := range rej {
				lines = append(lines, r.line)
			}
			if fmt.Sprint(lines) != fmt.Sprint(c.rejectedAt) && !(len(lines) == 0 && len(c.rejectedAt) == 0) {
				t.Errorf("rejected lines %v, want %v (%v)", lines, c.rejectedAt, rej)
			}
			rows := readBack(t, pq)
			if int64(len(rows)) != c.rows {
				t.Errorf("pyarrow read %d rows, want %d", len(rows), c.rows)
			}
			if c.check != nil && len(rows) > 0 {
				c.check(t, rows)
			}
		})
	}
}

func TestConvertGzipAndUnknownPolicies(t *testing.T) {
	feed := "{\"id\":1,\"s\":\"a\",\"x\":{\"k\":1}}\n{\"id\":2}\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(feed))
	zw.Close()
	explicit := &schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "s", Type: schema.String, Nullable: true}}}

	pq, st, _ := convertBytes(t, gz.Bytes(), Options{Schema: explicit, Unknown: UnknownExtra})
	rows := readBack(t, pq)
	if st.Rows != 2 || st.InputBytes != int64(len(feed)) || rows[0]["_extra"] != `{"x":{"k":1}}` || rows[1]["_extra"] != nil {
		t.Errorf("gzip + extra: %+v %v", st, rows)
	}
	_, st, rej := convertBytes(t, []byte(feed), Options{Schema: explicit, Unknown: schema.UnknownReject})
	if st.Rows != 1 || len(rej) != 1 || !strings.Contains(rej[0].reason, `unknown field "x"`) {
		t.Errorf("reject policy: %+v %v", st, rej)
	}
	pq, _, _ = convertBytes(t, []byte(feed), Options{Schema: explicit})
	if rows := readBack(t, pq); len(rows[0]) != 2 {
		t.Errorf("drop policy kept %v", rows[0])
	}
}

func TestInferWidens(t *testing.T) {
	lines := [][]byte{
		[]byte(`{"a":1,"b":1,"c":true,"d":null,"e":"2026-01-01T00:00:00Z","f":{"x":1},"g":1}`),
		[]byte(`{"a":2,"b":1.5,"c":1,"d":null,"e":"later","f":[1],"g":"one"}`),
		[]byte(`not json`),
	}
	s := Infer(lines)
	want := "a:int64 b:float64 c:string d:string e:string f:json g:string"
	var got []string
	for _, c := range s.Columns {
		got = append(got, fmt.Sprintf("%s:%s", c.Name, c.Type))
		if !c.Nullable {
			t.Errorf("inferred column %s is not nullable", c.Name)
		}
	}
	if strings.Join(got, " ") != want {
		t.Errorf("Infer = %s, want %s", strings.Join(got, " "), want)
	}
	// A number in a column widened to string is kept as its text.
	vals, _, err := s.Parse([]byte(`{"g": 7, "c": false}`))
	if err != nil || vals[6].S != "7" || vals[2].S != "false" {
		t.Errorf("widened string columns: %+v %v", vals, err)
	}
}

// A declared decimal column is written as Parquet DECIMAL and reads back exactly.
func TestConvertDecimal(t *testing.T) {
	s := &schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "amount", Type: schema.Decimal, Precision: 12, Scale: 2, Nullable: true}}}
	pq, st, rej := convertBytes(t, []byte(`{"id":1,"amount":19.99}`+"\n"+`{"id":2,"amount":"-0.10"}`+"\n"+`{"id":3,"amount":null}`+"\n"+`{"id":4,"amount":0.001}`+"\n"), Options{Schema: s})
	if st.Rows != 3 || len(rej) != 1 || rej[0].line != 4 {
		t.Fatalf("rows %d rejects %v", st.Rows, rej)
	}
	rows := readBack(t, pq)
	if rows[0]["amount"] != "19.99" || rows[1]["amount"] != "-0.10" || rows[2]["amount"] != nil {
		t.Errorf("decimals read back as %v %v %v", rows[0]["amount"], rows[1]["amount"], rows[2]["amount"])
	}
}
