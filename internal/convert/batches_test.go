package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// A string column is dictionary-encoded when its sample values repeat, on
// average: at most one distinct value per 2 seen (and at most 4,096).
func TestInferDictionaryWhenValuesRepeat(t *testing.T) {
	var lines [][]byte
	for i := range 100 {
		lines = append(lines, fmt.Appendf(nil, `{"half":"h%d","more":"m%d","few":"f%d","all":"a%d"}`, i%50, i%51, i%3, i))
	}
	dict := map[string]bool{}
	for _, c := range Infer(lines).Columns {
		dict[c.Name] = c.Dictionary
	}
	want := map[string]bool{"half": true, "more": false, "few": true, "all": false}
	if fmt.Sprint(dict) != fmt.Sprint(want) {
		t.Errorf("dictionary by column %v, want %v", dict, want)
	}
}

// A batch holds at most batchValues values whatever the schema's width:
// the lines of a batch of a wide schema are fewer.
func TestLinesForBoundsValues(t *testing.T) {
	for _, c := range []struct{ leaves, lines int }{
		{0, blockLines}, {1, blockLines}, {16, blockLines}, {17, batchValues / 17},
		{1000, batchValues / 1000}, {schema.MaxLeafColumns, batchValues / schema.MaxLeafColumns}, {batchValues * 2, 1},
	} {
		if got := linesFor(c.leaves); got != c.lines {
			t.Errorf("linesFor(%d) = %d, want %d", c.leaves, got, c.lines)
		}
		if got := linesFor(c.leaves); got*max(1, c.leaves) > batchValues && got > 1 {
			t.Errorf("linesFor(%d) = %d lines: %d values, over %d", c.leaves, got, got*c.leaves, batchValues)
		}
	}
}

// With maxLines, the block reader cuts at most that many lines a fill, and
// the lines are still those of splitting the input at "\n".
func TestLineSourceMaxLines(t *testing.T) {
	in := strings.Repeat("ab\n", 1000) + strings.Repeat("c", blockBytes) + "\nd"
	want := strings.Split(in, "\n")
	for _, maxLines := range []int{1, 7, 999} {
		src := &lineSource{r: &chunkReader{b: []byte(in), r: rand.New(rand.NewPCG(1, 1))}, maxLines: maxLines}
		var got []string
		for {
			var ls lines
			src.fill(&ls)
			if len(ls.lines) == 0 {
				break
			}
			if len(ls.lines) > maxLines {
				t.Fatalf("maxLines %d: a fill of %d lines", maxLines, len(ls.lines))
			}
			for _, l := range ls.lines {
				got = append(got, string(l))
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("maxLines %d: %d lines, not those of the input (%d)", maxLines, len(got), len(want))
		}
	}
}

// The inference sample is converted in batches of at most the batch's
// lines, in order, each without a block of its own (the batch's next fill
// reads into a new one, not into a block another batch holds).
func TestSampleBatches(t *testing.T) {
	in := strings.Repeat(`{"a":1}`+"\n", 3*blockLines+5)
	src := &lineSource{r: strings.NewReader(in)}
	s := &sampleBlocks{}
	if n, err := src.take(s, 2*blockLines, 0); err != nil || n < 2*blockLines {
		t.Fatalf("take: %d lines, %v", n, err)
	}
	total := len(s.all.lines)
	seen := 0
	for {
		part, ok := s.next(100)
		if !ok {
			break
		}
		if len(part.lines) == 0 || len(part.lines) > 100 || part.block != nil {
			t.Fatalf("a part of %d lines, block %v", len(part.lines), part.block != nil)
		}
		for _, l := range part.lines {
			if !bytes.Equal(l, s.all.lines[seen]) {
				t.Fatalf("line %d out of order", seen+1)
			}
			seen++
		}
	}
	if seen != total {
		t.Errorf("%d of the sample's %d lines converted", seen, total)
	}
}

// A wide, sparse feed (each line one of 1,000 keys) converts whole: every
// line a row with its value in its column, the others null, although a
// batch holds 65 of its lines.
func TestWideSparseFeedConverts(t *testing.T) {
	const keys, n = 1000, 2000
	var feed bytes.Buffer
	for i := range n {
		fmt.Fprintf(&feed, `{"k%04d":%d}`+"\n", i%keys, i)
	}
	pq, st, rej := convertBytes(t, feed.Bytes(), Options{InferLines: n})
	if st.Rows != n || len(rej) != 0 || len(st.Schema.Columns) != keys {
		t.Fatalf("%d rows, %d rejects, %d columns; want %d, 0, %d", st.Rows, len(rej), len(st.Schema.Columns), n, keys)
	}
	rows := readBack(t, pq)
	for _, i := range []int{0, 1, keys - 1, keys, n - 1} {
		k := fmt.Sprintf("k%04d", i%keys)
		if rows[i][k] != float64(i) || rows[i][fmt.Sprintf("k%04d", (i+1)%keys)] != nil {
			t.Errorf("row %d: %s = %v", i+1, k, rows[i][k])
		}
	}
}

// Nesting thousands of levels deep converts in time and memory in
// proportion to the line, not its square: 20 lines of objects and arrays
// 9,000 levels deep (within encoding/json's 10,000) become rows whose json
// column holds the value exactly; one level deeper than 10,000 is a reject
// that says so. (Sound walked such a line once per level, decoding it
// again each time: 177 s and 4.9 GB for these 20 lines.)
func TestDeepNestingConverts(t *testing.T) {
	const d = 9000
	obj := strings.Repeat(`{"a":`, d) + "1" + strings.Repeat("}", d)
	arr := strings.Repeat("[", d) + "1" + strings.Repeat("]", d)
	var feed strings.Builder
	for i := range 20 {
		fmt.Fprintf(&feed, `{"id":%d,"x":%s,"y":%s}`+"\n", i, obj, arr)
	}
	fmt.Fprintf(&feed, `{"id":20,"x":%s}`+"\n", strings.Repeat("[", 10001)+strings.Repeat("]", 10001))
	// Inferred (the first 8 levels become object columns, the rest json)
	// and declared json: the same rows and the same reject.
	json := &schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64},
		{Name: "x", Type: schema.JSON, Nullable: true}, {Name: "y", Type: schema.JSON, Nullable: true}}}
	var pq []byte
	for _, opt := range []Options{{}, {Schema: json}} {
		var st Stats
		var rej []rejected
		pq, st, rej = convertBytes(t, []byte(feed.String()), opt)
		if st.Rows != 20 || len(rej) != 1 || rej[0].line != 21 || !strings.Contains(rej[0].reason, "exceeded max depth") {
			t.Fatalf("schema %v: %d rows, rejects %v; want 20 rows and line 21 rejected for its depth", opt.Schema != nil, st.Rows, rej)
		}
	}
	out := pyarrowtest.Run(t, `
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(t.num_rows, set(t.column("x").to_pylist()) == {sys.argv[2]}, set(t.column("y").to_pylist()) == {sys.argv[3]})
`, writeTemp(t, pq), obj, arr)
	if got := strings.TrimSpace(string(out)); got != "20 True True" {
		t.Errorf("pyarrow read %q; want 20 rows with x and y exactly as given", got)
	}
}

// recordingWriter takes rows and releases them (after delay, on another
// goroutine, if set), noting the most values one WriteRowsAsync handed it,
// the rows in all and the ids (leaf 0) in the order written; onWrite, if
// set, is called at each write.
type recordingWriter struct {
	layout          *schema.Layout
	delay           time.Duration
	onWrite         func()
	maxValues, rows int
	ids             []int64
}

func (w *recordingWriter) Layout() *schema.Layout { return w.layout }
func (w *recordingWriter) WriteRowsAsync(r *schema.Rows, release func()) error {
	if w.onWrite != nil {
		w.onWrite()
	}
	w.maxValues = max(w.maxValues, r.Values())
	w.rows += r.N
	for _, v := range r.LeafValues(0) {
		w.ids = append(w.ids, v.Int64())
	}
	if w.delay > 0 {
		time.AfterFunc(w.delay, release)
	} else {
		release()
	}
	return nil
}

// manyValues is a schema of an id and a list of objects of 50 fields, and
// n lines of it whose lists hold 1,000 empty objects (50,000 values a line).
func manyValues(t *testing.T, n int) (*schema.Layout, string) {
	t.Helper()
	fields := make([]schema.Column, 50)
	for i := range fields {
		fields[i] = schema.Column{Name: fmt.Sprintf("f%d", i), Type: schema.Int64, Nullable: true}
	}
	s := schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "l", Type: schema.List, Nullable: true,
		Items: &schema.Column{Type: schema.Object, Fields: fields}}}}
	layout, err := schema.NewLayout(&s, schema.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list := `[` + strings.Repeat("{},", 999) + `{}]`
	var feed strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&feed, `{"id":%d,"l":%s}`+"\n", i, list)
	}
	return layout, feed.String()
}

// Lines whose lists of objects parse into far more values than their
// bytes (3 bytes an element "{}", a value for each of its 50 leaves) are
// written in parts of at most spillValues values (and one line's), not
// held as one batch (the review's 0.48 MB feed took 475 MiB), in order,
// every row once, whether the Writer copies rows at once or later.
func TestBatchOfManyValuesIsSpilled(t *testing.T) {
	const n = 400 // 3 KB lines: batches of 256 KiB, about 85 lines (4 M values) each
	layout, feed := manyValues(t, n)
	for _, workers := range []int{1, 2, 4} {
		for _, delay := range []time.Duration{0, time.Millisecond} {
			w := &recordingWriter{layout: layout, delay: delay}
			var st Stats
			p := pipelineRun{opt: Options{Workers: workers}, pw: w, st: &st}
			if err := p.run(context.Background(), &lineSource{r: strings.NewReader(feed)}, &sampleBlocks{}); err != nil {
				t.Fatal(err)
			}
			if w.rows != n || st.Lines != n || st.Rejected != 0 {
				t.Errorf("workers %d: %d rows written, %d lines, %d rejected; want %d, %d, 0", workers, w.rows, st.Lines, st.Rejected, n, n)
			}
			for i, id := range w.ids {
				if id != int64(i+1) {
					t.Fatalf("workers %d, delay %v: row %d has id %d: rows out of order", workers, delay, i+1, id)
				}
			}
			if w.maxValues > spillValues+50_001 {
				t.Errorf("workers %d: a write of %d values; want at most %d", workers, w.maxValues, spillValues+50_001)
			}
		}
	}
}

// A conversion whose context is cancelled while parsers spill returns the
// context's error. It used to hang (review; this test timed out with a
// parser in spill when the context was done before the start): a batch
// could reach a parser but, the context done, not the writer, and its
// parser waited for its turn forever.
func TestCancelWhileSpilling(t *testing.T) {
	const n = 2000
	layout, feed := manyValues(t, n)
	for i := range 50 {
		// Cancelled at the first write, or before the start (then the
		// first batches meet a done context while the workers are idle).
		ctx, cancel := context.WithCancel(context.Background())
		w := &recordingWriter{layout: layout, delay: time.Millisecond, onWrite: cancel}
		if i%2 == 1 {
			cancel()
		}
		var st Stats
		p := pipelineRun{opt: Options{Workers: 2}, pw: w, st: &st}
		err := p.run(ctx, &lineSource{r: strings.NewReader(feed)}, &sampleBlocks{})
		cancel()
		if !errors.Is(err, context.Canceled) && !errors.Is(err, errStopped) && (err != nil || w.rows != n) {
			t.Fatalf("run: %v after %d of %d rows, want the context's error", err, w.rows, n)
		}
	}
}

// When no line of the sample gives a column, inference reads on within
// the same 64 MiB: 70 lines of 1 MiB JSON strings before the first object
// fail naming the bound, rather than being held whole.
func TestInferencePastUnusableLinesBoundedInBytes(t *testing.T) {
	var feed bytes.Buffer
	s := `"` + strings.Repeat("x", 1<<20) + `"` + "\n"
	for range 70 {
		feed.WriteString(s)
	}
	feed.WriteString(`{"a":1}` + "\n")
	_, err := Convert(context.Background(), bytes.NewReader(feed.Bytes()), io.Discard, Options{})
	if err == nil || !strings.Contains(err.Error(), "(the first 64 MiB, the most inference reads) is a JSON object with a field that can be a column") {
		t.Fatalf("Convert: %v; want the 64 MiB bound named", err)
	}
}
