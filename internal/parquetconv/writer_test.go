package parquetconv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

var nested = schema.Schema{Columns: []schema.Column{
	{Name: "id", Type: schema.Int64},
	{Name: "tags", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.String}},
	{Name: "doc", Type: schema.Object, Nullable: true, Fields: []schema.Column{
		{Name: "n", Type: schema.List, Items: &schema.Column{Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Int64, Nullable: true}}},
	}},
}}

// line i of a feed whose rows hold lists of every length from 0 to 4, nulls
// at every level and lists of lists.
func nestedLine(i int) string {
	tags := make([]string, i%5)
	for k := range tags {
		tags[k] = fmt.Sprintf("%q", fmt.Sprintf("t%d-%d", i, k))
	}
	doc := fmt.Sprintf(`{"n":[[%d,null],[],null,[%d]]}`, i, -i)
	switch i % 7 {
	case 3:
		doc = "null"
	case 5:
		doc = `{"n":[]}`
	}
	tagList := "[" + strings.Join(tags, ",") + "]"
	if i%11 == 4 {
		tagList = "null"
	}
	return fmt.Sprintf(`{"id":%d,"tags":%s,"doc":%s}`, i, tagList, doc)
}

// Row groups end at exactly RowGroupRows rows, however the batches fall and
// however many values each row has in its repeated columns; pyarrow reads
// every value back.
func TestWriteRowsSplitsRowGroupsAtRowBoundaries(t *testing.T) {
	var out bytes.Buffer
	w, err := NewWriter(&out, nested, Options{NoFeedColumns: true, RowGroupRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	p := schema.NewParser(w.Layout())
	var lines []string
	rows := schema.NewRows(w.Layout())
	for _, batch := range []int{1, 5, 13, 0, 7, 2, 30} {
		for range batch {
			line := nestedLine(len(lines) + 1)
			lines = append(lines, line)
			if err := p.AppendLine(rows, []byte(line)); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
		}
		if err := w.WriteRows(rows); err != nil {
			t.Fatal(err)
		}
		rows.Reset()
	}
	n, err := w.Close()
	if err != nil || n != int64(len(lines)) {
		t.Fatalf("Close: %d rows, %v; want %d", n, err, len(lines))
	}
	f := pyarrowtest.Read(t, out.Bytes())
	wantGroups := []int{7, 7, 7, 7, 7, 7, 7, 7, 2}
	if fmt.Sprint(f.RowGroups) != fmt.Sprint(wantGroups) {
		t.Errorf("row groups %v, want %v", f.RowGroups, wantGroups)
	}
	for i, line := range lines {
		var want map[string]any
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(f.Rows[i])
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("row %d:\n got %s\nwant %s", i+1, got, wantJSON)
		}
	}
}

// Rows written one at a time carry their feed id and line number; a row
// group ends once what it holds reaches RowGroupBytes.
func TestWriteFeedRecordsBoundedByBytes(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "text", Type: schema.String}}}
	var out bytes.Buffer
	w, err := NewWriter(&out, s, Options{RowGroupBytes: 1 << 20, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	const rows = 5000
	text := strings.Repeat("x", 1000) // 5 MB in all, incompressible enough uncompressed
	for i := 1; i <= rows; i++ {
		if err := w.Write("feed-1", int64(i), []schema.Value{{I: int64(i)}, {S: fmt.Sprintf("%d%s", i, text)}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := w.Close(); err != nil || n != rows {
		t.Fatalf("Close: %d, %v", n, err)
	}
	f := pyarrowtest.Read(t, out.Bytes())
	if len(f.RowGroups) < 4 {
		t.Errorf("row groups %v: want several, each near 1 MiB", f.RowGroups)
	}
	for _, g := range f.RowGroups {
		if g > 2000 { // 1 MiB holds about 1,000 of these rows; the check runs per 1,024-row batch
			t.Errorf("row group of %d rows: over the byte bound", g)
		}
	}
	for i, r := range f.Rows {
		if r["_feed_id"] != "feed-1" || r["_line"] != float64(i+1) || r["id"] != float64(i+1) || !strings.HasPrefix(r["text"].(string), fmt.Sprint(i+1)) {
			t.Fatalf("row %d: %v", i+1, r)
		}
	}
}

// A writer given up on (Abort) stops its workers and releases what it was
// given; Close after Abort, or a second Close, is an error, not a hang.
func TestAbortStopsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	w, err := NewWriter(io.Discard, nested, Options{NoFeedColumns: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := schema.NewParser(w.Layout())
	rows := schema.NewRows(w.Layout())
	for i := 1; i <= 100; i++ {
		if err := p.AppendLine(rows, []byte(nestedLine(i))); err != nil {
			t.Fatal(err)
		}
	}
	released := make(chan struct{})
	if err := w.WriteRowsAsync(rows, func() { close(released) }); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	<-released
	if _, err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}
	if err := w.WriteRowsAsync(rows, func() {}); err == nil {
		t.Error("write after Abort succeeded")
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines after Abort, %d before", after, before)
	}
}

// A row with a multi-MB string leaves a small footer: the column chunk's
// min and max, and the page index's, are cut to StatsLimit bytes, and the
// cut max still bounds every value. pyarrow reads the value back whole.
func TestLongValueLeavesSmallFooter(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "s", Type: schema.String, Nullable: true}}}
	long := strings.Repeat("é", 5<<20) + "z" // 10 MiB of two-byte characters
	vals := []string{"a", long, "zz" + strings.Repeat("\U0010FFFF", 40), strings.Repeat("b", 100)}
	var out bytes.Buffer
	w, err := NewWriter(&out, s, Options{NoFeedColumns: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if err := w.Write("", 0, []schema.Value{{I: int64(i)}, {S: v}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	footer := int(b[len(b)-8]) | int(b[len(b)-7])<<8 | int(b[len(b)-6])<<16 | int(b[len(b)-5])<<24
	if footer > 2048 {
		t.Errorf("footer of %d bytes; want under 2 KiB", footer)
	}
	// The value compresses to little: a file far larger than that holds
	// copies of it elsewhere (page headers, page index).
	if len(b) > 64<<10 {
		t.Errorf("file of %d bytes; want under 64 KiB", len(b))
	}
	path := t.TempDir() + "/long.parquet"
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := pyarrowtest.Run(t, `
import json, sys, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
col = f.read().column("s").to_pylist()
st = f.metadata.row_group(0).column(1).statistics
print(json.dumps({"s": col, "min": st.min, "max": st.max, "has": st.has_min_max}))
`, path)
	var got struct {
		S        []string
		Min, Max string
		Has      bool
	}
	if err := json.Unmarshal(res, &got); err != nil {
		t.Fatalf("%v: %.200s", err, res)
	}
	if len(got.S) != len(vals) || got.S[1] != long {
		t.Fatalf("pyarrow read %d values; the long one %d bytes, want %d", len(got.S), len(got.S[1]), len(long))
	}
	if !got.Has || len(got.Min) > StatsLimit || len(got.Max) > StatsLimit+4 {
		t.Fatalf("statistics min %.80q max %.80q (%d bytes, has %v): want both, cut to %d bytes", got.Min, got.Max, len(got.Max), got.Has, StatsLimit)
	}
	for _, v := range vals {
		if v < got.Min || v > got.Max {
			t.Errorf("value %.20q… outside the statistics [%.80q, %.80q]", v, got.Min, got.Max)
		}
	}
}

func TestTruncateBounds(t *testing.T) {
	for _, c := range []struct {
		v, min, max string
		limit       int
	}{
		{"abc", "abc", "abc", 3},
		{"abcd", "abc", "abd", 3},
		{"aéé", "aé", "aê", 4},                                      // the cut falls between characters
		{"a\U0010FFFF\U0010FFFFx", "a\U0010FFFF\U0010FFFF", "b", 9}, // U+10FFFF cannot grow: the one before it does
		{"\U0010FFFF\U0010FFFFx", "\U0010FFFF\U0010FFFF", "", 8},    // nothing can: no max
		{"a\uD7FFb", "a\uD7FF", "a\uE000", 4},                       // past the surrogates
		{"\xff\xfe\xff\xffzz", "\xff\xfe\xff", "\xff\xff", 3},       // not UTF-8: byte by byte
	} {
		gotMin, gotMax := TruncateMin([]byte(c.v), c.limit), TruncateMax([]byte(c.v), c.limit)
		if string(gotMin) != c.min || string(gotMax) != c.max {
			t.Errorf("%q cut to %d: min %q max %q, want %q %q", c.v, c.limit, gotMin, gotMax, c.min, c.max)
		}
		if c.max == "" && gotMax != nil {
			t.Errorf("%q: max %q, want none", c.v, gotMax)
		}
	}
}

// Write writes its rows on once their strings reach pendingBytes, not only
// every pendingRows rows: long strings are not collected by the GiB.
func TestWriteBoundsPendingBytes(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "s", Type: schema.String}}}
	w, err := NewWriter(io.Discard, s, Options{NoFeedColumns: true, Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", pendingBytes/4+1)
	for i := range 4 {
		if err := w.Write("", 0, []schema.Value{{S: long}}); err != nil {
			t.Fatal(err)
		}
		want := i + 1
		if i == 3 {
			want = 0 // 4 strings pass pendingBytes: written on
		}
		if w.pending.N != want {
			t.Fatalf("after %d rows of %d bytes, %d rows pending, want %d", i+1, len(long), w.pending.N, want)
		}
	}
	if n, err := w.Close(); err != nil || n != 4 {
		t.Fatalf("Close: %d rows, %v", n, err)
	}
}
