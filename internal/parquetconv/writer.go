// Package parquetconv writes feed records, typed by a schema.Schema, to
// Parquet with parquet-go. Every file carries the feed id and line number of
// each row (columns _feed_id and _line) next to the declared columns, so a
// load can be reconciled with its source feed line by line.
package parquetconv

import (
	"fmt"
	"io"
	"sort"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// Options tune the output file.
type Options struct {
	// Compression is "zstd" (default), "snappy" or "none".
	Compression string
	// RowGroupRows bounds a row group, and so the writer's memory. Default 64Ki rows.
	RowGroupRows int64
}

// Writer writes rows of one schema to one Parquet file.
type Writer struct {
	pw       *parquet.Writer
	cols     []schema.Column
	colIndex []int // position of cols[i] among the file's leaf columns
	feedIdx  int
	lineIdx  int
	pending  []parquet.Row
	rows     int64
}

// NewWriter returns a Writer of s's columns to out.
func NewWriter(out io.Writer, s schema.Schema, opt Options) (*Writer, error) {
	codec, err := Codec(opt.Compression)
	if err != nil {
		return nil, err
	}
	if opt.RowGroupRows <= 0 {
		opt.RowGroupRows = 64 << 10
	}
	group := parquet.Group{
		schema.FeedIDField: parquet.String(),
		schema.LineField:   parquet.Int(64),
	}
	for _, c := range s.Columns {
		var node parquet.Node
		switch c.Type {
		case schema.String:
			node = parquet.String()
		case schema.JSON:
			node = parquet.JSON()
		case schema.Int64:
			node = parquet.Int(64)
		case schema.Float64:
			node = parquet.Leaf(parquet.DoubleType)
		case schema.Bool:
			node = parquet.Leaf(parquet.BooleanType)
		case schema.Timestamp:
			node = parquet.Timestamp(parquet.Microsecond)
		case schema.Date:
			node = parquet.Date()
		default:
			return nil, fmt.Errorf("parquet: column %q has unsupported type %q", c.Name, c.Type)
		}
		if c.Nullable {
			node = parquet.Optional(node)
		}
		group[c.Name] = node
	}
	// A Group orders its fields by name; each leaf's column index follows.
	names := make([]string, 0, len(group))
	for n := range group {
		names = append(names, n)
	}
	sort.Strings(names)
	pos := make(map[string]int, len(names))
	for i, n := range names {
		pos[n] = i
	}
	w := &Writer{cols: s.Columns, feedIdx: pos[schema.FeedIDField], lineIdx: pos[schema.LineField]}
	for _, c := range s.Columns {
		w.colIndex = append(w.colIndex, pos[c.Name])
	}
	w.pw = parquet.NewWriter(out, parquet.NewSchema("feed", group), parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(opt.RowGroupRows), parquet.CreatedBy("feedpipe", "0", ""))
	return w, nil
}

// Codec returns the parquet-go codec named by name.
func Codec(name string) (compress.Codec, error) {
	switch name {
	case "", "zstd":
		return &zstd.Codec{}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "none":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("compression %q: use zstd, snappy or none", name)
}

// Write adds one row.
func (w *Writer) Write(feedID string, line int64, vals []schema.Value) error {
	row := make(parquet.Row, len(w.cols)+2)
	row[w.feedIdx] = parquet.ByteArrayValue([]byte(feedID)).Level(0, 0, w.feedIdx)
	row[w.lineIdx] = parquet.Int64Value(line).Level(0, 0, w.lineIdx)
	for i, c := range w.cols {
		idx := w.colIndex[i]
		v := vals[i]
		def := 0
		if c.Nullable {
			def = 1
		}
		if v.Null {
			row[idx] = parquet.Value{}.Level(0, 0, idx)
			continue
		}
		var pv parquet.Value
		switch c.Type {
		case schema.String, schema.JSON:
			pv = parquet.ByteArrayValue([]byte(v.S))
		case schema.Int64, schema.Timestamp:
			pv = parquet.Int64Value(v.I)
		case schema.Date:
			pv = parquet.Int32Value(int32(v.I))
		case schema.Float64:
			pv = parquet.DoubleValue(v.F)
		case schema.Bool:
			pv = parquet.BooleanValue(v.B)
		}
		row[idx] = pv.Level(0, def, idx)
	}
	w.pending = append(w.pending, row)
	w.rows++
	if len(w.pending) >= 1024 {
		return w.flushPending()
	}
	return nil
}

func (w *Writer) flushPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	if _, err := w.pw.WriteRows(w.pending); err != nil {
		return fmt.Errorf("parquet: write rows: %w", err)
	}
	w.pending = w.pending[:0]
	return nil
}

// Close writes what is buffered and the footer, and returns the row count.
func (w *Writer) Close() (int64, error) {
	if err := w.flushPending(); err != nil {
		return 0, err
	}
	if err := w.pw.Close(); err != nil {
		return 0, fmt.Errorf("parquet: close: %w", err)
	}
	return w.rows, nil
}

// RowCount reads the number of rows from a Parquet file's footer.
func RowCount(r io.ReaderAt, size int64) (int64, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("parquet: open footer: %w", err)
	}
	return f.NumRows(), nil
}
