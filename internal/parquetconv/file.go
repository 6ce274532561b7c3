package parquetconv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// createdBy names the writer in the footer.
const createdBy = "feedpipe version 0(build )"

// file lays out a Parquet file: the magic, the row groups as the columns
// hand them over, then the page index and the footer.
type file struct {
	out       io.Writer
	pos       int64
	schema    []format.SchemaElement
	orders    []format.ColumnOrder
	codec     format.CompressionCodec
	rowGroups []format.RowGroup
	indexes   [][]chunkIndex // per row group, per column
	rows      int64
}

// chunkIndex is a column chunk's page index: its offset index and, when
// its bounds could be cut short enough, its column index.
type chunkIndex struct {
	offsets format.OffsetIndex
	columns *format.ColumnIndex
}

// newFile returns the file of schema s. The schema's elements are
// parquet-go's own (from the footer of an empty file it writes), so that
// the types, logical types and lists are written as parquet-go reads them.
func newFile(out io.Writer, s *parquet.Schema, codec format.CompressionCodec) (*file, error) {
	var buf bytes.Buffer
	pw := parquet.NewWriter(&buf, s)
	if err := pw.Close(); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	md, err := readFooter(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return &file{out: out, schema: md.Schema, orders: md.ColumnOrders, codec: codec}, nil
}

// readFooter decodes the footer of a whole Parquet file.
func readFooter(b []byte) (*format.FileMetaData, error) {
	if len(b) < 12 || string(b[len(b)-4:]) != "PAR1" {
		return nil, fmt.Errorf("no Parquet footer")
	}
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	if n > len(b)-8 {
		return nil, fmt.Errorf("footer of %d bytes in a file of %d", n, len(b))
	}
	md := new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[len(b)-8-n:len(b)-8], md); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	return md, nil
}

func (f *file) write(b []byte) error {
	if f.pos == 0 {
		if _, err := f.out.Write([]byte("PAR1")); err != nil {
			return fmt.Errorf("parquet: write: %w", err)
		}
		f.pos = 4
	}
	n, err := f.out.Write(b)
	f.pos += int64(n)
	if err != nil {
		return fmt.Errorf("parquet: write: %w", err)
	}
	return nil
}

// writeRowGroup writes chunks, one per column, rows rows, as a row group,
// and gives the blocks of each chunk it wrote back to the pool.
func (f *file) writeRowGroup(chunks []*sealedChunk, rows int64) error {
	if err := f.write(nil); err != nil {
		return err
	}
	// Ordinal is for encrypted files only, which these are not; it stops at
	// int16's limit rather than wrap.
	rg := format.RowGroup{NumRows: rows, FileOffset: f.pos, Ordinal: int16(min(len(f.rowGroups), math.MaxInt16))}
	idx := make([]chunkIndex, len(chunks))
	for i, s := range chunks {
		c, dict, dictSize := s.col, s.dict, s.dictSize
		cc := format.ColumnChunk{FileOffset: f.pos}
		md := &cc.MetaData
		md.Type, md.PathInSchema, md.Codec, md.NumValues = format.Type(c.kind), c.path, f.codec, s.chunkValues
		var encs []format.Encoding
		if c.maxDef > 0 || c.maxRep > 0 {
			encs = append(encs, format.RLE) // the levels
		}
		var stats []format.PageEncodingStats
		if dict != nil {
			md.DictionaryPageOffset = f.pos
			encs = append(encs, format.Plain)
			stats = append(stats, format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1})
			if err := f.write(dict); err != nil {
				return err
			}
		}
		md.DataPageOffset = f.pos
		if err := s.chunk.writeTo(f); err != nil {
			return err
		}
		for _, es := range s.encStats {
			encs = append(encs, es.Encoding)
		}
		slices.Sort(encs)
		md.Encoding = slices.Compact(encs)
		md.EncodingStats = append(stats, s.encStats...)
		md.TotalCompressedSize = int64(len(dict)) + s.chunk.len
		md.TotalUncompressedSize = dictSize + s.uncompressed
		md.Statistics = chunkStats(s)
		rg.Columns = append(rg.Columns, cc)
		rg.TotalByteSize += md.TotalUncompressedSize
		rg.TotalCompressedSize += md.TotalCompressedSize
		idx[i] = pageIndex(s, md.DataPageOffset)
		s.chunk.reset()
	}
	f.rowGroups = append(f.rowGroups, rg)
	f.indexes = append(f.indexes, idx)
	f.rows += rows
	return nil
}

// chunkStats are a chunk's statistics, a byte array's bounds cut to
// StatsLimit bytes (none when its maximum cannot be).
func chunkStats(c *sealedChunk) format.Statistics {
	s := format.Statistics{NullCount: c.chunkNulls}
	if c.hasBounds && !c.unbounded {
		s.MinValue, s.MaxValue = bytes.Clone(c.min), bytes.Clone(c.max)
	}
	return s
}

// pageIndex is the page index of chunk c, whose data pages start at start
// in the file.
func pageIndex(c *sealedChunk, start int64) chunkIndex {
	var ci chunkIndex
	ci.offsets.PageLocations = make([]format.PageLocation, len(c.pages))
	colIdx := &format.ColumnIndex{}
	asc, desc := true, true
	var prev *pageInfo
	for i := range c.pages {
		p := &c.pages[i]
		ci.offsets.PageLocations[i] = format.PageLocation{Offset: start + p.offset, CompressedPageSize: p.size, FirstRowIndex: p.firstRow}
		if colIdx == nil {
			continue
		}
		colIdx.NullPages = append(colIdx.NullPages, p.allNull)
		colIdx.NullCounts = append(colIdx.NullCounts, p.nulls)
		if p.allNull {
			colIdx.MinValues = append(colIdx.MinValues, []byte{})
			colIdx.MaxValues = append(colIdx.MaxValues, []byte{})
			continue
		}
		if p.noMax {
			colIdx = nil // no bound as short: no column index
			continue
		}
		colIdx.MinValues = append(colIdx.MinValues, p.min)
		colIdx.MaxValues = append(colIdx.MaxValues, p.max)
		if prev != nil {
			if compareEncoded(c.col.kind, p.min, prev.min) < 0 || compareEncoded(c.col.kind, p.max, prev.max) < 0 {
				asc = false
			}
			if compareEncoded(c.col.kind, p.min, prev.min) > 0 || compareEncoded(c.col.kind, p.max, prev.max) > 0 {
				desc = false
			}
		}
		prev = p
	}
	if colIdx != nil {
		switch {
		case asc:
			colIdx.BoundaryOrder = format.Ascending
		case desc:
			colIdx.BoundaryOrder = format.Descending
		default:
			colIdx.BoundaryOrder = format.Unordered
		}
		ci.columns = colIdx
	}
	return ci
}

// close writes the page index and the footer.
func (f *file) close() error {
	if err := f.write(nil); err != nil {
		return err
	}
	// All column indexes, then all offset indexes, as Arrow and parquet-go
	// lay them out.
	for r := range f.rowGroups {
		for i := range f.rowGroups[r].Columns {
			if ci := f.indexes[r][i].columns; ci != nil {
				cc := &f.rowGroups[r].Columns[i]
				if err := f.writeIndex("column index", ci, &cc.ColumnIndexOffset, &cc.ColumnIndexLength); err != nil {
					return err
				}
			}
		}
	}
	for r := range f.rowGroups {
		for i := range f.rowGroups[r].Columns {
			cc := &f.rowGroups[r].Columns[i]
			if err := f.writeIndex("offset index", &f.indexes[r][i].offsets, &cc.OffsetIndexOffset, &cc.OffsetIndexLength); err != nil {
				return err
			}
		}
	}
	md := format.FileMetaData{Version: 2, Schema: f.schema, NumRows: f.rows, RowGroups: f.rowGroups,
		CreatedBy: createdBy, ColumnOrders: f.orders}
	b, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return fmt.Errorf("parquet: footer: %w", err)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(b)))
	return f.write(append(b, "PAR1"...))
}

// writeIndex writes index (what names it) and notes where it is.
func (f *file) writeIndex(what string, index any, offset *int64, length *int32) error {
	b, err := thrift.Marshal(new(thrift.CompactProtocol), index)
	if err != nil {
		return fmt.Errorf("parquet: %s: %w", what, err)
	}
	*offset, *length = f.pos, int32(len(b))
	return f.write(b)
}
