package parquetconv

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
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
