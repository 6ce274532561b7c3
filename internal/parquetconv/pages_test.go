package parquetconv

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// Every column kind the converter writes, with nulls, and a column that is
// null for whole pages.
var everyKind = schema.Schema{Columns: []schema.Column{
	{Name: "id", Type: schema.Int64},
	{Name: "city", Type: schema.String, Dictionary: true, Nullable: true},
	{Name: "note", Type: schema.String, Nullable: true},
	{Name: "score", Type: schema.Float64, Nullable: true},
	{Name: "ok", Type: schema.Bool, Nullable: true},
	{Name: "day", Type: schema.Date, Nullable: true},
	{Name: "small", Type: schema.Decimal, Precision: 5, Scale: 2, Nullable: true},
	{Name: "big", Type: schema.Decimal, Precision: 18, Scale: 3, Nullable: true},
	{Name: "at", Type: schema.Timestamp, Nullable: true},
	{Name: "tags", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.String, Nullable: true}},
}}

func everyKindLine(i int) string {
	note := fmt.Sprintf("%q", fmt.Sprintf("note %d %s", i*7919%100003, strings.Repeat("x", i%90)))
	if i >= 20000 && i < 60000 {
		note = "null" // whole pages of nulls
	}
	city := fmt.Sprintf(`"c%d"`, i%13)
	if i%17 == 0 {
		city = "null"
	}
	tags := fmt.Sprintf(`["a%d",null,"b"]`, i%5)
	switch i % 6 {
	case 1:
		tags = "[]"
	case 2:
		tags = "null"
	}
	return fmt.Sprintf(`{"id":%d,"city":%s,"note":%s,"score":%g,"ok":%t,"day":"2026-%02d-%02d","small":%d.%02d,"big":-%d.5,"at":"2026-01-01T00:00:%02d.%06dZ","tags":%s}`,
		i, city, note, float64(i%1000)-499.5, i%3 == 0, i%12+1, i%28+1, i%999-500, i%100, i*31, i%60, i%1000000, tags)
}

// The page index (offset index and column index) that the writer puts
// after the row groups describes each page as it is: where it starts, its
// first row, its nulls and bounds of its values; and the chunks' statistics
// bound their pages. Checked with parquet-go's reader, page by page.
func TestPageIndexDescribesEveryPage(t *testing.T) {
	lines := make([]string, 130000)
	for i := range lines {
		lines[i] = everyKindLine(i)
	}
	data := writeLines(t, everyKind, Options{RowGroupRows: 100000}, lines)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.RowGroups()); n != 2 {
		t.Fatalf("%d row groups, want 2", n)
	}
	multiPage := 0
	for r, rg := range f.RowGroups() {
		for c, chunk := range rg.ColumnChunks() {
			name := fmt.Sprintf("row group %d column %v", r, f.Metadata().RowGroups[r].Columns[c].MetaData.PathInSchema)
			md := f.Metadata().RowGroups[r].Columns[c].MetaData
			if want := f.Schema().Columns()[c]; !slices.Equal(md.PathInSchema, want) {
				t.Errorf("%s: path_in_schema %v, want the whole path %v", name, md.PathInSchema, want)
			}
			if levels := slices.Contains(md.Encoding, format.RLE); levels != (md.PathInSchema[0] != "id") {
				t.Errorf("%s: encodings %v: RLE listed %v, want it for the columns with levels (all but id)", name, md.Encoding, levels)
			}
			oi, err := chunk.OffsetIndex()
			if err != nil {
				t.Fatalf("%s: offset index: %v", name, err)
			}
			ci, err := chunk.ColumnIndex()
			if err != nil {
				t.Fatalf("%s: column index: %v", name, err)
			}
			if oi.NumPages() != ci.NumPages() {
				t.Fatalf("%s: %d pages in the offset index, %d in the column index", name, oi.NumPages(), ci.NumPages())
			}
			if oi.NumPages() > 1 {
				multiPage++
			}
			typ := chunk.Type()
			pages := chunk.Pages()
			var nulls int64
			for k := 0; k < oi.NumPages(); k++ {
				checkPageHeaderAt(t, data, oi.Offset(k), oi.CompressedPageSize(k), name)
				p, err := pages.ReadPage()
				if err != nil {
					t.Fatalf("%s page %d: %v", name, k, err)
				}
				rows := rg.NumRows() - oi.FirstRowIndex(k)
				if k+1 < oi.NumPages() {
					rows = oi.FirstRowIndex(k+1) - oi.FirstRowIndex(k)
				}
				if p.NumRows() != rows {
					t.Errorf("%s page %d: %d rows, the offset index says %d", name, k, p.NumRows(), rows)
				}
				if p.NumNulls() != ci.NullCount(k) {
					t.Errorf("%s page %d: %d nulls, the column index says %d", name, k, p.NumNulls(), ci.NullCount(k))
				}
				nulls += p.NumNulls()
				lo, hi, ok := p.Bounds()
				if ok == ci.NullPage(k) {
					t.Errorf("%s page %d: has values %v, the column index says null page %v", name, k, ok, ci.NullPage(k))
				}
				if ok {
					if typ.Compare(ci.MinValue(k), lo) > 0 || typ.Compare(ci.MaxValue(k), hi) < 0 {
						t.Errorf("%s page %d: values %v…%v, the column index says %v…%v", name, k, lo, hi, ci.MinValue(k), ci.MaxValue(k))
					}
					if typ.Kind() != parquet.ByteArray && (typ.Compare(ci.MinValue(k), lo) != 0 || typ.Compare(ci.MaxValue(k), hi) != 0) {
						t.Errorf("%s page %d: values %v…%v, the column index says %v…%v", name, k, lo, hi, ci.MinValue(k), ci.MaxValue(k))
					}
					min, max := typ.Kind().Value(md.Statistics.MinValue), typ.Kind().Value(md.Statistics.MaxValue)
					if typ.Compare(min, lo) > 0 || typ.Compare(max, hi) < 0 {
						t.Errorf("%s page %d: values %v…%v outside the chunk's statistics %v…%v", name, k, lo, hi, min, max)
					}
				}
				parquet.Release(p)
			}
			if _, err := pages.ReadPage(); err != io.EOF {
				t.Errorf("%s: a page after the %d the offset index has (%v)", name, oi.NumPages(), err)
			}
			pages.Close()
			if nulls != md.Statistics.NullCount {
				t.Errorf("%s: %d nulls in the pages, %d in the statistics", name, nulls, md.Statistics.NullCount)
			}
		}
	}
	if multiPage < 5 {
		t.Errorf("%d chunks of more than one page; the test wants pages to check", multiPage)
	}
	read := pyarrowtest.Read(t, data)
	if len(read.Rows) != len(lines) {
		t.Fatalf("pyarrow read %d rows, want %d", len(read.Rows), len(lines))
	}
	for _, i := range []int{0, 1, 2, 17, 20000, 59999, 60000, 99999, 100000, 129999} {
		r := read.Rows[i]
		if r["id"] != float64(i) || fmt.Sprint(r["small"]) != fmt.Sprintf("%d.%02d", i%999-500, i%100) && i%999-500 >= 0 {
			t.Errorf("row %d: %v", i, r)
		}
		if (i >= 20000 && i < 60000) != (r["note"] == nil) {
			t.Errorf("row %d: note %v", i, r["note"])
		}
	}
}

// checkPageHeaderAt checks that a data page of size bytes, header included,
// starts at off.
func checkPageHeaderAt(t *testing.T, data []byte, off, size int64, name string) {
	t.Helper()
	r := bytes.NewReader(data[off:])
	var h format.PageHeader
	if err := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(r)).Decode(&h); err != nil {
		t.Fatalf("%s: no page header at offset %d: %v", name, off, err)
	}
	headerLen := int64(len(data[off:])) - int64(r.Len())
	if h.Type != format.DataPageV2 || headerLen+int64(h.CompressedPageSize) != size {
		t.Fatalf("%s: at %d a %v page of %d bytes, the offset index says a data page of %d", name, off, h.Type, headerLen+int64(h.CompressedPageSize), size)
	}
}

// A long string whose maximum cannot be cut short (its characters are all
// U+10FFFF, the last there is) leaves the chunk without bounds and without
// a column index, rather than with a wrong or huge one; the file reads.
func TestUnboundableMaxLeavesNoBounds(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "k", Type: schema.String}}}
	top := strings.Repeat("\U0010FFFF", 100)
	data := writeLines(t, s, Options{}, []string{`{"k":"a"}`, `{"k":"` + top + `"}`})
	md, err := readFooter(data)
	if err != nil {
		t.Fatal(err)
	}
	cc := md.RowGroups[0].Columns[0]
	if st := cc.MetaData.Statistics; st.MinValue != nil || st.MaxValue != nil {
		t.Errorf("statistics %q…%q, want none", st.MinValue, st.MaxValue)
	}
	if cc.ColumnIndexLength != 0 || cc.OffsetIndexLength == 0 {
		t.Errorf("column index of %d bytes, offset index of %d; want none and one", cc.ColumnIndexLength, cc.OffsetIndexLength)
	}
	read := pyarrowtest.Read(t, data)
	if len(read.Rows) != 2 || read.Rows[1]["k"] != top {
		t.Errorf("pyarrow read %v", read.Rows)
	}
}

// A file of no rows is a valid file of the schema.
func TestNoRowsIsAFile(t *testing.T) {
	data := writeLines(t, everyKind, Options{}, nil)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 0 || len(f.Schema().Columns()) != 10 {
		t.Errorf("%d rows, %d leaf columns; want 0 and 10", f.NumRows(), len(f.Schema().Columns()))
	}
	if read := pyarrowtest.Read(t, data); len(read.Rows) != 0 || len(read.Schema) != 10 {
		t.Errorf("pyarrow read %d rows of %d columns, want 0 of 10", len(read.Rows), len(read.Schema))
	}
}

// A dictionary column with no value in a row group (nulls only) still has
// a dictionary page, empty: its pages are RLE_DICTIONARY, and pyarrow and
// DuckDB refuse such pages without one.
func TestDictionaryColumnOfNullsReads(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64},
		{Name: "k", Type: schema.String, Dictionary: true, Nullable: true},
	}}
	lines := []string{`{"id":1,"k":"a"}`, `{"id":2,"k":null}`, `{"id":3}`, `{"id":4}`, `{"id":5}`}
	data := writeLines(t, s, Options{RowGroupRows: 2}, lines)
	read := pyarrowtest.Read(t, data)
	if len(read.Rows) != 5 || read.Rows[0]["k"] != "a" || read.Rows[1]["k"] != nil || read.Rows[4]["k"] != nil {
		t.Errorf("pyarrow read %v", read.Rows)
	}
	out := duckdbCount(t, data, "SELECT count(*), count(k), min(k) FROM read_parquet(?)")
	if out != "(5, 1, 'a')" {
		t.Errorf("DuckDB read %s, want (5, 1, 'a')", out)
	}
}

// duckdbCount runs query (one ? for the file's path) on data with DuckDB
// and returns its one row as Python prints a tuple.
func duckdbCount(t *testing.T, data []byte, query string) string {
	t.Helper()
	path := t.TempDir() + "/f.parquet"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := pyarrowtest.Run(t, "import duckdb, sys\nprint(duckdb.connect().execute(sys.argv[2], [sys.argv[1]]).fetchone())", path, query)
	return strings.TrimSpace(string(out))
}

// A dictionary column stops adding to its dictionary at the row after the
// one that took it past its bound, not at the end of a page: with values of
// 1,000 bytes each dictionary page stays within the bound and a value.
func TestDictionaryBoundHoldsWithinAPage(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "k", Type: schema.String, Dictionary: true}}}
	lines := make([]string, 3000)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"k":"%01000d"}`, i)
	}
	data := writeLines(t, s, Options{}, lines)
	md, err := readFooter(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range md.RowGroups {
		off := rg.Columns[0].MetaData.DictionaryPageOffset
		var h format.PageHeader
		if err := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(bytes.NewReader(data[off:]))).Decode(&h); err != nil {
			t.Fatal(err)
		}
		if h.Type != format.DictionaryPage || h.UncompressedPageSize > DictionaryMaxBytes+1004 {
			t.Errorf("a %v page of %d bytes at the dictionary's offset, want a dictionary page of at most %d", h.Type, h.UncompressedPageSize, DictionaryMaxBytes+1004)
		}
	}
	if read := pyarrowtest.Read(t, data); len(read.Rows) != len(lines) || read.Rows[2999]["k"] != fmt.Sprintf("%01000d", 2999) {
		t.Errorf("pyarrow read %d rows", len(read.Rows))
	}
}

// Pages keep only their cut bounds until the row group is written, so
// that a row group of huge strings does not hold each one twice more.
func TestPagesKeepCutBounds(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "k", Type: schema.String}}}
	var out bytes.Buffer
	w, err := NewWriter(&out, s, Options{NoFeedColumns: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	rows := schema.NewRows(w.Layout())
	p := schema.NewParser(w.Layout())
	for i := 0; i < 8; i++ {
		line := fmt.Sprintf(`{"k":"%d%s"}`, i, strings.Repeat("v", 1<<20))
		if err := p.AppendLine(rows, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	c := w.cols[0]
	if len(c.pages) < 7 {
		t.Fatalf("%d pages, want one per 1 MiB value but the last", len(c.pages))
	}
	for i, pg := range c.pages {
		if len(pg.min) > StatsLimit || len(pg.max) > StatsLimit {
			t.Errorf("page %d keeps bounds of %d and %d bytes, want at most %d", i, len(pg.min), len(pg.max), StatsLimit)
		}
	}
	if cap(c.pageMin) > 4*StatsLimit || cap(c.pageMax) > 4*StatsLimit {
		t.Errorf("after pages of 1 MiB values the column keeps bounds buffers of %d and %d bytes", cap(c.pageMin), cap(c.pageMax))
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// A chunk's first blocks are small and double up to the pool's size; all
// go back to the pool, and the next chunk takes them again.
func TestChunkBlocksStartSmall(t *testing.T) {
	pool := &blockPool{size: 64 << 10}
	b := blocks{pool: pool}
	b.append(make([]byte, 10))
	if b.cap != minBlock {
		t.Fatalf("10 bytes take %d, want one block of %d", b.cap, minBlock)
	}
	b.append(make([]byte, 200<<10))
	if b.len != 10+200<<10 {
		t.Fatalf("len %d", b.len)
	}
	var caps []int
	for _, bl := range b.bs {
		caps = append(caps, cap(bl))
	}
	want := []int{2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 64 << 10, 64 << 10}
	if !slices.Equal(caps, want) {
		t.Fatalf("blocks %v, want %v", caps, want)
	}
	if b.cap < b.len || b.cap != int64(2+4+8+16+32+3*64)<<10 {
		t.Errorf("cap %d for len %d", b.cap, b.len)
	}
	b.reset()
	if len(pool.free[64<<10]) != 3 || len(pool.free[2<<10]) != 1 || b.len != 0 || b.cap != 0 {
		t.Errorf("after reset: %d blocks of 64 KiB and %d of 2 KiB pooled (want 3 and 1), len %d, cap %d", len(pool.free[64<<10]), len(pool.free[2<<10]), b.len, b.cap)
	}
	first := pool.free[2<<10][0]
	b.append([]byte{1})
	if &b.bs[0][:1][0] != &first[:1][0] {
		t.Error("the next chunk did not take the pooled block")
	}
}

// failAfter fails every write after the first n bytes.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, fmt.Errorf("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

// A row group the output failed to take fails the Writer: the call that
// ends the next row group returns the output's error (row groups are
// written while the next one fills, so the call that ended the failed one
// may return first), and so do later calls and Close.
func TestWriteErrorFailsTheWriter(t *testing.T) {
	w, err := NewWriter(&failAfter{n: 1000}, everyKind, Options{NoFeedColumns: true, RowGroupRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	rows := everyKindRows(t, w, 100)
	_ = w.WriteRows(rows) // ends the first row group, whose write fails
	if err := w.WriteRows(rows); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteRows after the failure: %v, want the output's error", err)
	}
	if err := w.WriteRows(rows); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a later WriteRows: %v, want the output's error", err)
	}
	if _, err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close after the failure: %v, want the output's error", err)
	}
}

// everyKindRows parses n lines of everyKind into rows of w's layout.
func everyKindRows(t *testing.T, w *Writer, n int) *schema.Rows {
	t.Helper()
	p := schema.NewParser(w.Layout())
	rows := schema.NewRows(w.Layout())
	for i := range n {
		if err := p.AppendLine(rows, []byte(everyKindLine(i))); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// blockedOutput takes nothing until released: its first Write waits.
type blockedOutput struct{ release chan struct{} }

func (b *blockedOutput) Write(p []byte) (int, error) {
	<-b.release
	return len(p), nil
}

// The writer holds at most two row groups: while the output takes nothing,
// the call that ends the first row group returns, and the call that ends
// the second waits until the first is written.
func TestWriterHoldsAtMostTwoRowGroups(t *testing.T) {
	out := &blockedOutput{release: make(chan struct{})}
	w, err := NewWriter(out, everyKind, Options{NoFeedColumns: true, RowGroupRows: 100, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	rows := everyKindRows(t, w, 100)
	if err := w.WriteRows(rows); err != nil { // the first row group, handed over
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- w.WriteRows(rows) }()
	select {
	case err := <-second:
		t.Fatalf("the second row group's call returned (%v) while the first could not be written", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(out.release)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if n, err := w.Close(); err != nil || n != 200 {
		t.Fatalf("Close: %d rows, %v; want 200", n, err)
	}
}

// Pages that zstd does not shrink (random doubles) are stored as they are;
// pages that it does shrink stay compressed. pyarrow and DuckDB read both
// kinds.
func TestIncompressiblePagesStoredRaw(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{
		{Name: "r", Type: schema.Float64},
		{Name: "n", Type: schema.Int64},
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	lines := make([]string, 300000)
	var sum float64
	for i := range lines {
		v := rng.Float64()*2000 - 1000
		sum += v
		lines[i] = fmt.Sprintf(`{"r":%v,"n":%d}`, v, i%10)
	}
	data := writeLines(t, s, Options{}, lines)
	raw := map[string][2]int{} // column → pages raw, compressed
	eachDataPage(t, data, func(col string, h *format.PageHeader) {
		v2, _ := h.DataPageHeaderV2.Get()
		k := raw[col]
		if v2.IsCompressed.V {
			k[1]++
		} else {
			k[0]++
		}
		raw[col] = k
	})
	if r := raw["r"]; r[0] < 5 || r[1] != 0 {
		t.Errorf("random doubles: %d pages raw, %d compressed; want all raw", r[0], r[1])
	}
	if n := raw["n"]; n[0] != 0 || n[1] == 0 {
		t.Errorf("repeating ints: %d pages raw, %d compressed; want all compressed", n[0], n[1])
	}
	out := duckdbCount(t, data, "SELECT count(*), round(sum(r), 3), sum(n) FROM read_parquet(?)")
	var n, ns int
	for i := range lines {
		ns += i % 10
		n++
	}
	if want := fmt.Sprintf("(%d, %v, %d)", n, math.Round(sum*1000)/1000, ns); out != want {
		t.Errorf("DuckDB read %s, want %s", out, want)
	}
	if read := pyarrowtest.Read(t, data); len(read.Rows) != len(lines) || fmt.Sprintf(`{"r":%v,"n":%v}`, read.Rows[12345]["r"], read.Rows[12345]["n"]) != lines[12345] {
		t.Errorf("pyarrow read %d rows, row 12345 %v; want %s", len(read.Rows), read.Rows[12345], lines[12345])
	}
}

// eachDataPage calls fn with the top-level column name and header of each
// data page (v2, the only kind the writer makes) of the Parquet file data,
// in order.
func eachDataPage(t *testing.T, data []byte, fn func(col string, h *format.PageHeader)) {
	t.Helper()
	md, err := readFooter(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range md.RowGroups {
		for _, cc := range rg.Columns {
			off := cc.MetaData.DataPageOffset
			if d := cc.MetaData.DictionaryPageOffset; d > 0 && d < off {
				off = d // TotalCompressedSize counts the dictionary page
			}
			end := off + cc.MetaData.TotalCompressedSize
			for off < end {
				r := bytes.NewReader(data[off:end])
				var h format.PageHeader
				if err := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(r)).Decode(&h); err != nil {
					t.Fatal(err)
				}
				if h.Type == format.DataPageV2 {
					fn(cc.MetaData.PathInSchema[0], &h)
				}
				off += int64(len(data[off:end])-r.Len()) + int64(h.CompressedPageSize)
			}
		}
	}
}

// Each integer-like column's pages take the encoding, PLAIN or
// DELTA_BINARY_PACKED, in which they come out smaller once compressed
// (delta-encoded if at most a quarter larger): ids that count up (even
// with differences that overflow), random timestamps, ages, dates, a
// nullable INT32 decimal and a list of dates go delta-encoded; random
// int64s and codes that repeat stay PLAIN. pyarrow reads every value back
// exactly, and DuckDB agrees.
func TestIntegerPagesTakeTheSmallerEncoding(t *testing.T) {
	day := schema.Column{Type: schema.Date, Nullable: true}
	s := schema.Schema{Columns: []schema.Column{
		{Name: "id", Type: schema.Int64},
		{Name: "r", Type: schema.Int64},
		{Name: "code", Type: schema.Int64},
		{Name: "age", Type: schema.Int64},
		{Name: "at", Type: schema.Timestamp},
		{Name: "day", Type: schema.Date, Nullable: true},
		{Name: "dec", Type: schema.Decimal, Precision: 9, Nullable: true},
		{Name: "days", Type: schema.List, Nullable: true, Items: &day},
	}}
	const rows = 140000 // PLAIN pages of 32,768 int64s: 5 pages of id
	rng := rand.New(rand.NewPCG(3, 4))
	day0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	epochDay := int(day0.Unix() / 86400) // day0 as days since 1970-01-01
	at0 := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	lines := make([]string, rows)
	want := map[string]*strings.Builder{}
	for _, c := range []string{"id", "r", "code", "age", "at", "day", "dec", "days"} {
		want[c] = &strings.Builder{}
	}
	put := func(col string, v any) { fmt.Fprintln(want[col], v) }
	dateOf := func(d int) string { return day0.AddDate(0, 0, d).Format("2006-01-02") }
	for i := range lines {
		var id int64
		switch i {
		case 1000:
			id = math.MaxInt64
		case 1001:
			id = math.MinInt64 // a difference of 1 after MaxInt64, wrapped
		case 1002:
			id = -1
		default:
			id = int64(i)
		}
		r := int64(rng.Uint64())
		code := 1_000_000 + int64(rng.IntN(50))*20_011
		age := 18 + rng.IntN(70)
		at := at0 + rng.Int64N(11*365*86400*1_000_000)
		put("id", id)
		put("r", r)
		put("code", code)
		put("age", age)
		put("at", at)
		dayJSON := "null"
		if i%5 != 0 {
			dayJSON = `"` + dateOf(i/1000) + `"`
			put("day", epochDay+i/1000)
		} else {
			put("day", "None")
		}
		decJSON := "null"
		switch {
		case i%7 == 0:
			put("dec", "None")
		case i >= 5000 && i < 5040: // a run that overflows int32 differences
			v := 999_999_999 * (1 - 2*(i%2))
			decJSON = fmt.Sprint(v)
			put("dec", v)
		default:
			decJSON = fmt.Sprint(i)
			put("dec", i)
		}
		daysJSON := "null"
		switch i % 4 {
		case 0:
			put("days", "None")
		case 1:
			daysJSON = "[]"
			put("days", "[]")
		default:
			daysJSON = fmt.Sprintf(`["%s",null,"%s"]`, dateOf(i/500), dateOf(i/500+1))
			put("days", fmt.Sprintf("[%d, None, %d]", epochDay+i/500, epochDay+i/500+1))
		}
		lines[i] = fmt.Sprintf(`{"id":%d,"r":%d,"code":%d,"age":%d,"at":"%s","day":%s,"dec":%s,"days":%s}`,
			id, r, code, age, time.UnixMicro(at).UTC().Format("2006-01-02T15:04:05.000000Z"), dayJSON, decJSON, daysJSON)
	}
	data := writeLines(t, s, Options{}, lines) // one row group

	encs := map[string][]format.Encoding{}
	eachDataPage(t, data, func(col string, h *format.PageHeader) {
		v2, _ := h.DataPageHeaderV2.Get()
		encs[col] = append(encs[col], v2.Encoding)
	})
	for col, enc := range map[string]format.Encoding{"id": format.DeltaBinaryPacked, "r": format.Plain, "code": format.Plain, "age": format.DeltaBinaryPacked,
		"at": format.DeltaBinaryPacked, "day": format.DeltaBinaryPacked, "dec": format.DeltaBinaryPacked, "days": format.DeltaBinaryPacked} {
		if len(encs[col]) == 0 || slices.ContainsFunc(encs[col], func(e format.Encoding) bool { return e != enc }) {
			t.Errorf("%s pages %v, want all %v", col, encs[col], enc)
		}
	}

	path := t.TempDir() + "/f.parquet"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Integers as Python prints them: timestamps in microseconds, dates in
	// days, the decimal as an integer, nulls as None.
	script := `import pyarrow as pa, pyarrow.parquet as pq, sys
t = pq.read_table(sys.argv[1])
casts = {"at": pa.int64(), "day": pa.int32(), "dec": pa.int32(), "days": pa.list_(pa.int32())}
col = sys.argv[2]
c = t.column(col)
if col in casts:
    c = c.cast(casts[col])
print(*c.to_pylist(), sep="\n")
`
	for _, col := range []string{"id", "r", "code", "age", "at", "day", "dec", "days"} {
		if got := string(pyarrowtest.Run(t, script, path, col)); got != want[col].String() {
			g, w := strings.Split(got, "\n"), strings.Split(want[col].String(), "\n")
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("pyarrow: %s row %d is %s, want %s", col, i, g[i], w[i])
					break
				}
			}
			t.Errorf("pyarrow read other %s values than were written (%d lines, want %d)", col, len(g), len(w))
		}
	}
	var idSum, rSum big.Int
	for _, l := range strings.Fields(want["id"].String()) {
		v, _ := new(big.Int).SetString(l, 10)
		idSum.Add(&idSum, v)
	}
	for _, l := range strings.Fields(want["r"].String()) {
		v, _ := new(big.Int).SetString(l, 10)
		rSum.Add(&rSum, v)
	}
	out := duckdbCount(t, data, "SELECT count(*), sum(id)::VARCHAR, sum(r)::VARCHAR, count(day), count(dec), sum(len(days)) FROM read_parquet(?)")
	if w := fmt.Sprintf("(%d, '%s', '%s', %d, %d, %d)", rows, idSum.String(), rSum.String(), rows-rows/5, rows-(rows+6)/7, 3*(rows/2)); out != w {
		t.Errorf("DuckDB read %s, want %s", out, w)
	}
}

// Both encodings are tried on a column's first page and then every eighth:
// a column that counts up for one page and then turns random stays
// delta-encoded for seven more pages, then goes PLAIN. PlainIntegers
// keeps every page PLAIN.
func TestIntegerEncodingProbedEveryEighthPage(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "v", Type: schema.Int64}}}
	rng := rand.New(rand.NewPCG(5, 6))
	lines := make([]string, 10*32768) // 10 pages
	var sum big.Int
	for i := range lines {
		v := int64(i)
		if i >= 32768 {
			v = int64(rng.Uint64())
		}
		sum.Add(&sum, big.NewInt(v))
		lines[i] = fmt.Sprintf(`{"v":%d}`, v)
	}
	dbp, plain := format.DeltaBinaryPacked, format.Plain
	for _, c := range []struct {
		opt  Options
		want []format.Encoding
	}{
		{Options{}, []format.Encoding{dbp, dbp, dbp, dbp, dbp, dbp, dbp, dbp, plain, plain}},
		{Options{PlainIntegers: true}, slices.Repeat([]format.Encoding{plain}, 10)},
	} {
		data := writeLines(t, s, c.opt, lines)
		var encs []format.Encoding
		eachDataPage(t, data, func(_ string, h *format.PageHeader) {
			v2, _ := h.DataPageHeaderV2.Get()
			encs = append(encs, v2.Encoding)
		})
		if !slices.Equal(encs, c.want) {
			t.Errorf("PlainIntegers %v: pages %v, want %v", c.opt.PlainIntegers, encs, c.want)
		}
		if out, w := duckdbCount(t, data, "SELECT count(*), sum(v)::VARCHAR FROM read_parquet(?)"), fmt.Sprintf("(%d, '%s')", len(lines), sum.String()); out != w {
			t.Errorf("PlainIntegers %v: DuckDB read %s, want %s", c.opt.PlainIntegers, out, w)
		}
	}
}

// A probe compresses both encodings even in a run of pages stored raw: a
// column of codes that repeat, interrupted by one page of random values
// (which starts a raw run that the next probe falls in), goes back to
// PLAIN, not to delta by the sizes as encoded.
func TestIntegerProbeInARawRunCompresses(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "v", Type: schema.Int64}}}
	rng := rand.New(rand.NewPCG(7, 8))
	lines := make([]string, 12*32768) // 12 pages
	for i := range lines {
		v := int64(1)<<40 + int64(rng.IntN(1000))*7919 // 1,000 codes
		if i/32768 == 1 {
			v = int64(rng.Uint64()) // page 2: random, stored raw
		}
		lines[i] = fmt.Sprintf(`{"v":%d}`, v)
	}
	data := writeLines(t, s, Options{}, lines)
	var encs []format.Encoding
	var compressed []bool
	eachDataPage(t, data, func(_ string, h *format.PageHeader) {
		v2, _ := h.DataPageHeaderV2.Get()
		encs = append(encs, v2.Encoding)
		compressed = append(compressed, v2.IsCompressed.V)
	})
	if want := slices.Repeat([]format.Encoding{format.Plain}, 12); !slices.Equal(encs, want) {
		t.Errorf("pages %v, want %v", encs, want)
	}
	// The probe (page 9) ended the raw run that page 2 started: it and the
	// pages after it are compressed.
	if len(compressed) != 12 || slices.Contains(compressed[8:], false) {
		t.Errorf("pages compressed %v, want pages 9 to 12 compressed", compressed)
	}
}

// growingCodec is a codec whose output is always one byte longer than its
// input; it counts its calls.
type growingCodec struct {
	compress.Codec
	calls int
}

func (g *growingCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (g *growingCodec) Encode(dst, src []byte) ([]byte, error) {
	g.calls++
	return append(append(dst[:0], src...), 0), nil
}

// After a page that compression did not shrink, the next rawRun pages are
// not compressed at all; then one is tried again.
func TestRawRunSkipsCompression(t *testing.T) {
	l, err := schema.NewLayout(&schema.Schema{Columns: []schema.Column{{Name: "r", Type: schema.Float64}}}, schema.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := l.Parquet.Lookup("r")
	codec := &growingCodec{}
	c, err := newColumn(leaf, codec, 1<<10, 1<<20, &blockPool{size: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	vals := schema.Leaf{Kind: parquet.Double, Double: make([]float64, 128)} // 1 KiB: a page
	for i := range vals.Double {
		vals.Double[i] = float64(i)
	}
	few := vals
	few.Double = few.Double[:4]
	var sc scratch
	for page := 0; page < 2*(rawRun+1); page++ {
		if err := c.write(&vals, &sc); err != nil {
			t.Fatal(err)
		}
		if err := c.flushPage(&sc); err != nil {
			t.Fatal(err)
		}
	}
	if codec.calls != 2 {
		t.Errorf("%d pages compressed of %d, want 2 (the first and the %dth)", codec.calls, 2*(rawRun+1), rawRun+2)
	}
	// A page of a few values does not start a raw run: the next is tried.
	codec.calls = 0
	for page := 0; page < 3; page++ {
		if err := c.write(&few, &sc); err != nil {
			t.Fatal(err)
		}
		if err := c.flushPage(&sc); err != nil {
			t.Fatal(err)
		}
	}
	if codec.calls != 3 {
		t.Errorf("%d of 3 small pages compressed, want all", codec.calls)
	}
}

// Between probes an integer column's delta pages that do not compress
// skip the codec (a raw run), and a page of nulls only is written PLAIN
// without moving the probe schedule: of 10 pages with values and one of
// nulls, the codec sees the two probes (two calls each) and the one page
// where the raw run that the null page shortened had ended.
func TestIntegerProbesSkipTheCodecBetween(t *testing.T) {
	l, err := schema.NewLayout(&schema.Schema{Columns: []schema.Column{{Name: "v", Type: schema.Int64, Nullable: true}}}, schema.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := l.Parquet.Lookup("v")
	codec := &growingCodec{}
	c, err := newColumn(leaf, codec, 9<<10, 1<<20, &blockPool{size: 4 << 10}) // 1,024 values a page
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	vals := schema.Leaf{Kind: parquet.Int64, MaxDef: 1, Defs: slices.Repeat([]byte{1}, 1024), Int64: make([]int64, 1024)}
	for i := range vals.Int64 {
		vals.Int64[i] = rng.Int64N(1 << 48) // random: delta-encoded smaller, no compression
	}
	nulls := schema.Leaf{Kind: parquet.Int64, MaxDef: 1, Defs: make([]byte, 9<<10)} // one page
	var sc scratch
	for page := range 11 {
		in := &vals
		if page == 1 {
			in = &nulls
		}
		if err := c.write(in, &sc); err != nil {
			t.Fatal(err)
		}
		if err := c.flushPage(&sc); err != nil {
			t.Fatal(err)
		}
	}
	want := []format.PageEncodingStats{
		{PageType: format.DataPageV2, Encoding: format.DeltaBinaryPacked, Count: 10},
		{PageType: format.DataPageV2, Encoding: format.Plain, Count: 1}, // the nulls
	}
	if !slices.Equal(c.encStats, want) {
		t.Errorf("encoding stats %v, want %v", c.encStats, want)
	}
	if codec.calls != 5 {
		t.Errorf("the codec was called %d times, want 5 (probes on pages 1 and 10 with values, 2 calls each; page 8, after the raw run)", codec.calls)
	}
}

// A page ends at the first row that starts once the page holds pageLimit
// bytes, whatever the batches the rows come in: write's runs of rows end
// pages where a value-by-value writer would.
func TestPagesEndWhereTheLimitIsReached(t *testing.T) {
	l, err := schema.NewLayout(&schema.Schema{Columns: []schema.Column{
		{Name: "n", Type: schema.Int64, Nullable: true},
		{Name: "s", Type: schema.String, Nullable: true},
		{Name: "b", Type: schema.Bool},
		{Name: "l", Type: schema.List, Nullable: true, Items: &schema.Column{Type: schema.Float64, Nullable: true}},
		{Name: "d", Type: schema.Date, Nullable: true},
		{Name: "k", Type: schema.String, Dictionary: true, Nullable: true},
		{Name: "kl", Type: schema.List, Items: &schema.Column{Type: schema.String, Dictionary: true}},
	}}, schema.LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 2))
	vals := make([]schema.Value, 7)
	rows := schema.NewRows(l)
	for range 5000 {
		vals[4] = schema.Value{Null: rng.IntN(3) == 0, I: rng.Int64N(1 << 20)}
		vals[5] = schema.Value{Null: rng.IntN(4) == 0, S: fmt.Sprint("k", rng.IntN(400))}
		vals[6] = schema.Value{}
		for range rng.IntN(3) {
			vals[6].Items = append(vals[6].Items, schema.Value{S: fmt.Sprint("k", rng.IntN(400))})
		}
		vals[0] = schema.Value{Null: rng.IntN(3) == 0, I: rng.Int64()}
		vals[1] = schema.Value{Null: rng.IntN(4) == 0, S: strings.Repeat("x", rng.IntN(40))}
		vals[2] = schema.Value{B: rng.IntN(2) == 0}
		vals[3] = schema.Value{Null: rng.IntN(5) == 0}
		for range rng.IntN(4) {
			vals[3].Items = append(vals[3].Items, schema.Value{Null: rng.IntN(3) == 0, F: rng.Float64()})
		}
		l.AppendValues(rows, "", 0, vals, "")
	}
	// A dictionary bound of 2 KiB: the dictionary columns go PLAIN
	// within the first row group, in the middle of a run.
	const limit, dictLimit = 1 << 10, 2 << 10
	for i := range rows.Leaves {
		leaf, _ := l.Parquet.Lookup(l.Parquet.Columns()[i]...)
		// The same rows, in random batches and then one by one.
		write := func(batch func() int) *column {
			c, err := newColumn(leaf, &uncompressed.Codec{}, limit, dictLimit, &blockPool{size: 4 << 10})
			if err != nil {
				t.Fatal(err)
			}
			var sc scratch
			rest := rows.Leaves[i]
			for left := rows.N; left > 0; {
				var part schema.Leaf
				part, rest = rest.Split(min(left, batch()))
				left -= rowsOf(&part)
				if err := c.write(&part, &sc); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.flushPage(&sc); err != nil {
				t.Fatal(err)
			}
			return c
		}
		c := write(func() int { return 1 + rng.IntN(300) })
		one := write(func() int { return 1 })
		var got []int64
		for _, p := range c.pages {
			got = append(got, p.firstRow)
		}
		if leaf.Node.Encoding() == nil || leaf.Node.Encoding().Encoding() != format.RLEDictionary {
			if want := pageStarts(&rows.Leaves[i], limit); !slices.Equal(got, want) {
				t.Errorf("leaf %v: pages start at rows %v, want %v", leaf.Path, got, want)
			}
		} else if !c.plain {
			t.Errorf("leaf %v: the dictionary stayed under %d bytes; the test wants it to overflow", leaf.Path, dictLimit)
		}
		var sc scratch
		dict, _, err := c.dictionaryPage(&sc)
		if err != nil {
			t.Fatal(err)
		}
		dictOne, _, err := one.dictionaryPage(&sc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.Join(c.chunk.bs, nil), bytes.Join(one.chunk.bs, nil)) || !bytes.Equal(dict, dictOne) {
			t.Errorf("leaf %v: the pages written in batches differ from the pages written row by row", leaf.Path)
		}
	}
}

func rowsOf(lf *schema.Leaf) int {
	if lf.MaxRep == 0 {
		return lf.Levels()
	}
	n := 0
	for _, r := range lf.Reps {
		if r == 0 {
			n++
		}
	}
	return n
}

// pageStarts is the first row of each page of lf, value by value.
func pageStarts(lf *schema.Leaf, limit int) []int64 {
	starts := []int64{0}
	size, row, v := 0, int64(-1), 0
	for j := range lf.Levels() {
		if lf.MaxRep == 0 || lf.Reps[j] == 0 {
			row++
			if size >= limit {
				starts, size = append(starts, row), 0
			}
		}
		if lf.MaxDef > 0 {
			size++
			if lf.Defs[j] < lf.MaxDef {
				continue
			}
		}
		switch lf.Kind {
		case parquet.Boolean:
			size++
		case parquet.Int32:
			size += 4
		case parquet.Int64, parquet.Double:
			size += 8
		case parquet.ByteArray:
			size += 4 + int(lf.Offsets[v+1]-lf.Offsets[v])
		}
		v++
	}
	return starts
}

// A page whose values are all NaN has no bounds, but it is no null page:
// the chunk gets no column index rather than one that says so, which a
// reader could use to skip the page for IS NOT NULL.
func TestNaNPageIsNoNullPage(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "x", Type: schema.Float64, Nullable: true}}}
	var out bytes.Buffer
	w, err := NewWriter(&out, s, Options{NoFeedColumns: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := w.Write("", 0, []schema.Value{{F: math.NaN()}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := f.RowGroups()[0].ColumnChunks()[0].ColumnIndex()
	if err == nil && ci.NumPages() > 0 && ci.NullPage(0) {
		t.Fatalf("the column index calls a page of 10 NaNs a null page")
	}
}
