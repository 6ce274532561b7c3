package convert

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

type rejected struct {
	line   int64
	reason string
}

func convertBytes(t *testing.T, in []byte, opt Options) ([]byte, Stats, []rejected) {
	t.Helper()
	var rej []rejected
	opt.OnReject = func(r Reject) { rej = append(rej, rejected{r.Line, r.Reason}) }
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

// readBack reads a Parquet file with pyarrow, an independent reader.
func readBack(t *testing.T, pq []byte) []map[string]any {
	t.Helper()
	return pyarrowtest.Read(t, pq).Rows
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
	cols := map[string]schema.Column{}
	for _, c := range cst.Schema.Columns {
		cols[c.Name] = c
	}
	for name, want := range map[string]schema.Type{"id": schema.Int64, "balance": schema.Float64, "active": schema.Bool,
		"name": schema.String, "created_at": schema.Timestamp, "address": schema.Object, "tags": schema.List, "referrer": schema.String} {
		if cols[name].Type != want {
			t.Errorf("inferred %s as %q, want %q", name, cols[name].Type, want)
		}
	}
	if geo := cols["address"].Fields[1]; geo.Name != "geo" || geo.Type != schema.List || geo.Items.Type != schema.Float64 {
		t.Errorf("inferred address.%s as %+v, want geo, a list of float64", geo.Name, geo)
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
			if !sameValue(cols[k], wv, gv) {
				t.Errorf("line %d field %s: got %v (%T), want %v", i+1, k, gv, gv, wv)
			}
		}
	}
}

// sameValue reports whether got, as pyarrow read it, is want, as
// encoding/json decoded the input (numbers as json.Number), for column c.
func sameValue(c schema.Column, want, got any) bool {
	if want == nil {
		return got == nil
	}
	switch c.Type {
	case schema.Timestamp:
		tw, err := time.Parse(time.RFC3339Nano, want.(string))
		if err != nil {
			return false
		}
		return got == tw.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
	case schema.JSON:
		b, _ := json.Marshal(want)
		var a, g any
		_ = json.Unmarshal(b, &a)
		if s, ok := got.(string); !ok || json.Unmarshal([]byte(s), &g) != nil {
			return false
		}
		return fmt.Sprint(a) == fmt.Sprint(g)
	case schema.Object:
		w, ok1 := want.(map[string]any)
		g, ok2 := got.(map[string]any)
		if !ok1 || !ok2 || len(g) != len(c.Fields) {
			return false
		}
		for _, f := range c.Fields {
			if !sameValue(f, w[f.Name], g[f.Name]) {
				return false
			}
		}
		return true
	case schema.List:
		w, ok1 := want.([]any)
		g, ok2 := got.([]any)
		if !ok1 || !ok2 || len(w) != len(g) {
			return false
		}
		for i := range w {
			if !sameValue(*c.Items, w[i], g[i]) {
				return false
			}
		}
		return true
	}
	if n, ok := want.(json.Number); ok {
		f, _ := n.Float64()
		g, ok := got.(float64)
		return ok && g == f
	}
	return fmt.Sprint(want) == fmt.Sprint(got)
}

// Objects and lists are Parquet groups and lists: nulls and empties at
// every level read back with pyarrow as they were, and a value of the wrong
// shape rejects its line with the path of the field.
func TestConvertNestedThroughPyarrow(t *testing.T) {
	sch := &schema.Schema{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64},
		{Name: "addr", Type: schema.Object, Nullable: true, Fields: []schema.Column{
			{Name: "city", Type: schema.String, Nullable: true},
			{Name: "geo", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Float64, Nullable: true}},
		}},
		{Name: "events", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Object, Nullable: true, Fields: []schema.Column{
			{Name: "at", Type: schema.Timestamp, Nullable: true},
			{Name: "n", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Int64}},
			{Name: "raw", Type: schema.JSON, Nullable: true},
		}}},
		{Name: "tags", Type: schema.List, Items: &schema.Column{Type: schema.String}},
	}}
	lines := []string{
		`{"id":1,"addr":{"city":"Oslo","geo":[59.9,10.7]},"events":[{"at":"2026-01-02T03:04:05.123456Z","n":[1,2,3],"raw":{"a":[1]}}],"tags":["x","y"]}`,
		`{"id":2,"addr":null,"events":null,"tags":[]}`,
		`{"id":3,"tags":["z"]}`,
		`{"id":4,"addr":{},"events":[],"tags":[]}`,
		`{"id":5,"addr":{"geo":[]},"events":[null,{},{"n":[]},{"n":null,"at":null}],"tags":[]}`,
		`{"id":6,"addr":{"city":null,"geo":[null,1,null]},"events":[{"n":[7]},{"n":[8,9]}],"tags":["a"]}`,
		"{ \"id\" : 7 , \"addr\" : { \"city\" : \"tab\\there\" } , \"tags\" : [ \"b\" , \"c\" ] }",
		`{"id":8,"addr":{"city":"a","extra":{"deep":[1]}},"tags":["q"],"events":[{"n":[1],"other":true}]}`,
		`{"id":9,"addr":[1],"tags":[]}`,
		`{"id":10,"tags":[null]}`,
		`{"id":11,"events":[{"n":["x"]}],"tags":[]}`,
		`{"id":12}`,
		`{"id":13,"addr":{"geo":{"lat":1}},"tags":[]}`,
	}
	in := []byte(strings.Join(lines, "\n") + "\n")
	pq, st, rej := convertBytes(t, in, Options{Schema: sch})
	wantRej := map[int64]string{
		9:  `field "addr": want an object`,
		10: `field "tags": element 1 is null`,
		11: `field "events": element 1: field "n": element 1: want an integer`,
		12: `field "tags" is required`,
		13: `field "addr": field "geo": want an array`,
	}
	if st.Rows != 8 || len(rej) != len(wantRej) {
		t.Fatalf("rows %d, rejects %+v", st.Rows, rej)
	}
	for _, r := range rej {
		if !strings.Contains(r.reason, wantRej[r.line]) {
			t.Errorf("line %d rejected for %q, want %q", r.line, r.reason, wantRej[r.line])
		}
	}
	rows := readBack(t, pq)
	cols := map[string]schema.Column{}
	for _, c := range sch.Columns {
		cols[c.Name] = c
	}
	for i, line := range lines[:8] {
		var want map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		// Fields the schema does not declare are dropped; missing ones are null.
		pruneUndeclared(want, sch.Columns)
		for _, c := range sch.Columns {
			if !sameValue(c, want[c.Name], rows[i][c.Name]) {
				t.Errorf("line %d %s: got %#v, want %#v", i+1, c.Name, rows[i][c.Name], want[c.Name])
			}
		}
	}
}

// pruneUndeclared deletes the fields of obj, at every level, that cols do
// not declare, and fills in nulls for declared ones missing.
func pruneUndeclared(obj map[string]any, cols []schema.Column) {
	known := map[string]schema.Column{}
	for _, c := range cols {
		known[c.Name] = c
		if _, ok := obj[c.Name]; !ok {
			obj[c.Name] = nil
		}
	}
	for k, v := range obj {
		c, ok := known[k]
		if !ok {
			delete(obj, k)
			continue
		}
		prune(c, v)
	}
}

func prune(c schema.Column, v any) {
	switch c.Type {
	case schema.Object:
		if m, ok := v.(map[string]any); ok {
			pruneUndeclared(m, c.Fields)
		}
	case schema.List:
		if l, ok := v.([]any); ok {
			for _, it := range l {
				prune(*c.Items, it)
			}
		}
	}
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
		// Issue 9: a key given twice is a reject (one value would be lost
		// silently), declared or not, at any depth.
		{"duplicate keys", "{\"id\":1,\"s\":\"first\",\"s\":\"last\"}\n{\"id\":2,\"x\":1,\"x\":1}\n{\"id\":3,\"x\":{\"y\":1,\"y\":2}}\n{\"id\":4,\"s\":\"a\",\"\\u0073\":\"b\"}\n{\"id\":5}\n", 1, []int64{1, 2, 3, 4}, nil},
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
	if st.Rows != 1 || len(rej) != 1 || !strings.Contains(rej[0].reason, `field "x" is not declared`) {
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

// Nested values infer as objects and lists, merged across the whole sample:
// fields seen late join the object, an empty list takes its element type
// from a later one, and the answer does not depend on how the sample is
// cut into chunks read in parallel.
func TestInferNestedAcrossChunks(t *testing.T) {
	var lines [][]byte
	for i := range 5000 {
		var l string
		switch {
		case i < 2500:
			l = fmt.Sprintf(`{"id":%d,"addr":{"city":"c%d"},"tags":[],"n":%d,"deep":{"a":{"b":[{"c":1}]}}}`, i, i%3, i)
		case i < 4000:
			l = fmt.Sprintf(`{"id":%d,"addr":{"zip":"%05d","city":null},"tags":["t%d"],"n":%d.5}`, i, i, i%2, i)
		default:
			l = fmt.Sprintf(`{"id":%d,"addr":{"geo":[1.5,%d]},"tags":null,"n":"x","mixed":{"a":1}}`, i, i)
		}
		if i == 4999 {
			l = `{"id":1,"mixed":[1]}`
		}
		lines = append(lines, []byte(l))
	}
	describe := func(s schema.Schema) string {
		var b strings.Builder
		var walk func(c schema.Column)
		walk = func(c schema.Column) {
			fmt.Fprintf(&b, "%s:%s", c.Name, c.Type)
			if c.Dictionary {
				b.WriteString("(dict)")
			}
			if len(c.Fields) > 0 {
				b.WriteString("{")
				for _, f := range c.Fields {
					walk(f)
					b.WriteString(" ")
				}
				b.WriteString("}")
			}
			if c.Items != nil {
				b.WriteString("[")
				walk(*c.Items)
				b.WriteString("]")
			}
		}
		for _, c := range s.Columns {
			walk(c)
			b.WriteString(" ")
		}
		return b.String()
	}
	want := "id:int64 addr:object{city:string(dict) zip:string geo:list[element:float64] } tags:list[element:string(dict)] " +
		"n:string(dict) deep:object{a:object{b:list[element:object{c:int64 }] } } mixed:json "
	if got := describe(Infer(lines)); got != want {
		t.Errorf("Infer =\n%s\nwant\n%s", got, want)
	}
	seq := inferLines(lines)
	var s schema.Schema
	for _, k := range seq.order {
		s.Columns = append(s.Columns, seq.fields[k].column(k))
	}
	if got := describe(s); got != want {
		t.Errorf("one chunk =\n%s\nwant\n%s", got, want)
	}
}

// A declared decimal column is written as Parquet DECIMAL (INT32 up to 9
// digits, INT64 above) and reads back exactly.
func TestConvertDecimal(t *testing.T) {
	s := &schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64},
		{Name: "amount", Type: schema.Decimal, Precision: 12, Scale: 2, Nullable: true},
		{Name: "rate", Type: schema.Decimal, Precision: 5, Scale: 4, Nullable: true}}}
	pq, st, rej := convertBytes(t, []byte(`{"id":1,"amount":19.99,"rate":"0.0125"}`+"\n"+`{"id":2,"amount":"-0.10","rate":-9.9999}`+"\n"+
		`{"id":3,"amount":null}`+"\n"+`{"id":4,"amount":0.001}`+"\n"+`{"id":5,"rate":10.5}`+"\n"), Options{Schema: s})
	if st.Rows != 3 || len(rej) != 2 || rej[0].line != 4 || rej[1].line != 5 {
		t.Fatalf("rows %d rejects %v", st.Rows, rej)
	}
	f := pyarrowtest.Read(t, pq)
	if f.Schema["amount"] != "decimal128(12, 2)" || f.Schema["rate"] != "decimal128(5, 4)" {
		t.Errorf("schema %v", f.Schema)
	}
	rows := f.Rows
	if rows[0]["amount"] != "19.99" || rows[1]["amount"] != "-0.10" || rows[2]["amount"] != nil {
		t.Errorf("decimals read back as %v %v %v", rows[0]["amount"], rows[1]["amount"], rows[2]["amount"])
	}
	if rows[0]["rate"] != "0.0125" || rows[1]["rate"] != "-9.9999" || rows[2]["rate"] != nil {
		t.Errorf("decimal(5,4) read back as %v %v %v", rows[0]["rate"], rows[1]["rate"], rows[2]["rate"])
	}
}

// Keys that can be no column — empty, or differing only in case from a key
// seen first (Snowflake names ignore case) — at any depth, in the sample or
// after it, never end the run and are never dropped: inference keeps the
// first spelling as the column, and each line holding another spelling is
// a reject with a reason naming the key, or (the line's own keys, -unknown
// extra) a row with the key in _extra. pyarrow reads the rows back.
func TestConvertEmptyAndCaseCollidingKeys(t *testing.T) {
	in := strings.Join([]string{
		`{"":0}`,                         // 1: the sample's first line
		`{"userId":1,"a":{"x":1}}`,       // 2
		`{"userID":2}`,                   // 3: another spelling, in the sample
		`{"userId":3,"userID":4}`,        // 4: both in one object
		`{"userId":5,"a":{"x":2,"X":3}}`, // 5: nested, in the sample
		`{"userId":6,"USERID":7}`,        // 6: after the sample
		`{"userId":8,"a":{"":1}}`,        // 7: nested empty key, after the sample
		`{"userId":9,"a":{"x":10}}`,      // 8
	}, "\n") + "\n"
	pq, st, rej := convertBytes(t, []byte(in), Options{InferLines: 5})
	var names []string
	for _, c := range st.Schema.Columns {
		names = append(names, c.Name)
	}
	if fmt.Sprint(names) != "[userId a]" || len(st.Schema.Columns[1].Fields) != 1 {
		t.Errorf("columns %v (a: %+v), want [userId a] with a.x only", names, st.Schema.Columns[1].Fields)
	}
	want := map[int64]string{
		1: `an empty key cannot be a column`,
		3: `field "userID": differs only in case from column "userId"`,
		4: `field "userID": differs only in case from column "userId"`,
		5: `field "a": field "X": differs only in case from column "x"`,
		6: `field "USERID": differs only in case from column "userId"`,
		7: `field "a": an empty key cannot be a column`,
	}
	if len(rej) != len(want) {
		t.Errorf("rejects %+v, want lines 1, 3-7", rej)
	}
	for _, r := range rej {
		if !strings.Contains(r.reason, want[r.line]) || want[r.line] == "" {
			t.Errorf("line %d rejected for %q, want %q", r.line, r.reason, want[r.line])
		}
	}
	rows := readBack(t, pq)
	got, _ := json.Marshal(rows)
	if string(got) != `[{"a":{"x":1},"userId":1},{"a":{"x":10},"userId":9}]` {
		t.Errorf("rows %s", got)
	}

	// -unknown extra: the line's own odd keys go to _extra; nested ones
	// cannot, and are rejects.
	pq, _, rej = convertBytes(t, []byte(in), Options{InferLines: 5, Unknown: UnknownExtra})
	if len(rej) != 2 || rej[0].line != 5 || rej[1].line != 7 {
		t.Errorf("with extra: rejects %+v, want lines 5 and 7", rej)
	}
	got, _ = json.Marshal(readBack(t, pq))
	wantRows := `[{"_extra":"{\"\":0}","a":null,"userId":null},{"_extra":null,"a":{"x":1},"userId":1},` +
		`{"_extra":"{\"userID\":2}","a":null,"userId":null},{"_extra":"{\"userID\":4}","a":null,"userId":3},` +
		`{"_extra":"{\"USERID\":7}","a":null,"userId":6},{"_extra":null,"a":{"x":10},"userId":9}]`
	if string(got) != wantRows {
		t.Errorf("with extra: rows\n%s\nwant\n%s", got, wantRows)
	}
}

// No value is silently changed. An inferred integer column with a value
// beyond int64 is a string column holding every number's text exactly (it
// used to turn float64 and round every id); one with integers beyond ±2^53
// beside fractions is one too (float64 would round them); int64 to its
// limits stays int64. Numbers a column cannot hold (1e400, and 1e-400,
// which would be stored as 0) are rejects "number out of range";
// timestamps with digits below the microsecond infer as strings (kept
// whole) and are rejects in a timestamp column, not cut.
func TestConvertKeepsValuesExact(t *testing.T) {
	in := strings.Join([]string{
		`{"id":9223372036854775807,"big":1,"mixed":1.5,"f":1.5,"at":"2026-01-02T03:04:05.123456Z","ns":"2026-01-02T03:04:05.123456Z"}`,
		`{"id":-9223372036854775808,"big":18446744073709551615,"mixed":9007199254740993,"f":2,"at":"2026-01-02T03:04:05.1234560Z","ns":"2026-01-02T03:04:05.123456789Z"}`,
		`{"id":1,"big":-99999999999999999999999,"mixed":2,"f":1e400}`, // 3: out of range
		`{"id":2,"f":1e-400}`, // 4: underflow
		`{"id":3,"f":0e-400,"at":"2026-01-02T03:04:05.000000001Z"}`, // 5: after the sample: sub-µs
		`{"id":4,"f":-1e400}`,        // 6
		`{"id":9223372036854775808}`, // 7: beyond int64, after the sample
	}, "\n") + "\n"
	pq, st, rej := convertBytes(t, []byte(in), Options{InferLines: 4})
	types := map[string]schema.Type{}
	for _, c := range st.Schema.Columns {
		types[c.Name] = c.Type
	}
	if fmt.Sprint(types) != "map[at:timestamp big:string f:float64 id:int64 mixed:string ns:string]" {
		t.Errorf("inferred %v", types)
	}
	want := map[int64]string{3: "number out of range", 4: "number out of range", 5: "digits below the microsecond", 6: "number out of range", 7: "number out of range"}
	if len(rej) != len(want) {
		t.Errorf("rejects %+v, want lines 3-7", rej)
	}
	for _, r := range rej {
		if want[r.line] == "" || !strings.Contains(r.reason, want[r.line]) {
			t.Errorf("line %d rejected for %q, want %q", r.line, r.reason, want[r.line])
		}
	}
	rows := pyarrowtest.Read(t, pq)
	// pyarrowtest decodes JSON numbers as float64: compare the int64s as
	// pyarrow printed them, through a second, exact read.
	exact := pyarrowtest.Run(t, `
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(t.column("id").to_pylist())
`, writeTemp(t, pq))
	if got := strings.TrimSpace(string(exact)); got != "[9223372036854775807, -9223372036854775808]" {
		t.Errorf("id read back as %s", got)
	}
	if len(rows.Rows) != 2 {
		t.Fatalf("rows %v", rows.Rows)
	}
	for i, w := range []map[string]any{
		{"big": "1", "mixed": "1.5", "f": 1.5, "at": "2026-01-02T03:04:05.123456Z", "ns": "2026-01-02T03:04:05.123456Z"},
		{"big": "18446744073709551615", "mixed": "9007199254740993", "f": 2.0, "at": "2026-01-02T03:04:05.123456Z", "ns": "2026-01-02T03:04:05.123456789Z"},
	} {
		for k, v := range w {
			if rows.Rows[i][k] != v {
				t.Errorf("row %d %s = %#v, want %#v", i+1, k, rows.Rows[i][k], v)
			}
		}
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := t.TempDir() + "/out.parquet"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A reject caused by a value whose type the inference sample did not show
// says so, and what to do; rejects of a given schema, of lines in the
// sample, and of other causes do not.
func TestConvertSaysTypeChangedAfterTheSample(t *testing.T) {
	in := `{"a":1,"f":1.5}` + "\n" + `{"a":2,"f":2.5}` + "\n" + `{"a":"x"}` + "\n" + `{"a":1.5}` + "\n" + `{"f":1e400}` + "\n"
	const hint = "(type changed after the first 2 lines: raise -infer or give -schema)"
	_, _, rej := convertBytes(t, []byte(in), Options{InferLines: 2})
	if len(rej) != 3 || !strings.HasSuffix(rej[0].reason, hint) || !strings.HasSuffix(rej[1].reason, hint) || strings.Contains(rej[2].reason, "type changed") {
		t.Errorf("inferred: %+v", rej)
	}
	explicit := &schema.Schema{Columns: []schema.Column{{Name: "a", Type: schema.Int64, Nullable: true}, {Name: "f", Type: schema.Float64, Nullable: true}}}
	_, _, rej = convertBytes(t, []byte(in), Options{Schema: explicit})
	for _, r := range rej {
		if strings.Contains(r.reason, "type changed") {
			t.Errorf("given schema: %+v", r)
		}
	}
}

// Gzip input cut anywhere (in its header, its data or its trailer) fails
// with one message, ErrTruncatedGzip after the lines read, whichever part
// of the reader met the end.
func TestConvertTruncatedGzipOneMessage(t *testing.T) {
	var feed bytes.Buffer
	if _, err := feedgen.Write(&feed, feedgen.Options{Records: 20000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(feed.Bytes())
	zw.Close()
	n := gz.Len()
	for _, cut := range []int{1, 2, 3, 5, 11, 30, n / 2, n - 8, n - 4, n - 1} { // 1: issue 9, review 10
		_, err := Convert(context.Background(), bytes.NewReader(gz.Bytes()[:cut]), new(bytes.Buffer), Options{InferLines: 100})
		if !errors.Is(err, ErrTruncatedGzip) {
			t.Errorf("cut at %d of %d: %v, want ErrTruncatedGzip", cut, n, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "read after line ") || strings.Count(msg, ErrTruncatedGzip.Error()) != 1 || strings.Count(msg, "EOF") != 0 {
			t.Errorf("cut at %d: %q, want \"read after line N: %v\"", cut, msg, ErrTruncatedGzip)
		}
	}
}

// With -unknown extra, a key named _extra in any case is no column beside
// the _extra column (Snowflake would take them for one): it is kept in
// _extra with the line's other undeclared keys; a given schema declaring
// such a column is refused.
func TestConvertExtraKeyIsNoColumn(t *testing.T) {
	in := `{"a":1,"_EXTRA":2}` + "\n" + `{"a":2,"_extra":{"k":1}}` + "\n"
	pq, st, rej := convertBytes(t, []byte(in), Options{Unknown: UnknownExtra})
	if len(st.Schema.Columns) != 1 || len(rej) != 0 {
		t.Fatalf("columns %+v, rejects %v", st.Schema.Columns, rej)
	}
	got, _ := json.Marshal(readBack(t, pq))
	if string(got) != `[{"_extra":"{\"_EXTRA\":2}","a":1},{"_extra":"{\"_extra\":{\"k\":1}}","a":2}]` {
		t.Errorf("rows %s", got)
	}
	explicit := &schema.Schema{Columns: []schema.Column{{Name: "a", Type: schema.Int64}, {Name: "_Extra", Type: schema.String, Nullable: true}}}
	_, err := Convert(context.Background(), strings.NewReader(in), new(bytes.Buffer), Options{Schema: explicit, Unknown: UnknownExtra})
	if err == nil || !strings.Contains(err.Error(), `column "_Extra"`) {
		t.Errorf("a declared _Extra with -unknown extra: %v", err)
	}
}
