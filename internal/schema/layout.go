package schema

import (
	"fmt"
	"reflect"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// LayoutOptions choose the columns feedpipe adds to a file.
type LayoutOptions struct {
	// FeedColumns adds _feed_id and _line (staged records of a feed).
	FeedColumns bool
	// Extra adds an optional JSON column _extra for fields the schema does
	// not declare.
	Extra bool
}

// ExtraField is the column that keeps undeclared fields as a JSON object.
const ExtraField = "_extra"

// Layout places a schema's columns in a Parquet file: objects become
// groups, lists three-level LISTs, and every scalar a leaf column with its
// definition and repetition levels. Rows are built for one Layout.
type Layout struct {
	// Parquet is the file's schema.
	Parquet *parquet.Schema
	// Leaves is the number of leaf columns.
	Leaves int
	// FeedLeaf, LineLeaf and ExtraLeaf are those columns' leaves, or -1.
	FeedLeaf, LineLeaf, ExtraLeaf int

	s     *Schema
	top   []*node // s.Columns order
	index map[string]int
	// repeated marks leaves under a list (their rows span several values).
	repeated []bool
	// quickLevels: valueBits matches parquet.Value, so levels are stored directly.
	quickLevels bool
	// objects counts the objects (the line's own is 0), for Parser's key order hints.
	objects int
	// folded holds, per object, its fields' names as FoldName makes them:
	// an undeclared key found there is odd (see OddKey).
	folded []map[string]bool
	// foldMax holds, per object, the length of its longest folded name.
	foldMax []int
}

// oddKey reports whether key, not a declared field of object obj, is odd
// (see OddKey): empty, or one of its fields' names but for case. It folds
// key as FoldName does (unicode.ToLower rune by rune) into a buffer on the
// stack, without allocating.
func (l *Layout) oddKey(obj int, key []byte) bool {
	if len(key) == 0 {
		return true
	}
	// Lowering a rune changes its UTF-8 length by at most a factor of 3
	// (the Kelvin sign, 3 bytes, becomes k): a key longer than three times
	// the longest folded name is none of them.
	if len(key) > 3*l.foldMax[obj] {
		return false
	}
	var buf [256]byte
	b := buf[:0]
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(key[i:])
		b = utf8.AppendRune(b, unicode.ToLower(r))
		i += size
	}
	return l.folded[obj][string(b)]
}

// fold records the names of object obj's fields for oddKey.
func (l *Layout) fold(obj int, cols []Column) {
	for len(l.folded) <= obj {
		l.folded = append(l.folded, nil)
		l.foldMax = append(l.foldMax, 0)
	}
	m := make(map[string]bool, len(cols))
	for _, c := range cols {
		f := FoldName(c.Name)
		m[f] = true
		l.foldMax[obj] = max(l.foldMax[obj], len(f))
	}
	l.folded[obj] = m
}

// valueBits mirrors the memory layout of parquet-go's Value (v0.32), so that
// a parsed value is written into its column's slot field by field, levels
// and column included (see putLevel), instead of copied whole and passed
// to Value.Level. levelsMirrorWorks checks the mirror when a Layout is
// made: the fields' kinds and offsets (a pointer must be where the
// pointer is, for the garbage collector) and the values it makes against
// Level's; should parquet-go ever change the layout, Level is used.
type valueBits struct {
	ptr  *byte
	u64  uint64
	kind int8
	def  byte
	rep  byte
	col  uint16 // ^column
}

// levelsMirrorWorks reports whether valueBits has parquet.Value's fields
// (kinds, sizes, offsets) and sets the same values as parquet.Value.Level,
// on values of every kind feedpipe writes.
func levelsMirrorWorks() bool {
	if unsafe.Sizeof(parquet.Value{}) != unsafe.Sizeof(valueBits{}) {
		return false
	}
	theirs, ours := reflect.TypeFor[parquet.Value](), reflect.TypeFor[valueBits]()
	if theirs.NumField() != ours.NumField() {
		return false
	}
	for i := range ours.NumField() {
		a, b := theirs.Field(i), ours.Field(i)
		if a.Offset != b.Offset || a.Type.Kind() != b.Type.Kind() || a.Type.Size() != b.Type.Size() {
			return false
		}
	}
	for _, v := range []parquet.Value{parquet.BooleanValue(true), parquet.Int32Value(-7), parquet.Int64Value(-1 << 40),
		parquet.DoubleValue(-1.5), parquet.ByteArrayValue([]byte("abc")), {}} {
		for _, lv := range [][3]int{{0, 0, 0}, {1, 2, 3}, {255, 255, 32767}, {3, 0, 4096}} {
			want := v.Level(lv[0], lv[1], lv[2])
			got := withLevels(v, lv[0], lv[1], lv[2])
			if got != want || got.RepetitionLevel() != lv[0] || got.DefinitionLevel() != lv[1] || got.Column() != lv[2] {
				return false
			}
		}
	}
	return true
}

func withLevels(v parquet.Value, rep, def, col int) parquet.Value {
	var out parquet.Value
	copyLevels((*valueBits)(unsafe.Pointer(&out)), (*valueBits)(unsafe.Pointer(&v)), rep, def, col)
	return out
}

// copyLevels sets *d to *s at levels rep and def of column col, field by
// field (see putLevel).
func copyLevels(d, s *valueBits, rep, def, col int) {
	d.ptr, d.u64, d.kind = s.ptr, s.u64, s.kind
	d.def, d.rep, d.col = byte(def), byte(rep), ^uint16(col)
}

type nodeKind uint8

// scalarType is a scalar column's Type as a small number: switching on it
// is a jump, where switching on the Type string compares strings.
type scalarType uint8

const (
	tString scalarType = iota
	tInt64
	tFloat64
	tBool
	tTimestamp
	tDate
	tDecimal
	tDecimal32 // precision <= 9, stored as INT32
	tJSON
)

var scalarTypes = map[Type]scalarType{String: tString, Int64: tInt64, Float64: tFloat64, Bool: tBool,
	Timestamp: tTimestamp, Date: tDate, Decimal: tDecimal, JSON: tJSON}

const (
	scalarNode nodeKind = iota
	objectNode
	listNode
)

// node is one column (or field, or list element) placed in the file.
type node struct {
	c       *Column
	kind    nodeKind
	typ     scalarType // scalarNode: c.Type
	leaf    int        // scalarNode: its leaf column
	def     int        // definition level of a present value
	nullDef int        // definition level written for a null (its parent's)
	rep     int        // listNode: repetition level of elements after the first
	fields  []*node
	index   map[string]int
	obj     int  // objectNode: its number among the layout's objects
	plain   bool // the name needs no JSON escape: a key can be compared byte for byte
	items   *node
	leaves  []int // every leaf under the node
}

// NewLayout places s's columns (validated) in a file.
func NewLayout(s *Schema, opt LayoutOptions) (*Layout, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if opt.Extra {
		for _, c := range s.Columns {
			if FoldName(c.Name) == FoldName(ExtraField) {
				return nil, fmt.Errorf("column %q: %s is the column that keeps undeclared fields (Snowflake names ignore case); rename the column, or keep undeclared fields otherwise", c.Name, ExtraField)
			}
		}
		// The line's own odd keys go to _extra (see OddKey).
		keep := *s
		keep.keepOdd = true
		s = &keep
	}
	group := parquet.Group{}
	if opt.FeedColumns {
		group[FeedIDField] = parquet.String()
		group[LineField] = parquet.Int(64)
	}
	if opt.Extra {
		group[ExtraField] = parquet.Optional(parquet.JSON())
	}
	for _, c := range s.Columns {
		group[c.Name] = parquetNode(c)
	}
	l := &Layout{Parquet: parquet.NewSchema("feed", group), s: s, FeedLeaf: -1, LineLeaf: -1, ExtraLeaf: -1,
		index: make(map[string]int, len(s.Columns))}
	l.Leaves = len(l.Parquet.Columns())
	if l.Leaves > parquet.MaxColumnIndex {
		return nil, fmt.Errorf("%d leaf columns; Parquet holds at most %d", l.Leaves, parquet.MaxColumnIndex)
	}
	l.quickLevels = levelsMirrorWorks()
	l.repeated = make([]bool, l.Leaves)
	lookup := func(path ...string) int {
		leaf, _ := l.Parquet.Lookup(path...)
		return leaf.ColumnIndex
	}
	if opt.FeedColumns {
		l.FeedLeaf, l.LineLeaf = lookup(FeedIDField), lookup(LineField)
	}
	if opt.Extra {
		l.ExtraLeaf = lookup(ExtraField)
	}
	l.fold(0, s.Columns)
	for i := range s.Columns {
		n, err := l.place(&s.Columns[i], []string{s.Columns[i].Name}, 0, 0)
		if err != nil {
			return nil, err
		}
		l.top = append(l.top, n)
		l.index[s.Columns[i].Name] = i
	}
	return l, nil
}

// parquetNode is c's node in the Parquet schema.
func parquetNode(c Column) parquet.Node {
	var n parquet.Node
	switch c.Type {
	case String:
		n = parquet.String()
		if c.Dictionary {
			n = parquet.Encoded(n, &parquet.RLEDictionary)
		}
	case JSON:
		n = parquet.JSON()
	case Int64:
		n = parquet.Int(64)
	case Float64:
		n = parquet.Leaf(parquet.DoubleType)
	case Bool:
		n = parquet.Leaf(parquet.BooleanType)
	case Timestamp:
		n = parquet.Timestamp(parquet.Microsecond)
	case Date:
		n = parquet.Date()
	case Decimal:
		// INT32 up to 9 digits, INT64 up to 18, as the Parquet spec asks
		// (parquet-go prints a warning for an INT64 of fewer digits).
		if c.Precision <= 9 {
			n = parquet.Decimal(c.Scale, c.Precision, parquet.Int32Type)
		} else {
			n = parquet.Decimal(c.Scale, c.Precision, parquet.Int64Type)
		}
	case Object:
		g := parquet.Group{}
		for _, f := range c.Fields {
			g[f.Name] = parquetNode(f)
		}
		n = g
	case List:
		n = parquet.List(parquetNode(*c.Items))
	}
	if c.Nullable {
		n = parquet.Optional(n)
	}
	return n
}

// place computes the levels of c, at path, under a parent whose present
// values have definition level def and repetition level rep.
func (l *Layout) place(c *Column, path []string, def, rep int) (*node, error) {
	n := &node{c: c, nullDef: def, def: def, plain: plainName(c.Name)}
	if c.Nullable {
		n.def++
	}
	switch c.Type {
	case Object:
		n.kind = objectNode
		l.objects++
		n.obj = l.objects
		l.fold(n.obj, c.Fields)
		n.index = make(map[string]int, len(c.Fields))
		for i := range c.Fields {
			f, err := l.place(&c.Fields[i], append(path[:len(path):len(path)], c.Fields[i].Name), n.def, rep)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, f)
			n.index[c.Fields[i].Name] = i
			n.leaves = append(n.leaves, f.leaves...)
		}
	case List:
		n.kind = listNode
		n.rep = rep + 1
		items, err := l.place(c.Items, append(path[:len(path):len(path)], "list", "element"), n.def+1, n.rep)
		if err != nil {
			return nil, err
		}
		n.items = items
		n.leaves = items.leaves
		for _, leaf := range n.leaves {
			l.repeated[leaf] = true
		}
	default:
		n.typ = scalarTypes[c.Type]
		if c.Type == Decimal && c.Precision <= 9 {
			n.typ = tDecimal32
		}
		leaf, ok := l.Parquet.Lookup(path...)
		if !ok || leaf.MaxDefinitionLevel != n.def || leaf.MaxRepetitionLevel != rep {
			return nil, fmt.Errorf("layout of column %v: levels (%d, %d) differ from Parquet's (%d, %d)", path, n.def, rep, leaf.MaxDefinitionLevel, leaf.MaxRepetitionLevel)
		}
		n.leaf = leaf.ColumnIndex
		n.leaves = []int{n.leaf}
	}
	return n, nil
}

// plainName reports whether name is written in JSON as itself between quotes.
func plainName(name string) bool {
	for _, c := range []byte(name) {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.ValidString(name)
}

// Repeated reports whether leaf lies under a list, so that one row may hold
// several of its values (or none but a level).
func (l *Layout) Repeated(leaf int) bool { return l.repeated[leaf] }

// Rows holds parsed rows column by column: for each leaf column of a
// Layout, its values with their levels, ready for a Parquet column writer.
// Byte-array values point into the parsed lines and into the Rows' own
// buffer; both must stay unchanged until the Rows are written.
type Rows struct {
	Leaves [][]parquet.Value
	// N is the number of rows.
	N     int
	buf   []byte // unescaped strings, compacted JSON
	marks []int
	quick bool // Layout.quickLevels
}

// NewRows returns empty Rows for l.
func NewRows(l *Layout) *Rows {
	return &Rows{Leaves: make([][]parquet.Value, l.Leaves), marks: make([]int, l.Leaves+1), quick: l.quickLevels}
}

// putLevel adds v to n's leaf at repetition level rep (levels are within
// range: a schema nests at most maxDepth deep).
func (r *Rows) putLevel(n *node, rep int, v parquet.Value) {
	if !r.quick {
		r.Leaves[n.leaf] = append(r.Leaves[n.leaf], v.Level(rep, n.def, n.leaf))
		return
	}
	// Field by field: copying v whole, then setting its levels, made each
	// value wait on the stores it was built with (a load spanning several
	// smaller stores is not forwarded from them); that was most of
	// putLevel's 15 % of a conversion's time.
	copyLevels(r.grow(n.leaf), (*valueBits)(unsafe.Pointer(&v)), rep, n.def, n.leaf)
}

// grow adds a value to leaf's values and returns it, to be set in place:
// every field (it may hold a value of before Reset or rollback).
func (r *Rows) grow(leaf int) *valueBits {
	l := r.Leaves[leaf]
	if len(l) == cap(l) {
		l = append(l, parquet.Value{})[:len(l)]
	}
	l = l[:len(l)+1]
	r.Leaves[leaf] = l
	return (*valueBits)(unsafe.Pointer(&l[len(l)-1]))
}

// Values is how many values r holds, in all its leaves.
func (r *Rows) Values() int {
	n := 0
	for _, l := range r.Leaves {
		n += len(l)
	}
	return n
}

// Reset empties r, keeping its buffers.
func (r *Rows) Reset() {
	// The values still point into the lines they came from; those buffers
	// are reused as well, so nothing is kept alive that would be freed.
	for i := range r.Leaves {
		r.Leaves[i] = r.Leaves[i][:0]
	}
	r.N, r.buf = 0, r.buf[:0]
}

func (r *Rows) mark() {
	for i, l := range r.Leaves {
		r.marks[i] = len(l)
	}
	r.marks[len(r.Leaves)] = len(r.buf)
}

func (r *Rows) rollback() {
	for i := range r.Leaves {
		r.Leaves[i] = r.Leaves[i][:r.marks[i]]
	}
	r.buf = r.buf[:r.marks[len(r.Leaves)]]
}

func (r *Rows) nulls(n *node, rep, def int) {
	for _, leaf := range n.leaves {
		if !r.quick {
			r.Leaves[leaf] = append(r.Leaves[leaf], parquet.Value{}.Level(rep, def, leaf))
			continue
		}
		var null parquet.Value
		copyLevels(r.grow(leaf), (*valueBits)(unsafe.Pointer(&null)), rep, def, leaf)
	}
}

func (r *Rows) put(leaf int, v parquet.Value) {
	r.Leaves[leaf] = append(r.Leaves[leaf], v)
}

// keep copies b into r's buffer and returns the copy.
func (r *Rows) keep(b []byte) []byte {
	start := len(r.buf)
	r.buf = append(r.buf, b...)
	return r.buf[start:len(r.buf):len(r.buf)]
}

// bytesOf views a string's bytes without copying them: the Parquet writer
// (internal/parquetconv) copies a value's bytes into its pages or its
// dictionary and never writes to them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// AppendValues adds one row of typed values (as Schema.Parse returns them,
// in Schema.Columns order), with its feed id and line number when l has
// those columns and its undeclared fields as JSON text (or "") when l has
// _extra.
func (l *Layout) AppendValues(r *Rows, feedID string, line int64, vals []Value, extra string) {
	if l.FeedLeaf >= 0 {
		r.put(l.FeedLeaf, parquet.ByteArrayValue(bytesOf(feedID)).Level(0, 0, l.FeedLeaf))
		r.put(l.LineLeaf, parquet.Int64Value(line).Level(0, 0, l.LineLeaf))
	}
	if l.ExtraLeaf >= 0 {
		if extra == "" {
			r.put(l.ExtraLeaf, parquet.Value{}.Level(0, 0, l.ExtraLeaf))
		} else {
			r.put(l.ExtraLeaf, parquet.ByteArrayValue(bytesOf(extra)).Level(0, 1, l.ExtraLeaf))
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
	var pv parquet.Value
	switch n.typ {
	case tString, tJSON:
		pv = parquet.ByteArrayValue(bytesOf(v.S))
	case tInt64, tTimestamp, tDecimal:
		pv = parquet.Int64Value(v.I)
	case tDate, tDecimal32:
		pv = parquet.Int32Value(int32(v.I))
	case tFloat64:
		pv = parquet.DoubleValue(v.F)
	case tBool:
		pv = parquet.BooleanValue(v.B)
	}
	r.putLevel(n, rep, pv)
}
