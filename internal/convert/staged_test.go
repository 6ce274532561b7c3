package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// stagedRecord is a feed line as PutToKinesis stages it: the feed fields
// first, then the object's own.
func stagedRecord(feedID string, line int64, obj []byte) []byte {
	b := []byte(`{"_feed_id":"` + feedID + `","_line":` + strconv.FormatInt(line, 10))
	if inner := bytes.TrimSpace(obj[1 : len(obj)-1]); len(inner) > 0 {
		b = append(append(b, ','), inner...)
	}
	return append(b, '}')
}

// reorderedRecord is the same record with the feed fields last.
func reorderedRecord(feedID string, line int64, obj []byte) []byte {
	b := []byte("{")
	if inner := bytes.TrimSpace(obj[1 : len(obj)-1]); len(inner) > 0 {
		b = append(append(b, inner...), ',')
	}
	return append(b, `"_line":`+strconv.FormatInt(line, 10)+`,"_feed_id":"`+feedID+`"}`...)
}

// convertReference converts staged objects as activities.ConvertLocal
// does: records holding the feed id are parsed with schema.ParseRecord and
// written one by one with parquetconv.Writer.Write, duplicate line numbers
// dropped. (ConvertLocal looks for "_feed_id":"<id>", which misses records
// written with spaces.)
func convertReference(w io.Writer, s schema.Schema, feedID string, lines int64, objs [][]byte) (StagedStats, error) {
	var st StagedStats
	pw, err := parquetconv.NewWriter(w, s, parquetconv.Options{})
	if err != nil {
		return st, err
	}
	defer pw.Abort()
	seen := make([]bool, lines+1)
	marker := []byte(`"` + feedID + `"`)
	for _, body := range objs {
		for _, rec := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(rec)) == 0 || !bytes.Contains(rec, marker) {
				continue
			}
			feed, line, vals, err := s.ParseRecord(rec)
			if err != nil {
				return st, err
			}
			if feed != feedID {
				continue
			}
			if line > lines {
				return st, fmt.Errorf("line %d outside 1..%d", line, lines)
			}
			st.Records++
			if seen[line] {
				st.Duplicates++
				continue
			}
			seen[line] = true
			if err := pw.Write(feed, line, vals); err != nil {
				return st, err
			}
		}
	}
	st.Rows, err = pw.Close()
	return st, err
}

// convertStaged converts staged objects with Staged; objects are named
// o1, o2, …
func convertStaged(w io.Writer, opt StagedOptions, objs [][]byte) (StagedStats, error) {
	s, err := NewStaged(w, opt)
	if err != nil {
		return StagedStats{}, err
	}
	defer s.Abort()
	for i, body := range objs {
		if err := s.Add(context.Background(), fmt.Sprintf("o%d", i+1), body); err != nil {
			return StagedStats{}, err
		}
	}
	return s.Close()
}

// parquetRows reads a Parquet file with parquet-go: its schema and its
// rows by line number (the test fails on a line number met twice).
func parquetRows(t *testing.T, data []byte) (string, map[int64]parquet.Row) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	lineCol, ok := f.Schema().Lookup(schema.LineField)
	if !ok {
		t.Fatal("no _line column")
	}
	rows := map[int64]parquet.Row{}
	buf := make([]parquet.Row, 64)
	for _, rg := range f.RowGroups() {
		rr := rg.Rows()
		for {
			n, err := rr.ReadRows(buf)
			for _, row := range buf[:n] {
				var line int64
				for _, v := range row {
					if v.Column() == lineCol.ColumnIndex {
						line = v.Int64()
					}
				}
				if _, dup := rows[line]; dup {
					t.Fatalf("line %d written twice", line)
				}
				rows[line] = row.Clone()
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rr.Close()
	}
	return f.Schema().String(), rows
}

// sameFile checks that two Parquet files have one schema and the same rows,
// in any order.
func sameFile(t *testing.T, got, want []byte) {
	t.Helper()
	gs, grows := parquetRows(t, got)
	ws, wrows := parquetRows(t, want)
	if gs != ws {
		t.Fatalf("schema\n%s\nwant\n%s", gs, ws)
	}
	if len(grows) != len(wrows) {
		t.Fatalf("%d rows, want %d", len(grows), len(wrows))
	}
	for line, w := range wrows {
		if g, ok := grows[line]; !ok || !g.Equal(w) {
			t.Fatalf("line %d:\n got %v\nwant %v", line, g, w)
		}
	}
}

// stagedObjects stages a wide generated feed of n lines the way Kinesis
// and Firehose deliver it: objects of up to per records in shuffled order,
// some delivered twice, single records repeated in later objects, records
// of other feeds (one whose id starts like feedID) and blank lines mixed
// in, and every 7th record with its feed fields last or spaced (the
// reference path).
func stagedObjects(t testing.TB, feedID string, n, per int, seed uint64) (schema.Schema, [][]byte) {
	t.Helper()
	var feed bytes.Buffer
	if _, err := feedgen.Write(&feed, feedgen.Options{Records: n, Wide: true, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(feed.Bytes()), []byte("\n"))
	s := Infer(lines)
	r := rand.New(rand.NewPCG(seed, 1))
	var recs [][]byte
	for i, obj := range lines {
		line := int64(i + 1)
		switch {
		case i%7 == 3:
			recs = append(recs, reorderedRecord(feedID, line, obj))
		case i%7 == 5:
			recs = append(recs, bytes.Replace(stagedRecord(feedID, line, obj), []byte(`":`), []byte(`": `), 2))
		default:
			recs = append(recs, stagedRecord(feedID, line, obj))
		}
		if i%5 == 0 {
			recs = append(recs, stagedRecord(feedID+"0", line, obj))
		}
		if i%11 == 0 {
			recs = append(recs, stagedRecord("other", line, []byte(`{"id":"not this schema"}`)))
		}
	}
	r.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	var objs [][]byte
	for len(recs) > 0 {
		k := min(len(recs), 1+r.IntN(per))
		var body bytes.Buffer
		for j, rec := range recs[:k] {
			body.Write(rec)
			body.WriteString([]string{"\n", "\r\n", "\n\n", "\n  \n"}[j%4])
			if r.IntN(50) == 0 {
				objs = append(objs, append([]byte(nil), rec...)) // delivered again, alone
			}
		}
		recs = recs[k:]
		objs = append(objs, body.Bytes())
		if r.IntN(10) == 0 {
			objs = append(objs, body.Bytes()) // the whole object again
		}
	}
	return s, objs
}

// The fast engine writes the same file as the reference path on a staged
// wide feed — nested objects and lists, nulls, duplicates within and
// across objects, other feeds, blank lines, records laid out otherwise —
// and pyarrow reads every line back once.
func TestStagedMatchesReference(t *testing.T) {
	const n = 3000
	s, objs := stagedObjects(t, "f1", n, 200, 7)
	var want bytes.Buffer
	wst, err := convertReference(&want, s, "f1", n, objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 4} {
		var got bytes.Buffer
		st, err := convertStaged(&got, StagedOptions{Schema: s, FeedID: "f1", Lines: n, Workers: workers, RowGroupRows: 1000}, objs)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != n || st.Rows != wst.Rows || st.Records != wst.Records || st.Duplicates != wst.Duplicates ||
			st.Records != st.Rows+st.Duplicates || st.Duplicates == 0 || st.Others == 0 {
			t.Errorf("workers %d: stats %+v, reference %+v", workers, st, wst)
		}
		sameFile(t, got.Bytes(), want.Bytes())
		if workers == 1 {
			continue
		}
		rows := pyarrowtest.Read(t, got.Bytes()).Rows
		wrows := pyarrowtest.Read(t, want.Bytes()).Rows
		sortRows := func(rows []map[string]any) {
			sort.Slice(rows, func(i, j int) bool { return rows[i]["_line"].(float64) < rows[j]["_line"].(float64) })
		}
		sortRows(rows)
		sortRows(wrows)
		if len(rows) != n {
			t.Fatalf("pyarrow read %d rows, want %d", len(rows), n)
		}
		for i := range rows {
			if rows[i]["_line"] != float64(i+1) || rows[i]["_feed_id"] != "f1" || fmt.Sprint(rows[i]) != fmt.Sprint(wrows[i]) {
				t.Fatalf("row %d = %v, want %v", i, rows[i], wrows[i])
			}
		}
	}
}

// smallSchema has only nullable columns, nested ones among them, so that
// an empty object is a row.
func smallSchema() schema.Schema {
	return schema.Schema{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64, Nullable: true},
		{Name: "name", Type: schema.String, Nullable: true},
		{Name: "addr", Type: schema.Object, Nullable: true, Fields: []schema.Column{
			{Name: "city", Type: schema.String, Nullable: true},
			{Name: "geo", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Float64, Nullable: true}},
		}},
		{Name: "tags", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.String}},
	}}
}

// Exactly one row per line number, the first record read of it winning,
// whichever path typed it; empty objects, nulls and undeclared fields as
// the reference has them.
func TestStagedKeepsFirstOfEachLine(t *testing.T) {
	objs := [][]byte{
		[]byte(`{"_feed_id":"f","_line":1,"id":1,"name":"first","addr":{"city":"x","geo":[1.5,null]},"tags":["a"]}
{"_feed_id":"f","_line":2}
{"_feed_id":"f","_line":1,"id":1,"name":"second"}

{"_feed_id":"f","_line":3,"id":null,"addr":null,"tags":[],"extra":{"k":[1]}}`),
		[]byte(`{"_feed_id":"f","_line":2,"id":2,"name":"not the first"}
{"name":"spaced first","_line":4,"_feed_id":"f"}
{"_feed_id":"g","_line":4,"name":"other feed"}
{"id":"not an int","_line":99,"_feed_id":"g"}
{"_feed_id":"f","_line":4,"name":"later"}
{ "_feed_id" : "f" , "_line" : 5 }
{"_feed_id":"f","_line":6,"addr":{"geo":[]},"name":"caf\u00e9 \"q\""}
{"_feed_id":"f","_line":5,"id":5}`),
		[]byte("{\"_feed_id\":\"f\",\"_line\":6,\"id\":6}\r\n\r\n"),
	}
	s := smallSchema()
	var got, want bytes.Buffer
	st, err := convertStaged(&got, StagedOptions{Schema: s, FeedID: "f", Lines: 6}, objs)
	if err != nil {
		t.Fatal(err)
	}
	wst, err := convertReference(&want, s, "f", 6, objs)
	if err != nil {
		t.Fatal(err)
	}
	if want := (StagedStats{Records: 11, Rows: 6, Duplicates: 5, Others: 2}); st != want || wst.Rows != 6 || wst.Duplicates != 5 {
		t.Errorf("stats %+v, want %+v (reference %+v)", st, want, wst)
	}
	sameFile(t, got.Bytes(), want.Bytes())
	_, rows := parquetRows(t, got.Bytes())
	l, err := schema.NewLayout(&s, schema.LayoutOptions{FeedColumns: true})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := l.Parquet.Lookup("name")
	names := map[int64]string{}
	for line, row := range rows {
		for _, v := range row {
			if v.Column() == name.ColumnIndex && !v.IsNull() {
				names[line] = v.String()
			}
		}
	}
	if fmt.Sprint(names) != `map[1:first 4:spaced first 6:café "q"]` {
		t.Errorf("names by line = %v", names)
	}
}

// A bad record stops the conversion with an error naming its object and
// its record number there; so does a line number outside the feed.
func TestStagedErrors(t *testing.T) {
	ok := `{"_feed_id":"f","_line":1,"id":1}` + "\n"
	for _, c := range []struct{ body, want string }{
		{ok + "\n" + `{"_feed_id":"f","_line":2,"id":"x"}`, `staged s3://b/k record 3: field "id": want an integer, got "x"`},
		{ok + `{"id":"x","_line":2,"_feed_id":"f"}`, `staged s3://b/k record 2: field "id": want an integer, got "x"`},
		{ok + `{"_feed_id":"f","_line":11,"id":1}`, `staged s3://b/k record 2: line 11 outside 1..10`},
		{ok + `{"id":1,"_feed_id":"f","_line":11}`, `staged s3://b/k record 2: line 11 outside 1..10`},
		{ok + ok + `{"_feed_id":"f","_line":2,"id":1,`, `staged s3://b/k record 3: invalid JSON: the line ends inside a value (after byte 33)`},
		{`not json`, `staged s3://b/k record 1: invalid JSON at byte 2: unexpected 'o' in literal null (expecting 'u')`},
		{`{"_feed_id":"f","id":1}`, `staged s3://b/k record 1: no _line`},
		{`{"_line":3,"id":1}`, `staged s3://b/k record 1: no _feed_id`},
		{`{"_feed_id":"f","_line":0,"id":1}`, `staged s3://b/k record 1: no _line`},
		{`{"_feed_id":"f","_line":3,"id":1,}`, `staged s3://b/k record 1: invalid JSON at byte 34: unexpected '}' looking for beginning of object key string`},
		{`{"_feed_id":"f","_line":3,"_feed_id":"g","id":1}`, `staged s3://b/k record 1: _feed_id or _line given twice`},
		{`{"_feed_id":"f","_line":3}`, `staged s3://b/k record 1: field "id" is required`},
		// Review: a record that is not UTF-8 is an error, not U+FFFD, and
		// its duplicate keys are still found.
		{"{\"_feed_id\":\"f\",\"_line\":3,\"id\":1,\"x\":\"\xff\",\"a\":1,\"a\":2}", `staged s3://b/k record 1: not valid UTF-8 (at byte 39)`},
	} {
		s, err := NewStaged(io.Discard, StagedOptions{Schema: schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}}},
			FeedID: "f", Lines: 10, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Add(context.Background(), "s3://b/k", []byte(c.body))
		if err == nil {
			_, err = s.Close()
		}
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.body, err, c.want)
		}
		if err2 := s.Add(context.Background(), "later", []byte(ok)); err2 != err {
			t.Errorf("Add after the error: %v", err2)
		}
		if _, err2 := s.Close(); err2 != err {
			t.Errorf("Close after the error: %v", err2)
		}
		s.Abort()
	}
}

// A record of a later object that is bad is reported even when earlier
// objects fill several batches, and Abort after a failed Close, or after
// Close, is safe.
func TestStagedErrorAfterManyBatches(t *testing.T) {
	const n = 20000
	var body bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&body, `{"_feed_id":"f","_line":%d,"id":%d,"name":"%s"}`+"\n", i, i, strings.Repeat("x", i%100))
	}
	s, err := NewStaged(io.Discard, StagedOptions{Schema: smallSchema(), FeedID: "f", Lines: n + 1, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(context.Background(), "big", body.Bytes()); err != nil {
		t.Fatal(err)
	}
	err = s.Add(context.Background(), "bad", []byte(`{"_feed_id":"f","_line":20001,"addr":[1]}`))
	if err == nil {
		_, err = s.Close()
	}
	if err == nil || err.Error() != "staged bad record 1: field \"addr\": want an object, got [1]" {
		t.Errorf("error %v", err)
	}
	s.Abort()

	s, err = NewStaged(io.Discard, StagedOptions{Schema: smallSchema(), FeedID: "f", Lines: n})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(context.Background(), "big", body.Bytes()); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Close(); err != nil || st.Rows != n {
		t.Fatalf("Close = %+v, %v", st, err)
	}
	s.Abort()
	if err := s.Add(context.Background(), "late", body.Bytes()); err == nil {
		t.Error("Add after Close accepted")
	}
}

// A feed with no record still gets a file, with the schema's columns.
func TestStagedEmpty(t *testing.T) {
	var got, want bytes.Buffer
	st, err := convertStaged(&got, StagedOptions{Schema: smallSchema(), FeedID: "f", Lines: 0}, [][]byte{nil, []byte("\n\n"), []byte(`{"_feed_id":"g","_line":1}`)})
	if err != nil || st != (StagedStats{Others: 1}) {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if _, err := convertReference(&want, smallSchema(), "f", 0, nil); err != nil {
		t.Fatal(err)
	}
	sameFile(t, got.Bytes(), want.Bytes())
}

// BenchmarkStaged converts 32 MB of staged wide-feed records, in objects
// of 1,000 records, with the fast engine and with the reference path the
// Convert stage used (schema.ParseRecord and parquetconv.Writer.Write);
// MB/s is of the staged records.
func BenchmarkStaged(b *testing.B) {
	feed := wideFeed(b, 32<<20)
	lines := bytes.Split(bytes.TrimSpace(feed), []byte("\n"))
	s := Infer(lines)
	var objs [][]byte
	var size int64
	for i := 0; i < len(lines); i += 1000 {
		var body bytes.Buffer
		for j := i; j < min(i+1000, len(lines)); j++ {
			body.Write(stagedRecord("feed-0001", int64(j+1), lines[j]))
			body.WriteByte('\n')
		}
		objs = append(objs, body.Bytes())
		size += int64(body.Len())
	}
	n := int64(len(lines))
	for _, mode := range []struct {
		name    string
		convert func() (StagedStats, error)
	}{
		{"fast", func() (StagedStats, error) {
			return convertStaged(io.Discard, StagedOptions{Schema: s, FeedID: "feed-0001", Lines: n}, objs)
		}},
		{"reference", func() (StagedStats, error) { return convertReference(io.Discard, s, "feed-0001", n, objs) }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				st, err := mode.convert()
				if err != nil || st.Rows != n {
					b.Fatalf("%+v, %v", st, err)
				}
			}
		})
	}
}

// A staged file's integer pages are delta-encoded when that makes them
// smaller (its _line column and this feed's n count up), and PLAIN with
// PlainIntegers, for a loader that does not decode DELTA_BINARY_PACKED;
// the rows are the same either way.
func TestStagedPlainIntegers(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "n", Type: schema.Int64}}}
	const lines = 5000
	var body bytes.Buffer
	for i := int64(1); i <= lines; i++ {
		body.Write(stagedRecord("f", i, fmt.Appendf(nil, `{"n":%d}`, 3*i)))
		body.WriteByte('\n')
	}
	var rows []map[int64]parquet.Row
	for _, plain := range []bool{false, true} {
		var out bytes.Buffer
		if _, err := convertStaged(&out, StagedOptions{Schema: s, FeedID: "f", Lines: lines, PlainIntegers: plain}, [][]byte{body.Bytes()}); err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatal(err)
		}
		for _, cc := range f.Metadata().RowGroups[0].Columns {
			name := cc.MetaData.PathInSchema[0]
			if name != schema.LineField && name != "n" {
				continue
			}
			want := []format.Encoding{format.DeltaBinaryPacked}
			if plain {
				want = []format.Encoding{format.Plain}
			}
			if !slices.Equal(cc.MetaData.Encoding, want) {
				t.Errorf("PlainIntegers %v: %s encodings %v, want %v", plain, name, cc.MetaData.Encoding, want)
			}
		}
		_, r := parquetRows(t, out.Bytes())
		rows = append(rows, r)
	}
	if len(rows[0]) != lines || fmt.Sprint(rows[0]) != fmt.Sprint(rows[1]) {
		t.Errorf("rows differ between the encodings (%d and %d rows)", len(rows[0]), len(rows[1]))
	}
}
