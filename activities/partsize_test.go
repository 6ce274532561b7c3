package activities

import (
	"fmt"
	"io"
	"testing"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// A part's size is read between batches while the Parquet writer writes
// row groups on a goroutine of its own: the race detector holds the count
// to being safe to read, and it grows as row groups are written.
func TestPartSizeReadWhileRowGroupsAreWritten(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "n", Type: schema.Int64}, {Name: "s", Type: schema.String}}}
	cw := &countingWriter{w: io.Discard}
	part := &partWriter{cw: cw}
	w, err := parquetconv.NewWriter(cw, s, parquetconv.Options{NoFeedColumns: true, RowGroupRows: 100, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := schema.NewParser(w.Layout())
	rows := schema.NewRows(w.Layout())
	var last int64
	for batch := range 50 {
		rows.Reset()
		for i := range 100 {
			if err := p.AppendLine(rows, fmt.Appendf(nil, `{"n":%d,"s":"v%d"}`, batch*100+i, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteRows(rows); err != nil {
			t.Fatal(err)
		}
		if n := part.size(); n < last {
			t.Fatalf("part size went from %d to %d", last, n)
		} else {
			last = n
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if part.size() <= last || last == 0 {
		t.Fatalf("part size %d after Close, %d before: want it to grow while row groups are written", part.size(), last)
	}
}
