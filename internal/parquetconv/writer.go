// Package parquetconv writes feed records, typed by a schema.Schema, to
// Parquet with parquet-go. Every file carries the feed id and line number of
// each row (columns _feed_id and _line) next to the declared columns, so a
// load can be reconciled with its source feed line by line.
package parquetconv

import (
	"fmt"
	"io"
	"sort"
	"unsafe"

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
	// RowGroupRows bounds a row group's rows. Default 1Mi rows.
	RowGroupRows int64
	// RowGroupBytes bounds a row group's buffered bytes, and so the writer's
	// memory, whatever the rows' width. Default 64 MiB.
	RowGroupBytes int64
	// NoFeedColumns leaves out _feed_id and _line (plain file conversion).
	NoFeedColumns bool
	// Extra adds an optional JSON column _extra for fields the schema does
	// not declare.
	Extra bool
}

// ExtraField is the column that keeps undeclared fields as a JSON object.
const ExtraField = "_extra"

// Writer writes rows of one schema to one Parquet file.
type Writer struct {
	pw       *parquet.Writer
	cols     []schema.Column
	colIndex []int // position of cols[i] among the file's leaf columns
	feedIdx  int
	lineIdx  int
	extraIdx int
	width    int
	slab     []parquet.Value // backing store of pending rows, reused after each flush
	pending  []parquet.Row
	rows     int64
	opt      Options
	buffered int64 // bytes written since the last row group flush (estimated)
}

// NewWriter returns a Writer of s's columns to out.
func NewWriter(out io.Writer, s schema.Schema, opt Options) (*Writer, error) {
	codec, err := Codec(opt.Compression)
	if err != nil {
		return nil, err
	}
	if opt.RowGroupRows <= 0 {
		opt.RowGroupRows = 1 << 20
	}
	if opt.RowGroupBytes <= 0 {
		opt.RowGroupBytes = 64 << 20
	}
	group := parquet.Group{}
	if !opt.NoFeedColumns {
		group[schema.FeedIDField] = parquet.String()
		group[schema.LineField] = parquet.Int(64)
	}
	if opt.Extra {
		group[ExtraField] = parquet.Optional(parquet.JSON())
	}
	for _, c := range s.Columns {
		var node parquet.Node
		switch c.Type {
		case schema.String:
			node = parquet.String()
			if c.Dictionary {
				node = parquet.Encoded(node, &parquet.RLEDictionary)
			}
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
		case schema.Decimal:
			node = parquet.Decimal(c.Scale, c.Precision, parquet.Int64Type)
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
	w := &Writer{cols: s.Columns, opt: opt, feedIdx: -1, lineIdx: -1, extraIdx: -1}
	if !opt.NoFeedColumns {
		w.feedIdx, w.lineIdx = pos[schema.FeedIDField], pos[schema.LineField]
	}
	if opt.Extra {
		w.extraIdx = pos[ExtraField]
	}
	for _, c := range s.Columns {
		w.colIndex = append(w.colIndex, pos[c.Name])
	}
	w.pw = parquet.NewWriter(out, parquet.NewSchema("feed", group), parquet.Compression(codec),
		parquet.MaxRowsPerRowGroup(opt.RowGroupRows), parquet.CreatedBy("feedpipe", "0", ""),
		// No min/max in data page headers: the column index has (truncated)
		// page bounds already, and a long string's full bounds in a page
		// header make it too large for pyarrow to read.
		parquet.DataPageStatistics(false))
	return w, nil
}

// pendingRows is how many rows are handed to parquet-go at once.
const pendingRows = 1024

// bytesOf views a string's bytes without copying them: parquet-go copies a
// value's bytes into its column buffers and never writes to them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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
	return w.WriteExtra(feedID, line, vals, "")
}

// WriteExtra adds one row with its undeclared fields as a JSON object in
// _extra ("" for none); only for a Writer made with Options.Extra.
func (w *Writer) WriteExtra(feedID string, line int64, vals []schema.Value, extra string) error {
	n := w.width
	if n == 0 {
		n = len(w.cols)
		if w.feedIdx >= 0 {
			n += 2
		}
		if w.extraIdx >= 0 {
			n++
		}
		w.width = n
		w.slab = make([]parquet.Value, pendingRows*n)
	}
	k := len(w.pending)
	row := parquet.Row(w.slab[k*n : (k+1)*n : (k+1)*n])
	size := int64(8 * n)
	if w.feedIdx >= 0 {
		row[w.feedIdx] = parquet.ByteArrayValue(bytesOf(feedID)).Level(0, 0, w.feedIdx)
		row[w.lineIdx] = parquet.Int64Value(line).Level(0, 0, w.lineIdx)
		size += int64(len(feedID))
	}
	if w.extraIdx >= 0 {
		if extra == "" {
			row[w.extraIdx] = parquet.Value{}.Level(0, 0, w.extraIdx)
		} else {
			row[w.extraIdx] = parquet.ByteArrayValue(bytesOf(extra)).Level(0, 1, w.extraIdx)
			size += int64(len(extra))
		}
	}
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
			pv = parquet.ByteArrayValue(bytesOf(v.S))
			size += int64(len(v.S))
		case schema.Int64, schema.Timestamp, schema.Decimal:
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
	w.buffered += size
	if len(w.pending) >= pendingRows {
		if err := w.flushPending(); err != nil {
			return err
		}
		if w.buffered >= w.opt.RowGroupBytes {
			if err := w.pw.Flush(); err != nil {
				return fmt.Errorf("parquet: flush row group: %w", err)
			}
			w.buffered = 0
		}
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
