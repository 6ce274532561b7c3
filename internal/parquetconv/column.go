package parquetconv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/plain"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// column writes one leaf column's values into the pages of its open column
// chunk: levels and typed values are buffered per page, and a full page is
// encoded, compressed and appended to the chunk, which the Writer copies
// to the file when the row group is flushed. A column is used by one
// goroutine at a time (its worker, or the Writer between jobs).
type column struct {
	path      []string
	kind      parquet.Kind
	maxDef    byte
	maxRep    byte
	encoding  format.Encoding // of values: PLAIN, RLE_DICTIONARY or DELTA_LENGTH_BYTE_ARRAY (an integer page may be DELTA_BINARY_PACKED: see intProbeRun)
	codec     compress.Codec
	pageLimit int
	dictLimit int64

	// The open page: one level of each kind per value, and the non-null
	// values, typed.
	defs, reps []byte
	i32        []int32
	i64        []int64
	f64        []float64
	bools      []byte // one byte (0 or 1) per value
	data       []byte // byte-array values, back to back
	offs       []uint32
	idx        []int32 // dictionary indexes, while dictionary-encoding
	pageRows   int
	pageBytes  int // what the open page's values take, estimated as encoded

	// dict is the chunk's dictionary while the column is dictionary-
	// encoded (encoding RLE_DICTIONARY); plain is set once it outgrew
	// dictLimit, until the row group ends. dictFull is set when it does,
	// and ends the page at the next row.
	dict     *dictionary
	plain    bool
	dictFull bool

	// The open chunk.
	chunkState

	// rawPages is how many of the next pages are stored without
	// compressing them (see rawRun).
	rawPages int

	// deltaInts lets an integer column's pages be DELTA_BINARY_PACKED;
	// intEnc is the encoding of its next intRun pages (see intProbeRun).
	deltaInts bool
	intEnc    format.Encoding
	intRun    int

	seen             []uint32 // dictionary entry → page generation that bounded it
	gen              uint32
	pageMin, pageMax []byte
}

// chunkState is a column chunk as its pages are added: its data pages,
// encoded, with their headers, and what the footer and the page index say
// of them.
type chunkState struct {
	chunk        blocks
	pages        []pageInfo
	chunkRows    int64
	chunkValues  int64
	chunkNulls   int64
	uncompressed int64  // of the data pages, headers included
	min, max     []byte // the chunk's bounds, plain-encoded and cut (set once hasBounds)
	hasBounds    bool
	unbounded    bool // a page's maximum could not be cut short: no maximum
	encStats     []format.PageEncodingStats
}

// sealedChunk is a column's chunk of a row group, complete: its data
// pages and its dictionary page, the bytes the file writes while the column
// goes on with its next chunk.
type sealedChunk struct {
	chunkState
	col      *column // its path, kind and levels, which do not change
	dict     []byte  // the dictionary page, header included; nil without a dictionary
	dictSize int64   // its size uncompressed
}

// seal ends the column's chunk, its last page flushed: it returns the
// chunk, with its dictionary page, and starts the next one.
func (c *column) seal(sc *scratch) (*sealedChunk, error) {
	dict, dictSize, err := c.dictionaryPage(sc)
	if err != nil {
		return nil, err
	}
	s := &sealedChunk{chunkState: c.chunkState, col: c, dict: dict, dictSize: dictSize}
	c.chunkState = chunkState{chunk: blocks{pool: c.chunk.pool}}
	c.resetPage()
	if c.dict != nil {
		c.dict.reset()
		c.plain, c.dictFull = false, false
		clear(c.seen)
		c.gen = 0
	}
	return s, nil
}

// scratch holds the buffers a page is encoded in: one per goroutine that
// flushes pages, not one per column, so that a wide schema's columns do not
// each keep a page's worth of them.
type scratch struct {
	levels, values, compressed, packed []byte
	// alt and altCompressed hold an integer page's other encoding while
	// both are tried (see intProbeRun).
	alt, altCompressed []byte
}

// rawRun is how many pages of a column are stored as they are (a data
// page v2 says whether it is compressed) after one that compression did not
// shrink by 1/64: random doubles and ids, on which zstd spends about as
// long as on text for nothing (the wide bench feed's score, ratio and geo
// columns came out larger than they went in). Then a page is tried again.
const rawRun = 7

// rawProbe is the least a page's values must take for their compression to
// set a raw run.
const rawProbe = 1 << 10

// pageInfo is what the page index needs of a data page.
type pageInfo struct {
	offset   int64 // in the chunk
	size     int32 // header and data
	firstRow int64 // in the row group
	nulls    int64
	allNull  bool
	// min and max bound its non-null values, plain-encoded, a byte
	// array's cut to StatsLimit bytes; noMax is set when its maximum
	// cannot be cut short (max is nil then).
	min, max []byte
	noMax    bool
}

// newColumn returns the column writer of leaf of schema s.
func newColumn(leaf parquet.LeafColumn, codec compress.Codec, pageLimit int, dictLimit int64, pool *blockPool) (*column, error) {
	kind := leaf.Node.Type().Kind()
	c := &column{path: leaf.Path, kind: kind, maxDef: byte(leaf.MaxDefinitionLevel), maxRep: byte(leaf.MaxRepetitionLevel),
		codec: codec, pageLimit: pageLimit, dictLimit: dictLimit, encoding: format.Plain, deltaInts: true, chunkState: chunkState{chunk: blocks{pool: pool}}}
	switch kind {
	case parquet.Boolean, parquet.Int32, parquet.Int64, parquet.Double:
	case parquet.ByteArray:
		c.encoding = format.DeltaLengthByteArray
		if enc := leaf.Node.Encoding(); enc != nil && enc.Encoding() == format.RLEDictionary {
			c.encoding = format.RLEDictionary
			c.dict = newDictionary()
		}
	default:
		return nil, fmt.Errorf("column %v: no writer for Parquet type %v", leaf.Path, kind)
	}
	c.offs = append(c.offs, 0)
	return c, nil
}

// write adds in, the column's values of whole rows, to the open chunk. A
// page ends at the first row that starts once it holds pageLimit bytes (or
// its dictionary outgrew dictLimit); rows are copied in runs that cannot
// pass that point before their last row.
func (c *column) write(in *schema.Leaf, sc *scratch) error {
	levels := in.Levels()
	lv, vv := 0, 0 // the next level and value of in
	for lv < levels {
		if c.pageBytes >= c.pageLimit || c.dictFull {
			if err := c.flushPage(sc); err != nil {
				return err
			}
		}
		lv, vv = c.take(in, lv, vv, c.run(in, lv, vv, levels))
	}
	return nil
}

// run returns the end of the run of whole rows of in, from level lv and
// value vv (a row's start), that the open page takes before it is next
// checked.
func (c *column) run(in *schema.Leaf, lv, vv, levels int) int {
	if c.maxRep > 0 {
		// One row: its values up to the next of repetition level 0.
		end := lv + 1
		for end < levels && in.Reps[end] != 0 {
			end++
		}
		return end
	}
	var width int // the most a value adds to pageBytes
	switch c.kind {
	case parquet.Boolean:
		width = 1
	case parquet.Int32:
		width = 4
	case parquet.Int64, parquet.Double:
		width = 8
	default:
		if c.dict == nil || c.plain {
			// Values of all sizes: measured one by one.
			size := c.pageBytes
			for end := lv; end < levels; end++ {
				if size >= c.pageLimit {
					return end
				}
				if c.maxDef > 0 {
					size++
					if in.Defs[end] < c.maxDef {
						continue
					}
				}
				size += 4 + int(in.Offsets[vv+1]-in.Offsets[vv])
				vv++
			}
			return levels
		}
		width = 4 // an index; take stops early should the dictionary fill
	}
	if c.maxDef > 0 {
		width++
	}
	// Rows of at most width bytes each: the page stays under its limit
	// until the last of them starts.
	n := (c.pageLimit - c.pageBytes + width - 1) / width
	return min(levels, lv+max(1, n))
}

// take adds in's levels lv to end, whole rows, and their values from vv,
// to the open page, and returns where it stopped: at end, or at the end of
// the row in which the dictionary outgrew its bound.
func (c *column) take(in *schema.Leaf, lv, vv, end int) (int, int) {
	dict := c.kind == parquet.ByteArray && c.dict != nil && !c.plain
	if dict {
		end = c.index(in, lv, vv, end)
	}
	if c.maxRep > 0 {
		reps := in.Reps[lv:end]
		c.reps = append(c.reps, reps...)
		for _, r := range reps {
			if r == 0 {
				c.pageRows++
			}
		}
	} else {
		c.pageRows += end - lv
	}
	nv := end - lv // values that are not null
	if c.maxDef > 0 {
		defs := in.Defs[lv:end]
		c.defs = append(c.defs, defs...)
		c.pageBytes += len(defs)
		nv = 0
		for _, d := range defs {
			if d == c.maxDef {
				nv++
			}
		}
	}
	switch c.kind {
	case parquet.Boolean:
		for _, b := range in.Bools[vv : vv+nv] {
			c.bools = append(c.bools, boolByte(b))
		}
		c.pageBytes += nv
	case parquet.Int32:
		c.i32 = append(c.i32, in.Int32[vv:vv+nv]...)
		c.pageBytes += 4 * nv
	case parquet.Int64:
		c.i64 = append(c.i64, in.Int64[vv:vv+nv]...)
		c.pageBytes += 8 * nv
	case parquet.Double:
		c.f64 = append(c.f64, in.Double[vv:vv+nv]...)
		c.pageBytes += 8 * nv
	case parquet.ByteArray:
		if dict {
			c.pageBytes += 4 * nv // the indexes, added by index
			break
		}
		offs := in.Offsets[vv : vv+nv+1]
		base := uint32(len(c.data)) - offs[0]
		c.data = append(c.data, in.Bytes[offs[0]:offs[nv]]...)
		for _, o := range offs[1:] {
			c.offs = append(c.offs, o+base)
		}
		c.pageBytes += 4*nv + int(offs[nv]-offs[0])
	}
	return end, vv + nv
}

// index adds the dictionary indexes of in's values from vv, those of
// levels lv to end, and returns the end of the values indexed: end, or the
// end of the row in which the dictionary outgrew its bound (dictFull then
// ends the page before the next row).
func (c *column) index(in *schema.Leaf, lv, vv, end int) int {
	for j := lv; j < end; j++ {
		if c.maxDef > 0 && in.Defs[j] < c.maxDef {
			continue
		}
		c.idx = append(c.idx, c.dict.index(in.Bytes[in.Offsets[vv]:in.Offsets[vv+1]]))
		vv++
		if c.dict.size() > c.dictLimit {
			c.dictFull = true
			if c.maxRep == 0 {
				return j + 1
			}
		}
	}
	return end
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// values is the number of levels (values and nulls) of the open page.
func (c *column) values() int {
	switch {
	case c.maxDef > 0:
		return len(c.defs)
	case c.dict != nil && !c.plain:
		return len(c.idx)
	}
	switch c.kind {
	case parquet.Boolean:
		return len(c.bools)
	case parquet.Int32:
		return len(c.i32)
	case parquet.Int64:
		return len(c.i64)
	case parquet.Double:
		return len(c.f64)
	}
	return len(c.offs) - 1
}

// flushPage encodes, compresses and appends the open page to the chunk.
func (c *column) flushPage(sc *scratch) error {
	n := c.values()
	if n == 0 {
		return nil
	}
	var err error
	// Levels (RLE, not compressed: a data page v2).
	sc.levels = sc.levels[:0]
	if c.maxRep > 0 {
		sc.levels, err = appendLevels(sc.levels, c.reps, c.maxRep)
		if err != nil {
			return fmt.Errorf("column %v: repetition levels: %w", c.path, err)
		}
	}
	repLen := len(sc.levels)
	if c.maxDef > 0 {
		sc.levels, err = appendLevels(sc.levels, c.defs, c.maxDef)
		if err != nil {
			return fmt.Errorf("column %v: definition levels: %w", c.path, err)
		}
	}
	defLen := len(sc.levels) - repLen
	nulls := 0
	if c.maxDef > 0 {
		for _, d := range c.defs {
			if d < c.maxDef {
				nulls++
			}
		}
	}
	// Values, and the page's bounds.
	enc := c.encoding
	if c.plain {
		enc = format.Plain // a dictionary column past its dictionary's bound
	}
	c.pageMin, c.pageMax = c.pageMin[:0], c.pageMax[:0]
	has := false
	probed := false // sc.compressed holds the values compressed already
	switch {
	case enc == format.RLEDictionary:
		sc.values, err = (&rle.DictionaryEncoding{}).EncodeInt32(sc.values[:0], c.idx)
		has = c.dictBounds()
	case c.kind == parquet.Boolean:
		sc.packed = packBits(sc.packed[:0], c.bools)
		sc.values, err = (&plain.Encoding{}).EncodeBoolean(sc.values[:0], sc.packed)
		has = boolBounds(c.bools, &c.pageMin, &c.pageMax)
	case c.kind == parquet.Int32:
		enc, probed, err = c.integerValues(sc)
		has = int32Bounds(c.i32, &c.pageMin, &c.pageMax)
	case c.kind == parquet.Int64:
		enc, probed, err = c.integerValues(sc)
		has = int64Bounds(c.i64, &c.pageMin, &c.pageMax)
	case c.kind == parquet.Double:
		sc.values, err = (&plain.Encoding{}).EncodeDouble(sc.values[:0], c.f64)
		has = doubleBounds(c.f64, &c.pageMin, &c.pageMax)
	case enc == format.Plain:
		sc.values, err = (&plain.Encoding{}).EncodeByteArray(sc.values[:0], c.data, c.offs)
		has = bytesBounds(c.data, c.offs, &c.pageMin, &c.pageMax)
	default:
		sc.values, err = (&delta.LengthByteArrayEncoding{}).EncodeByteArray(sc.values[:0], c.data, c.offs)
		has = bytesBounds(c.data, c.offs, &c.pageMin, &c.pageMax)
	}
	if err != nil {
		return fmt.Errorf("column %v: encode page: %w", c.path, err)
	}
	compressed, isCompressed := sc.values, false
	if c.codec.CompressionCodec() != format.Uncompressed {
		tried := probed
		switch {
		case probed:
		case c.rawPages > 0:
			c.rawPages--
		default:
			sc.compressed, err = c.codec.Encode(sc.compressed[:0], sc.values)
			if err != nil {
				return fmt.Errorf("column %v: compress page: %w", c.path, err)
			}
			tried = true
		}
		if tried {
			if len(sc.compressed) < len(sc.values) {
				compressed, isCompressed = sc.compressed, true
			}
			// A page of a few values (of nulls only, say) says nothing of
			// the column's values.
			if len(sc.values) >= rawProbe && len(sc.compressed) >= len(sc.values)-len(sc.values)/64 {
				c.rawPages = rawRun
			}
		}
	}
	if int64(len(sc.levels))+int64(max(len(sc.values), len(compressed))) > math.MaxInt32 {
		return fmt.Errorf("column %v: a page of %d values is over 2 GiB, the most a Parquet page holds", c.path, n)
	}
	crc := crc32.Update(crc32.ChecksumIEEE(sc.levels), crc32.IEEETable, compressed)
	// No min/max in the header: the column index has (cut) page bounds
	// already, and a long string's whole bounds in a page header make it
	// too large for pyarrow to read.
	h := format.PageHeader{
		Type:                 format.DataPageV2,
		UncompressedPageSize: int32(len(sc.levels) + len(sc.values)),
		CompressedPageSize:   int32(len(sc.levels) + len(compressed)),
		CRC:                  int32(crc),
		DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{
			NumValues: int32(n), NumNulls: int32(nulls), NumRows: int32(c.pageRows), Encoding: enc,
			DefinitionLevelsByteLength: int32(defLen), RepetitionLevelsByteLength: int32(repLen),
			IsCompressed: thrift.New(isCompressed),
		}),
	}
	header, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
	if err != nil {
		return fmt.Errorf("column %v: page header: %w", c.path, err)
	}
	p := pageInfo{offset: c.chunk.len, size: int32(len(header) + int(h.CompressedPageSize)),
		firstRow: c.chunkRows, nulls: int64(nulls), allNull: nulls == n}
	// Values and no bounds (doubles that are all NaN): no bound can be
	// given, and a null page it is not: no column index for the chunk.
	p.noMax = !has && !p.allNull
	if has {
		// Only the cut bounds are kept: a page of one 16 MiB string would
		// otherwise hold it twice more until the row group is written.
		lo, hi := c.pageMin, c.pageMax
		if c.kind == parquet.ByteArray {
			lo = TruncateMin(lo, StatsLimit)
			if len(hi) > StatsLimit {
				hi = TruncateMax(hi, StatsLimit)
				p.noMax = hi == nil
			}
		}
		p.min = append([]byte{}, lo...)
		if !p.noMax {
			p.max = append([]byte{}, hi...)
		}
		c.bound(&p)
	}
	c.pages = append(c.pages, p)
	c.chunk.append(header)
	c.chunk.append(sc.levels)
	c.chunk.append(compressed)
	c.uncompressed += int64(len(header)) + int64(h.UncompressedPageSize)
	c.chunkRows += int64(c.pageRows)
	c.chunkValues += int64(n)
	c.chunkNulls += int64(nulls)
	c.countPage(format.DataPageV2, enc)
	// A column the sample showed as repetitive, but whose row group holds
	// more distinct values than the dictionary may, goes on without it.
	if enc == format.RLEDictionary && c.dict.size() > c.dictLimit {
		c.plain = true
	}
	c.dictFull = false
	c.resetPage()
	// A page of a few huge values leaves its buffers as large: let them go.
	if cap(c.data) > 4*c.pageLimit {
		c.data = nil
	}
	if cap(c.pageMin) > 4*StatsLimit || cap(c.pageMax) > 4*StatsLimit {
		c.pageMin, c.pageMax = nil, nil
	}
	return nil
}

// An integer column's pages are PLAIN or DELTA_BINARY_PACKED (the
// differences between consecutive values, bit-packed in blocks of 128),
// whichever the page takes less room in once compressed, give or take
// deltaSlack: every intProbeRun+1 pages (starting with a column's first
// page of values) both are encoded and compressed, and the next
// intProbeRun pages use the winner. Ids that count up and random
// timestamps take far less delta-encoded, and encoding them so is many
// times faster than compressing them as PLAIN, which zstd then need not do
// (see rawRun); codes that repeat take less as PLAIN and zstd, as before.
const intProbeRun = 7

// deltaSlack: a delta-encoded page is kept when it is no larger than PLAIN
// and at most 1/deltaSlack larger than PLAIN compressed. Such pages need
// no compression (zstd finds nothing in bit-packed differences, and stops
// trying: see rawRun), where zstd went at about 100 MB/s on the wide bench
// feed's PLAIN pages of ages and counts. Ages (18 to 87, random) come out
// about a fifth larger delta-encoded and stay so; codes that repeat (8 to
// 1,000 distinct values) come out 1.3 to 2.4 times larger and stay PLAIN.
const deltaSlack = 4

// integerValues encodes the open page's integers into sc.values and
// returns their encoding; probed reports that both encodings were just
// tried and compressed, and sc.compressed holds the values compressed.
func (c *column) integerValues(sc *scratch) (enc format.Encoding, probed bool, err error) {
	n := len(c.i64)
	if c.kind == parquet.Int32 {
		n = len(c.i32)
	}
	if !c.deltaInts || n == 0 {
		sc.values, err = c.encodeInts(sc.values[:0], format.Plain)
		return format.Plain, false, err
	}
	if c.intRun > 0 {
		c.intRun--
		sc.values, err = c.encodeInts(sc.values[:0], c.intEnc)
		return c.intEnc, false, err
	}
	c.intRun = intProbeRun
	if sc.values, err = c.encodeInts(sc.values[:0], format.Plain); err != nil {
		return 0, false, err
	}
	if sc.alt, err = c.encodeInts(sc.alt[:0], format.DeltaBinaryPacked); err != nil {
		return 0, false, err
	}
	plainRaw := len(sc.values)
	plainSize, deltaSize := plainRaw, len(sc.alt)
	// Both are compressed even in a run of pages stored raw, which the
	// probe ends (flushPage starts another if the winner does not
	// compress): sizes as encoded would favour delta for codes that repeat,
	// and once their delta pages did not compress, every later probe would
	// fall in a raw run too.
	probed = c.codec.CompressionCodec() != format.Uncompressed
	c.rawPages = 0
	if probed {
		if sc.compressed, err = c.codec.Encode(sc.compressed[:0], sc.values); err != nil {
			return 0, false, fmt.Errorf("compress: %w", err)
		}
		if sc.altCompressed, err = c.codec.Encode(sc.altCompressed[:0], sc.alt); err != nil {
			return 0, false, fmt.Errorf("compress: %w", err)
		}
		plainSize, deltaSize = min(plainSize, len(sc.compressed)), min(deltaSize, len(sc.altCompressed))
	}
	c.intEnc = format.Plain
	if deltaSize <= min(plainRaw, plainSize+plainSize/deltaSlack) {
		c.intEnc = format.DeltaBinaryPacked
		sc.values, sc.alt = sc.alt, sc.values
		sc.compressed, sc.altCompressed = sc.altCompressed, sc.compressed
	}
	return c.intEnc, probed, nil
}

// encodeInts appends the open page's integers, encoded enc (PLAIN or
// DELTA_BINARY_PACKED), to dst.
func (c *column) encodeInts(dst []byte, enc format.Encoding) ([]byte, error) {
	switch {
	case enc == format.DeltaBinaryPacked && c.kind == parquet.Int32:
		return (&delta.BinaryPackedEncoding{}).EncodeInt32(dst, c.i32)
	case enc == format.DeltaBinaryPacked:
		return (&delta.BinaryPackedEncoding{}).EncodeInt64(dst, c.i64)
	case c.kind == parquet.Int32:
		return (&plain.Encoding{}).EncodeInt32(dst, c.i32)
	default:
		return (&plain.Encoding{}).EncodeInt64(dst, c.i64)
	}
}

func (c *column) resetPage() {
	c.defs, c.reps = c.defs[:0], c.reps[:0]
	c.i32, c.i64, c.f64, c.bools = c.i32[:0], c.i64[:0], c.f64[:0], c.bools[:0]
	c.data, c.offs, c.idx = c.data[:0], c.offs[:1], c.idx[:0]
	c.pageRows, c.pageBytes = 0, 0
}

// countPage counts a page of type t and encoding enc in the chunk's
// encoding statistics.
func (c *column) countPage(t format.PageType, enc format.Encoding) {
	for i := range c.encStats {
		if s := &c.encStats[i]; s.PageType == t && s.Encoding == enc {
			s.Count++
			return
		}
	}
	c.encStats = append(c.encStats, format.PageEncodingStats{PageType: t, Encoding: enc, Count: 1})
}

// bound widens the chunk's bounds to page p's.
func (c *column) bound(p *pageInfo) {
	c.unbounded = c.unbounded || p.noMax
	if !c.hasBounds {
		c.min, c.max, c.hasBounds = append(c.min[:0], p.min...), append(c.max[:0], p.max...), true
		return
	}
	if compareEncoded(c.kind, p.min, c.min) < 0 {
		c.min = append(c.min[:0], p.min...)
	}
	if !p.noMax && compareEncoded(c.kind, p.max, c.max) > 0 {
		c.max = append(c.max[:0], p.max...)
	}
}

// dictBounds sets the open page's bounds from the dictionary entries its
// indexes name, each looked at once.
func (c *column) dictBounds() bool {
	if len(c.idx) == 0 {
		return false
	}
	d := c.dict
	if len(c.seen) < d.len() {
		c.seen = append(c.seen, make([]uint32, d.len()-len(c.seen))...)
	}
	c.gen++
	var lo, hi []byte
	for _, i := range c.idx {
		if c.seen[i] == c.gen {
			continue
		}
		c.seen[i] = c.gen
		v := d.value(i)
		if lo == nil || bytes.Compare(v, lo) < 0 {
			lo = v
		}
		if hi == nil || bytes.Compare(v, hi) > 0 {
			hi = v
		}
	}
	c.pageMin, c.pageMax = append(c.pageMin[:0], lo...), append(c.pageMax[:0], hi...)
	return true
}

// dictionaryPage returns the chunk's dictionary page, header included, and
// its uncompressed size (nil when the column has no dictionary). A chunk
// of nulls only has one too, empty: its data pages are RLE_DICTIONARY, and
// pyarrow and DuckDB refuse such pages without a dictionary page.
func (c *column) dictionaryPage(sc *scratch) ([]byte, int64, error) {
	if c.dict == nil {
		return nil, 0, nil
	}
	var err error
	sc.values, err = (&plain.Encoding{}).EncodeByteArray(sc.values[:0], c.dict.data, c.dict.offs)
	if err != nil {
		return nil, 0, fmt.Errorf("column %v: encode dictionary: %w", c.path, err)
	}
	compressed := sc.values
	if c.codec.CompressionCodec() != format.Uncompressed {
		if sc.compressed, err = c.codec.Encode(sc.compressed[:0], sc.values); err != nil {
			return nil, 0, fmt.Errorf("column %v: compress dictionary: %w", c.path, err)
		}
		compressed = sc.compressed
	}
	h := format.PageHeader{
		Type:                 format.DictionaryPage,
		UncompressedPageSize: int32(len(sc.values)),
		CompressedPageSize:   int32(len(compressed)),
		CRC:                  int32(crc32.ChecksumIEEE(compressed)),
		DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: int32(c.dict.len()), Encoding: format.Plain}),
	}
	header, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
	if err != nil {
		return nil, 0, fmt.Errorf("column %v: dictionary page header: %w", c.path, err)
	}
	page := append(header, compressed...)
	return page, int64(len(header) + len(sc.values)), nil
}

// size is what the column holds of the open row group: its pages (the
// blocks they take), its open page and its dictionary.
func (c *column) size() int64 {
	n := c.chunk.cap + int64(c.pageBytes)
	if c.dict != nil {
		n += c.dict.size()
	}
	return n
}

// appendLevels appends levels RLE-encoded with the bit width of max.
func appendLevels(dst, levels []byte, max byte) ([]byte, error) {
	enc := rle.Encoding{BitWidth: bits.Len8(max)}
	start := len(dst)
	out, err := enc.EncodeLevels(dst[start:], levels)
	if err != nil {
		return dst, err
	}
	if start == 0 {
		return out, nil
	}
	return append(dst[:start], out...), nil
}

// packBits packs one 0/1 byte per value into bits, the first value in the
// lowest bit.
func packBits(dst, vals []byte) []byte {
	for i := 0; i < len(vals); i += 8 {
		var b byte
		for j := 0; j < 8 && i+j < len(vals); j++ {
			b |= vals[i+j] << j
		}
		dst = append(dst, b)
	}
	return dst
}

func boolBounds(vals []byte, lo, hi *[]byte) bool {
	if len(vals) == 0 {
		return false
	}
	var any0, any1 bool
	for _, v := range vals {
		if v == 0 {
			any0 = true
		} else {
			any1 = true
		}
	}
	l, h := byte(1), byte(0)
	if any0 {
		l = 0
	}
	if any1 {
		h = 1
	}
	*lo, *hi = append(*lo, l), append(*hi, h)
	return true
}

// minMax returns the least and the greatest of vals (false if none).
func minMax[T int32 | int64](vals []T) (l, h T, ok bool) {
	if len(vals) == 0 {
		return l, h, false
	}
	l, h = vals[0], vals[0]
	for _, v := range vals[1:] {
		l, h = min(l, v), max(h, v)
	}
	return l, h, true
}

func int32Bounds(vals []int32, lo, hi *[]byte) bool {
	l, h, ok := minMax(vals)
	if ok {
		*lo = binary.LittleEndian.AppendUint32(*lo, uint32(l))
		*hi = binary.LittleEndian.AppendUint32(*hi, uint32(h))
	}
	return ok
}

func int64Bounds(vals []int64, lo, hi *[]byte) bool {
	l, h, ok := minMax(vals)
	if ok {
		*lo = binary.LittleEndian.AppendUint64(*lo, uint64(l))
		*hi = binary.LittleEndian.AppendUint64(*hi, uint64(h))
	}
	return ok
}

// doubleBounds leaves NaNs out (none come from JSON) and writes a zero
// bound as the spec asks: -0 as a minimum, +0 as a maximum.
func doubleBounds(vals []float64, lo, hi *[]byte) bool {
	l, h, has := math.Inf(1), math.Inf(-1), false
	for _, v := range vals {
		if v != v {
			continue
		}
		has = true
		if v < l {
			l = v
		}
		if v > h {
			h = v
		}
	}
	if !has {
		return false
	}
	if l == 0 {
		l = math.Copysign(0, -1)
	}
	if h == 0 {
		h = 0
	}
	*lo = binary.LittleEndian.AppendUint64(*lo, math.Float64bits(l))
	*hi = binary.LittleEndian.AppendUint64(*hi, math.Float64bits(h))
	return true
}

func bytesBounds(data []byte, offs []uint32, lo, hi *[]byte) bool {
	if len(offs) < 2 {
		return false
	}
	l := data[offs[0]:offs[1]]
	h := l
	for i := 1; i < len(offs)-1; i++ {
		v := data[offs[i]:offs[i+1]]
		if bytes.Compare(v, l) < 0 {
			l = v
		} else if bytes.Compare(v, h) > 0 {
			h = v
		}
	}
	*lo, *hi = append(*lo, l...), append(*hi, h...)
	return true
}

// compareEncoded compares two plain-encoded values of kind by the kind's
// order (signed integers, IEEE doubles, unsigned bytes).
func compareEncoded(kind parquet.Kind, a, b []byte) int {
	switch kind {
	case parquet.Boolean:
		return int(a[0]) - int(b[0])
	case parquet.Int32:
		x, y := int32(binary.LittleEndian.Uint32(a)), int32(binary.LittleEndian.Uint32(b))
		return cmpOrdered(x, y)
	case parquet.Int64:
		x, y := int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b))
		return cmpOrdered(x, y)
	case parquet.Double:
		x, y := math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b))
		return cmpOrdered(x, y)
	}
	return bytes.Compare(a, b)
}

func cmpOrdered[T int32 | int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// blocks is a column chunk's bytes, in blocks: a chunk whose size doubled
// as it grew would hold up to twice what it has, and the row group's chunks
// together are most of the writer's memory. A chunk's first blocks are
// small (a sparse column's chunk may hold a few bytes), each twice the one
// before, up to the pool's size; blocks of that size come from a pool
// shared by the columns.
type blocks struct {
	pool *blockPool
	bs   [][]byte
	len  int64
	cap  int64
}

// minBlock is the size of a chunk's first block.
const minBlock = 2 << 10

func (b *blocks) append(p []byte) {
	for len(p) > 0 {
		if n := len(b.bs); n == 0 || len(b.bs[n-1]) == cap(b.bs[n-1]) {
			size := minBlock
			if n > 0 {
				size = 2 * cap(b.bs[n-1])
			}
			bl := b.pool.get(size)
			b.bs = append(b.bs, bl)
			b.cap += int64(cap(bl))
		}
		last := &b.bs[len(b.bs)-1]
		k := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
		b.len += int64(k)
	}
}

// writeTo writes the bytes to f.
func (b *blocks) writeTo(f *file) error {
	for _, bl := range b.bs {
		if err := f.write(bl); err != nil {
			return err
		}
	}
	return nil
}

// reset gives the blocks back to the pool.
func (b *blocks) reset() {
	for _, bl := range b.bs {
		b.pool.put(bl)
	}
	clear(b.bs)
	b.bs, b.len, b.cap = b.bs[:0], 0, 0
}

// blockPool keeps the blocks of column chunks between row groups, by size
// (minBlock doubled up to size): blocks dropped at each row group made
// garbage enough to raise the peak RSS of the bench by 10–15 MiB.
type blockPool struct {
	mu   sync.Mutex
	size int
	free map[int][][]byte
}

// get returns an empty block of min(size, p.size) bytes.
func (p *blockPool) get(size int) []byte {
	size = min(size, p.size)
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.free[size]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[size] = l[:len(l)-1]
		return b
	}
	return make([]byte, 0, size)
}

func (p *blockPool) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free == nil {
		p.free = map[int][][]byte{}
	}
	p.free[cap(b)] = append(p.free[cap(b)], b[:0])
}
