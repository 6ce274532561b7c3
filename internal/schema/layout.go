package schema

import (
	"fmt"
	"unicode"
	"unicode/utf8"

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
