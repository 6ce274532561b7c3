package convert

import (
	"bytes"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// maxInferDepth is how deeply inference follows nested objects and arrays;
// deeper values become json columns.
const maxInferDepth = 8

// maxDistinct caps the distinct strings counted per field.
const maxDistinct = 4096

// Infer derives a schema from sample lines: each top-level field becomes a
// nullable column, typed by the values seen and widened on conflict:
// bool + number → string; int64 + float64 → float64, unless an integer
// beyond ±2^53 (which float64 would round) was seen: string; an integer
// beyond int64 → string (its text, exact); a number or bool and a
// string → string; a timestamp string and another string → string; a field
// seen only as null → string. Objects become object columns (Parquet
// groups) of the union of the fields seen, arrays list columns of their
// elements' widened type (string when only empty arrays were seen); an
// object or array seen together with another kind of value, an object
// with no fields, or nesting deeper than 8 levels becomes json (its JSON
// text). A string column with at most one distinct value per 2 values seen
// (each value repeats, on average; and at most 4,096 distinct) is
// dictionary-encoded; in a row group where its dictionary passes
// parquetconv.DictionaryMaxBytes, it goes on in PLAIN.
// Columns and fields keep the order they first appear in; lines that every
// schema rejects (not JSON objects, reserved keys, empty keys below the
// top level, numbers out of range anywhere, …: see schema.Sound) are
// skipped, and lines with two spellings of one name in an object or an
// empty top-level key type and spell no column. A key that can be no column (an empty key,
// or one that differs only in case from a key seen before in its object:
// Snowflake names ignore case) is left out, and the parser rejects the
// lines that hold it (or keeps them in _extra; see schema.OddKey).
//
// A schema holds at most schema.MaxLeafColumns leaf columns: an object or
// list column that would pass the limit is json; a top-level key past it
// is no column, and is returned in cut (Convert keeps such keys in _extra
// or rejects their lines, by -unknown, and refuses to drop them).
func Infer(lines [][]byte) schema.Schema {
	s, _ := inferCut(lines)
	return s
}

// inferCut is Infer, and the top-level keys left out by the limit.
func inferCut(lines [][]byte) (schema.Schema, []string) {
	// Chunks of the sample are read in parallel and their findings merged in
	// order; the chunk size is fixed, so the result does not depend on the
	// number of cores.
	const chunk = 2048
	parts := make([]*inferred, (len(lines)+chunk-1)/chunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(parts)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(parts) {
					return
				}
				parts[i] = inferLines(lines[i*chunk : min((i+1)*chunk, len(lines))])
			}
		})
	}
	wg.Wait()
	root := &inferred{t: schema.Object}
	var unsound [][]byte
	for _, part := range parts {
		root.merge(part)
		unsound = append(unsound, part.unsound...)
	}
	// Lines with two spellings of a name do not type or spell a column,
	// but a name only they hold is still a column (typed by them), so that
	// such a line is rejected, not taken with both spellings dropped.
	root.adopt(learn(unsound, false))
	var s struct {
		schema.Schema
		cut []string
	}
	s.Unknown = schema.UnknownDrop
	budget := schema.MaxLeafColumns
	for _, k := range root.order {
		c := root.fields[k].column(k)
		n := schema.LeafColumns(c)
		if n > budget && (c.Type == schema.Object || c.Type == schema.List) {
			c = schema.Column{Name: k, Type: schema.JSON, Nullable: true} // kept whole, in one column
			n = 1
		}
		if n > budget {
			s.cut = append(s.cut, k)
			continue
		}
		budget -= n
		s.Columns = append(s.Columns, c)
	}
	return s.Schema, s.cut
}

// inferLines reads what the sound lines (see schema.Sound) say of their
// fields, and keeps those with two spellings of a name aside, in
// root.unsound; it skips the lines every schema rejects.
func inferLines(lines [][]byte) *inferred { return learn(lines, true) }

// learn reads what lines say of their fields; with soundOnly, as
// inferLines.
func learn(lines [][]byte, soundOnly bool) *inferred {
	root := &inferred{t: schema.Object}
	var sound schema.SoundChecker
	var fields []rawBytes // of the line, and of the objects in it
	for _, line := range lines {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		if soundOnly {
			switch sound.Check(line) {
			case schema.Unsound:
				continue // rejected whatever the schema
			case schema.TwoSpellings:
				// Its spelling of a name must not be the column: every
				// other line would be rejected.
				root.unsound = append(root.unsound, line)
				continue
			}
		}
		// Read whole first, so that an unusual line is not half added twice.
		var ok bool
		if fields, ok = plainFields(fields[:0], line); ok {
			for i := range fields {
				root.fieldBytes(fields[i].k).add(fields[i].raw, 1, &fields)
			}
			continue
		}
		// An unusual line (escaped keys, …): decode it, keeping key order.
		decoded, ok := objectFields(line)
		if !ok {
			continue
		}
		for _, f := range decoded {
			root.field(f.k).add(f.raw, 1, nil)
		}
	}
	return root
}

// rawBytes is a field of a plain object (see schema.Fields): its key and
// its value's raw bytes, both in the line.
type rawBytes struct{ k, raw []byte }

// plainFields appends the fields of obj to buf, or reports false when obj
// is not a plain well-formed object (see schema.Fields).
func plainFields(buf []rawBytes, obj []byte) ([]rawBytes, bool) {
	ok := schema.Fields(obj, func(k, raw []byte) { buf = append(buf, rawBytes{k, raw}) })
	return buf, ok
}

// merge adds what o found, in later lines, to n.
func (n *inferred) merge(o *inferred) {
	if n == nil {
		return // a key that is no column
	}
	t := widen(n.t, o.t)
	n.count += o.count
	for v := range o.distinct {
		if n.distinct == nil {
			n.distinct = map[uint64]struct{}{}
		}
		if len(n.distinct) > maxDistinct {
			break
		}
		n.distinct[v] = struct{}{}
	}
	switch {
	case t == schema.Object && o.t == schema.Object:
		for _, k := range o.order {
			n.field(k).merge(o.fields[k])
		}
	case t == schema.List && o.t == schema.List && o.items != nil:
		if n.items == nil {
			n.items = &inferred{}
		}
		n.items.merge(o.items)
	}
	n.t = t
}

// adopt adds to n, an object, the fields of o that n has no name for (by
// FoldName), and does the same in the objects both have; it changes no
// type n found.
func (n *inferred) adopt(o *inferred) {
	if n == nil || o == nil || n.t != schema.Object || o.t != schema.Object {
		return
	}
	for _, k := range o.order {
		if f := n.fields[k]; f != nil {
			f.adopt(o.fields[k])
			continue
		}
		if f := n.field(k); f != nil {
			*f = *o.fields[k]
		}
	}
}

// inferred is what the sample says of one field (or list element).
type inferred struct {
	unsound [][]byte    // the root's: sample lines that are not schema.Sound
	t       schema.Type // "" while only nulls were seen
	count   int         // non-null values seen
	// distinct holds the strings seen (at most maxDistinct+1) by their
	// 64-bit xxhash, which no value is copied for: two that shared one
	// would count once, a chance of about 1 in 10^12 among 4,096.
	distinct map[uint64]struct{}
	fields   map[string]*inferred // objects
	folded   map[string]bool      // their keys' schema.FoldName
	order    []string
	items    *inferred // lists
}

// fieldBytes is field, without allocating the key of a field seen before.
func (n *inferred) fieldBytes(k []byte) *inferred {
	if f := n.fields[string(k)]; f != nil {
		return f
	}
	return n.field(string(k))
}

// field is what the sample says of field k of object n; nil when k can be
// no column (schema.OddKey): an empty key, or a key that differs only in
// case from one seen before in the object, which stays the column.
func (n *inferred) field(k string) *inferred {
	if n.fields == nil {
		n.fields = map[string]*inferred{}
		n.folded = map[string]bool{}
	}
	f := n.fields[k]
	if f == nil {
		fold := schema.FoldName(k)
		if k == "" || n.folded[fold] {
			return nil
		}
		f = &inferred{}
		n.fields[k] = f
		n.folded[fold] = true
		n.order = append(n.order, k)
	}
	return f
}

// add adds what raw, a value of n, says. buf (nil for none) is scratch
// space for the fields of objects: each call appends to it and cuts it
// back to where it was.
func (n *inferred) add(raw []byte, depth int, buf *[]rawBytes) {
	if n == nil {
		return // a key that is no column
	}
	t := valueType(raw)
	if t == "" {
		return
	}
	n.count++
	if t == schema.Object || t == schema.List {
		if depth > maxInferDepth {
			t = schema.JSON
		}
	}
	n.t = widen(n.t, t)
	switch n.t {
	case schema.String, schema.Timestamp:
		if t == schema.String || t == schema.Timestamp {
			if n.distinct == nil {
				n.distinct = map[uint64]struct{}{}
			}
			if len(n.distinct) <= maxDistinct {
				n.distinct[xxhash.Sum64(raw)] = struct{}{}
			}
		}
	case schema.Object:
		// Read whole first, so that an unusual object is not half added twice.
		if buf == nil {
			buf = new([]rawBytes)
		}
		start := len(*buf)
		var ok bool
		if *buf, ok = plainFields(*buf, raw); ok {
			end := len(*buf)
			for i := start; i < end; i++ {
				f := (*buf)[i] // the calls below may move *buf
				n.fieldBytes(f.k).add(f.raw, depth+1, buf)
			}
			*buf = (*buf)[:start]
		} else {
			*buf = (*buf)[:start]
			fields, ok := objectFields(raw)
			if !ok {
				n.t = schema.JSON
				return
			}
			for _, f := range fields {
				n.field(f.k).add(f.raw, depth+1, buf)
			}
		}
	case schema.List:
		if n.items == nil {
			n.items = &inferred{}
		}
		if schema.Elements(raw, func([]byte) {}) {
			schema.Elements(raw, func(it []byte) { n.items.add(it, depth+1, buf) })
		} else {
			var items []json.RawMessage
			if json.Unmarshal(raw, &items) != nil {
				n.t = schema.JSON
				return
			}
			for _, it := range items {
				n.items.add(it, depth+1, buf)
			}
		}
	}
}

// column is the column the sample suggests for field name.
func (n *inferred) column(name string) schema.Column {
	c := schema.Column{Name: name, Type: n.t, Nullable: true}
	switch n.t {
	case "", bigInt:
		c.Type = schema.String // bigInt: the numbers' text, exactly
	case exactInt:
		c.Type = schema.Int64
	case schema.Object:
		if len(n.order) == 0 {
			c.Type = schema.JSON // only {} seen: a group needs fields
			break
		}
		for _, k := range n.order {
			c.Fields = append(c.Fields, n.fields[k].column(k))
		}
	case schema.List:
		items := &inferred{}
		if n.items != nil {
			items = n.items
		}
		it := items.column("element")
		c.Items = &it
	}
	if c.Type == schema.String {
		// A column widened to string takes any scalar as its JSON text. A
		// string column with few distinct values in the sample is
		// dictionary-encoded.
		c.AnyScalar = true
		// (Integers beyond int64 are ids more often than codes: no
		// dictionary; their distinct values were not counted.)
		c.Dictionary = n.t != bigInt && len(n.distinct) <= maxDistinct && len(n.distinct)*2 <= n.count
	}
	return c
}

type rawField struct {
	k   string
	raw json.RawMessage
}

// objectFields decodes a JSON object's fields in order.
func objectFields(b []byte) ([]rawField, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var fields []rawField
	for dec.More() {
		tok, err := dec.Token()
		k, isKey := tok.(string)
		var raw json.RawMessage
		if err != nil || !isKey || dec.Decode(&raw) != nil {
			return nil, false
		}
		fields = append(fields, rawField{k, raw})
	}
	return fields, true
}

// valueType is the type of one JSON value; "" for null.
func valueType(raw json.RawMessage) schema.Type {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case 'n':
		return ""
	case 't', 'f':
		return schema.Bool
	case '{':
		return schema.Object
	case '[':
		return schema.List
	case '"':
		if schema.IsTimestamp(raw) {
			return schema.Timestamp
		}
		return schema.String
	}
	if bytes.ContainsAny(raw, ".eE") {
		// An integer however written (1e30, 9007199254740993.0) that
		// float64 would round is kept exact, as written plainly.
		if len(raw) > 16 || bytes.ContainsAny(raw, "eE") {
			if rounds, beyond := schema.FloatRounds(raw); beyond {
				return bigInt
			} else if rounds {
				return exactInt
			}
		}
		return schema.Float64
	}
	switch intSize(raw) {
	case beyondInt64:
		return bigInt
	case beyond2p53:
		return exactInt
	}
	return schema.Int64
}

// Inference's own types, never a column's: integers that float64 would
// round (beyond ±2^53) and integers beyond int64. Neither is ever made a
// float64 column: exactInt stays int64 (string beside a fraction), bigInt
// is a string column, which keeps the number's text exactly.
const (
	exactInt schema.Type = "int64 beyond ±2^53"
	bigInt   schema.Type = "integer beyond int64"
)

const (
	within2p53 = iota
	beyond2p53
	beyondInt64
)

// intSize says whether the JSON integer raw (no fraction or exponent) is
// beyond ±2^53 and beyond int64, without parsing it.
func intSize(raw []byte) int {
	neg := raw[0] == '-'
	digits := raw
	if neg {
		digits = raw[1:]
	}
	beyond := func(limit string) bool {
		return len(digits) > len(limit) || len(digits) == len(limit) && string(digits) > limit
	}
	switch {
	case neg && beyond("9223372036854775808"), !neg && beyond("9223372036854775807"):
		return beyondInt64
	case beyond("9007199254740992"):
		return beyond2p53
	}
	return within2p53
}

func widen(a, b schema.Type) schema.Type {
	isInt := func(t schema.Type) bool { return t == schema.Int64 || t == exactInt || t == bigInt }
	switch {
	case a == b:
		return a
	case a == "":
		return b
	case b == "":
		return a
	case a == bigInt && isInt(b) || b == bigInt && isInt(a):
		return bigInt
	case a == exactInt && b == schema.Int64 || a == schema.Int64 && b == exactInt:
		return exactInt
	case (a == schema.Int64 && b == schema.Float64) || (a == schema.Float64 && b == schema.Int64):
		return schema.Float64
	case a == schema.JSON || b == schema.JSON || a == schema.Object || b == schema.Object || a == schema.List || b == schema.List:
		return schema.JSON
	}
	return schema.String
}
