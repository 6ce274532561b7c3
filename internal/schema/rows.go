package schema

import (
	"math"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// Rows holds parsed rows column by column: for each leaf column of a
// Layout, its levels and its values, typed, ready to be copied into a
// Parquet page. Rows own their bytes: nothing in them points into the
// lines they were parsed from.
type Rows struct {
	// Leaves holds one Leaf per leaf column of the Layout, in its order.
	Leaves []Leaf
	// N is the number of rows.
	N int
	// repeated lists the leaves under a list, whose levels a row does not
	// number; marks holds theirs at mark, and markN the rows then.
	repeated []int
	marks    []leafMark
	markN    int
}

// Leaf is one leaf column's part of Rows. Each value, null or not, has a
// definition level in Defs when the leaf may be null (MaxDef > 0) and a
// repetition level in Reps when it lies under a list (MaxRep > 0); a value
// of repetition level 0 starts a row. The values that are not null (those
// at definition level MaxDef) are in the slice of the leaf's Kind; a byte
// array's are back to back in Bytes, value i being
// Bytes[Offsets[i]:Offsets[i+1]].
type Leaf struct {
	Kind           parquet.Kind
	MaxDef, MaxRep byte
	Defs, Reps     []byte
	Bools          []bool
	Int32          []int32
	Int64          []int64
	Double         []float64
	Bytes          []byte
	Offsets        []uint32 // absolute in Bytes; one more than the values
}

// leafMark is where a leaf's slices ended at Rows.mark.
type leafMark struct{ defs, reps, vals int }

// NewRows returns empty Rows for l.
func NewRows(l *Layout) *Rows {
	r := &Rows{Leaves: make([]Leaf, l.Leaves)}
	for _, path := range l.Parquet.Columns() {
		leaf, _ := l.Parquet.Lookup(path...)
		lf := &r.Leaves[leaf.ColumnIndex]
		lf.Kind = leaf.Node.Type().Kind()
		lf.MaxDef, lf.MaxRep = byte(leaf.MaxDefinitionLevel), byte(leaf.MaxRepetitionLevel)
		if lf.Kind == parquet.ByteArray {
			lf.Offsets = []uint32{0}
		}
	}
	for i := range r.Leaves {
		if r.Leaves[i].MaxRep > 0 {
			r.repeated = append(r.repeated, i)
		}
	}
	r.marks = make([]leafMark, len(r.repeated))
	return r
}

// Levels is the number of values of lf, nulls included.
func (lf *Leaf) Levels() int {
	switch {
	case lf.MaxDef > 0:
		return len(lf.Defs)
	case lf.MaxRep > 0:
		return len(lf.Reps)
	}
	return lf.Len()
}

// Len is the number of values of lf that are not null.
func (lf *Leaf) Len() int {
	switch lf.Kind {
	case parquet.Boolean:
		return len(lf.Bools)
	case parquet.Int32:
		return len(lf.Int32)
	case parquet.Int64:
		return len(lf.Int64)
	case parquet.Double:
		return len(lf.Double)
	case parquet.ByteArray:
		return len(lf.Offsets) - 1
	}
	return 0
}

// present counts the values of defs that are not null.
func (lf *Leaf) present(defs []byte) int {
	n := 0
	for _, d := range defs {
		if d == lf.MaxDef {
			n++
		}
	}
	return n
}

// Split returns lf's first rows rows and the rest, each a view of lf's
// slices (Bytes is shared: Offsets are absolute in it).
func (lf *Leaf) Split(rows int) (head, tail Leaf) {
	levels := rows
	if lf.MaxRep > 0 {
		// A row starts at each value of repetition level 0.
		levels = len(lf.Reps)
		seen := 0
		for j, rep := range lf.Reps {
			if rep == 0 {
				if seen == rows {
					levels = j
					break
				}
				seen++
			}
		}
	}
	vals := levels
	if lf.MaxDef > 0 {
		vals = lf.present(lf.Defs[:levels])
	}
	head, tail = *lf, *lf
	if lf.MaxDef > 0 {
		head.Defs, tail.Defs = lf.Defs[:levels:levels], lf.Defs[levels:]
	}
	if lf.MaxRep > 0 {
		head.Reps, tail.Reps = lf.Reps[:levels:levels], lf.Reps[levels:]
	}
	switch lf.Kind {
	case parquet.Boolean:
		head.Bools, tail.Bools = lf.Bools[:vals:vals], lf.Bools[vals:]
	case parquet.Int32:
		head.Int32, tail.Int32 = lf.Int32[:vals:vals], lf.Int32[vals:]
	case parquet.Int64:
		head.Int64, tail.Int64 = lf.Int64[:vals:vals], lf.Int64[vals:]
	case parquet.Double:
		head.Double, tail.Double = lf.Double[:vals:vals], lf.Double[vals:]
	case parquet.ByteArray:
		head.Offsets, tail.Offsets = lf.Offsets[:vals+1:vals+1], lf.Offsets[vals:]
	}
	return head, tail
}

// Value returns value i of lf (nulls included) as a parquet.Value with its
// levels: for tests, not for the hot path (it counts the nulls before i,
// so reading a whole leaf this way takes quadratic time). Its bytes are
// lf's.
func (lf *Leaf) Value(i, column int) parquet.Value {
	var rep, def int
	if lf.MaxRep > 0 {
		rep = int(lf.Reps[i])
	}
	if lf.MaxDef > 0 {
		def = int(lf.Defs[i])
	}
	if def < int(lf.MaxDef) {
		return parquet.Value{}.Level(rep, def, column)
	}
	k := i // the value's index among the non-null ones
	if lf.MaxDef > 0 {
		k = lf.present(lf.Defs[:i])
	}
	var v parquet.Value
	switch lf.Kind {
	case parquet.Boolean:
		v = parquet.BooleanValue(lf.Bools[k])
	case parquet.Int32:
		v = parquet.Int32Value(lf.Int32[k])
	case parquet.Int64:
		v = parquet.Int64Value(lf.Int64[k])
	case parquet.Double:
		v = parquet.DoubleValue(lf.Double[k])
	case parquet.ByteArray:
		v = parquet.ByteArrayValue(lf.Bytes[lf.Offsets[k]:lf.Offsets[k+1]])
	}
	return v.Level(rep, def, column)
}

// LeafValues returns leaf's values (nulls included) as parquet.Values with
// their levels: for tests (see Value).
func (r *Rows) LeafValues(leaf int) []parquet.Value {
	lf := &r.Leaves[leaf]
	vals := make([]parquet.Value, lf.Levels())
	for i := range vals {
		vals[i] = lf.Value(i, leaf)
	}
	return vals
}

// Values is how many values r holds, in all its leaves, nulls included.
func (r *Rows) Values() int {
	n := 0
	for i := range r.Leaves {
		n += r.Leaves[i].Levels()
	}
	return n
}

// Bytes is how many bytes of byte-array values r holds.
func (r *Rows) Bytes() int {
	n := 0
	for i := range r.Leaves {
		n += len(r.Leaves[i].Bytes)
	}
	return n
}

// keepBytes is the most of a leaf's byte buffer that Reset keeps: rows
// that once held a long string (up to a 16 MiB line's) let it go, as each
// batch and spare of a pipeline would otherwise keep one per string leaf.
const keepBytes = 1 << 20

// Reset empties r, keeping its buffers (a byte buffer only up to keepBytes).
func (r *Rows) Reset() {
	for i := range r.Leaves {
		lf := &r.Leaves[i]
		lf.Defs, lf.Reps = lf.Defs[:0], lf.Reps[:0]
		lf.Bools, lf.Int32, lf.Int64, lf.Double = lf.Bools[:0], lf.Int32[:0], lf.Int64[:0], lf.Double[:0]
		lf.Bytes = lf.Bytes[:0]
		if cap(lf.Bytes) > keepBytes {
			lf.Bytes = nil
		}
		if lf.Kind == parquet.ByteArray {
			lf.Offsets = lf.Offsets[:1]
		}
	}
	r.N = 0
}

// mark notes where the next row starts, for rollback: the row count, and
// the ends of the repeated leaves (every other leaf has one level a row).
func (r *Rows) mark() {
	r.markN = r.N
	for k, i := range r.repeated {
		lf := &r.Leaves[i]
		r.marks[k] = leafMark{len(lf.Defs), len(lf.Reps), lf.Len()}
	}
}

// rollback drops what was added since mark.
func (r *Rows) rollback() {
	for i := range r.Leaves {
		if lf := &r.Leaves[i]; lf.MaxRep == 0 && lf.Levels() > r.markN {
			lf.dropLast()
		}
	}
	for k, i := range r.repeated {
		lf, m := &r.Leaves[i], r.marks[k]
		lf.Defs, lf.Reps = lf.Defs[:m.defs], lf.Reps[:m.reps]
		lf.keep(m.vals)
	}
}

// keep cuts lf's non-null values to their first n (and Bytes to theirs).
func (lf *Leaf) keep(n int) {
	switch lf.Kind {
	case parquet.Boolean:
		lf.Bools = lf.Bools[:n]
	case parquet.Int32:
		lf.Int32 = lf.Int32[:n]
	case parquet.Int64:
		lf.Int64 = lf.Int64[:n]
	case parquet.Double:
		lf.Double = lf.Double[:n]
	case parquet.ByteArray:
		lf.Offsets = lf.Offsets[:n+1]
		lf.Bytes = lf.Bytes[:lf.Offsets[n]]
	}
}

// dropLast drops the last level of lf and its value, if not null.
func (lf *Leaf) dropLast() {
	if lf.MaxDef > 0 {
		last := len(lf.Defs) - 1
		d := lf.Defs[last]
		lf.Defs = lf.Defs[:last]
		if d < lf.MaxDef {
			return
		}
	}
	lf.keep(lf.Len() - 1)
}

// levels adds the levels of a value of n at repetition level rep (within
// range: a schema nests at most maxDepth deep) and returns n's leaf, for
// the value.
func (r *Rows) levels(n *node, rep int) *Leaf {
	lf := &r.Leaves[n.leaf]
	if lf.MaxRep > 0 {
		lf.Reps = append(lf.Reps, byte(rep))
	}
	if lf.MaxDef > 0 {
		lf.Defs = append(lf.Defs, byte(n.def))
	}
	return lf
}

func (r *Rows) putBool(n *node, rep int, b bool) {
	lf := r.levels(n, rep)
	lf.Bools = append(lf.Bools, b)
}

func (r *Rows) putInt32(n *node, rep int, v int32) {
	lf := r.levels(n, rep)
	lf.Int32 = append(lf.Int32, v)
}

func (r *Rows) putInt64(n *node, rep int, v int64) {
	lf := r.levels(n, rep)
	lf.Int64 = append(lf.Int64, v)
}

func (r *Rows) putDouble(n *node, rep int, f float64) {
	lf := r.levels(n, rep)
	lf.Double = append(lf.Double, f)
}

func (r *Rows) putBytes(n *node, rep int, b []byte) {
	r.levels(n, rep).appendBytes(b)
}

// appendBytes adds b, a byte-array value (its levels set).
func (lf *Leaf) appendBytes(b []byte) {
	// A batch holds one block of lines, or one line of at most 16 MiB
	// (internal/convert), and parquetconv's Writer.Write writes its rows on
	// at 64 MiB: no leaf of one Rows comes near 4 GiB.
	if uint64(len(lf.Bytes))+uint64(len(b)) > math.MaxUint32 {
		panic("schema: over 4 GiB of one column's values in one Rows; write rows in smaller batches")
	}
	lf.Bytes = append(lf.Bytes, b...)
	lf.Offsets = append(lf.Offsets, uint32(len(lf.Bytes)))
}

// putValue adds v, a non-null value of scalar node n as Parser.scalar
// types it, at repetition level rep.
func (r *Rows) putValue(n *node, rep int, v parquet.Value) {
	switch v.Kind() {
	case parquet.Boolean:
		r.putBool(n, rep, v.Boolean())
	case parquet.Int32:
		r.putInt32(n, rep, v.Int32())
	case parquet.Int64:
		r.putInt64(n, rep, v.Int64())
	case parquet.Double:
		r.putDouble(n, rep, v.Double())
	case parquet.ByteArray:
		r.putBytes(n, rep, v.ByteArray())
	}
}

// nulls adds a null at definition level def and repetition level rep to
// every leaf under n.
func (r *Rows) nulls(n *node, rep, def int) {
	for _, leaf := range n.leaves {
		lf := &r.Leaves[leaf]
		if lf.MaxRep > 0 {
			lf.Reps = append(lf.Reps, byte(rep))
		}
		lf.Defs = append(lf.Defs, byte(def))
	}
}

// putFeed adds a row's feed id and line number to l's feed columns.
func (r *Rows) putFeed(l *Layout, feedID string, line int64) {
	r.Leaves[l.FeedLeaf].appendBytes(bytesOf(feedID))
	r.Leaves[l.LineLeaf].Int64 = append(r.Leaves[l.LineLeaf].Int64, line)
}

// bytesOf views a string's bytes without copying them, to copy them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// AppendValues adds one row of typed values (as Schema.Parse returns them,
// in Schema.Columns order), with its feed id and line number when l has
// those columns and its undeclared fields as JSON text (or "") when l has
// _extra.
func (l *Layout) AppendValues(r *Rows, feedID string, line int64, vals []Value, extra string) {
	if l.FeedLeaf >= 0 {
		r.putFeed(l, feedID, line)
	}
	if l.ExtraLeaf >= 0 {
		lf := &r.Leaves[l.ExtraLeaf]
		if extra == "" {
			lf.Defs = append(lf.Defs, 0)
		} else {
			lf.Defs = append(lf.Defs, 1)
			lf.appendBytes(bytesOf(extra))
		}
	}
	for i, n := range l.top {
		r.appendValue(n, vals[i], 0)
	}
	r.N++
}

// appendValue adds v, a value of n, at repetition level rep.
func (r *Rows) appendValue(n *node, v Value, rep int) {
	if v.Null {
		r.nulls(n, rep, n.nullDef)
		return
	}
	switch n.kind {
	case objectNode:
		for i, f := range n.fields {
			r.appendValue(f, v.Fields[i], rep)
		}
		return
	case listNode:
		if len(v.Items) == 0 {
			r.nulls(n, rep, n.def)
			return
		}
		for j, it := range v.Items {
			if j > 0 {
				rep = n.rep
			}
			r.appendValue(n.items, it, rep)
		}
		return
	}
	switch n.typ {
	case tString, tJSON:
		r.putBytes(n, rep, bytesOf(v.S))
	case tInt64, tTimestamp, tDecimal:
		r.putInt64(n, rep, v.I)
	case tDate, tDecimal32:
		r.putInt32(n, rep, int32(v.I))
	case tFloat64:
		r.putDouble(n, rep, v.F)
	case tBool:
		r.putBool(n, rep, v.B)
	}
}
