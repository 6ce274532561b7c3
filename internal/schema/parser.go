package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// Parser turns NDJSON lines into rows of a Layout. Its fast path scans a
// line once and types each declared field in place, straight into the
// leaf columns; anything unusual (escapes in keys, duplicate or reserved
// keys, a missing required field, a value of the wrong type, non-UTF-8
// bytes, …) goes to Schema.Parse, the reference, so both accept and reject
// exactly the same lines with the same reasons. A Parser is not safe for
// concurrent use; make one per goroutine.
type Parser struct {
	l       *Layout
	scratch *Rows
	// order holds, per object of the layout, the fields of the previous
	// line by position: a guess at this line's, checked byte for byte.
	order [][]int
	// tmpl holds, per object, the exact key sequence of a recent compact
	// line: a line laid out the same is read without scanning its keys.
	tmpl []template
	// undeclared holds, per object, the undeclared key found at each
	// position of a line, once checked (see knownUndeclared).
	undeclared [][][]byte
	// keysSeen is a stack of the undeclared keys of the objects being
	// read, each object's from where it started: one given twice sends the
	// line to the reference, which rejects it.
	keysSeen [][]byte
	// noTmpl is set while a line is re-read after its template failed;
	// usedTmpl records that the line being read used one.
	noTmpl, usedTmpl bool
	// walk checks the nested values the line drops or keeps as JSON text
	// (see nestedSound).
	walk walker
}

// NewParser returns a Parser of lines into rows of l.
func NewParser(l *Layout) *Parser {
	return &Parser{l: l, order: make([][]int, l.objects+1), tmpl: make([]template, l.objects+1), undeclared: make([][][]byte, l.objects+1)}
}

// ErrFeedColumns is returned by AppendLine for a layout with feed columns:
// those rows come from AppendValues.
var ErrFeedColumns = errors.New("schema: AppendLine on a layout with _feed_id and _line; use AppendValues")

// AppendLine adds line to r as one row, or returns a *LineError saying why
// the line is rejected and leaves r as it was.
func (p *Parser) AppendLine(r *Rows, line []byte) error {
	l := p.l
	if l.FeedLeaf >= 0 {
		return ErrFeedColumns
	}
	if l.ExtraLeaf < 0 && l.s.Unknown != UnknownReject {
		if i := skipSpace(line, 0); i < len(line) && line[i] == '{' {
			r.mark()
			if p.fastLine(r, line, i) {
				r.N++
				return nil
			}
			r.rollback()
		}
	}
	vals, fields, err := l.s.Parse(line)
	if err != nil {
		return err
	}
	extra := ""
	if l.ExtraLeaf >= 0 {
		extra = extraJSON(fields, l.s)
	}
	l.AppendValues(r, "", 0, vals, extra)
	return nil
}

// ErrNoFeedColumns is returned by AppendRecord for a layout without feed
// columns.
var ErrNoFeedColumns = errors.New("schema: AppendRecord on a layout without _feed_id and _line")

// AppendRecord adds the staged record rec of feed feedID, line number line,
// as one row with those in the feed columns, or returns a *LineError (the
// reason ParseRecord gives) and leaves r as it was. The caller has read
// feedID and line from the record's start, exactly
// {"_feed_id":"<feedID>","_line":<line> (a feedID that needs no escape),
// and at is where the record goes on: at its ',' before the other fields,
// or at its closing '}'. With at <= 0 (a record laid out otherwise) the
// record goes to ParseRecord, whose _feed_id and _line must then be feedID
// and line. The fast path types the other fields as AppendLine does;
// whatever it declines goes to ParseRecord. Undeclared fields are not kept
// in _extra.
func (p *Parser) AppendRecord(r *Rows, rec []byte, feedID string, line int64, at int) error {
	l := p.l
	if l.FeedLeaf < 0 {
		return ErrNoFeedColumns
	}
	if at > 0 && at < len(rec) && l.ExtraLeaf < 0 && l.s.Unknown != UnknownReject {
		// The fields are read from after the byte at open: the ',' before
		// them or, for none, the last digit of _line.
		open := at
		switch {
		case rec[at] == '}':
			open = at - 1
		case rec[at] == ',':
			if j := skipSpace(rec, at+1); j < len(rec) && rec[j] == '}' {
				open = -1 // "," then "}" is not JSON
			}
		default:
			open = -1
		}
		if open >= 0 {
			r.mark()
			if p.fastLine(r, rec, open) {
				r.putFeed(l, feedID, line)
				r.N++
				return nil
			}
			r.rollback()
		}
	}
	gotFeed, gotLine, vals, err := l.s.ParseRecord(rec)
	if err != nil {
		return err
	}
	if gotFeed != feedID || gotLine != line {
		return reject("%s or %s given twice", FeedIDField, LineField)
	}
	l.AppendValues(r, feedID, line, vals, "")
	return nil
}

// Check reports whether line is a valid row: nil, or a *LineError.
func (p *Parser) Check(line []byte) error {
	if p.scratch == nil {
		p.scratch = NewRows(p.l)
	}
	defer p.scratch.Reset()
	if p.l.FeedLeaf >= 0 {
		_, _, err := p.l.s.Parse(line)
		return err
	}
	return p.AppendLine(p.scratch, line)
}

// extraJSON is the object of fields s does not declare, or "".
func extraJSON(fields map[string]json.RawMessage, s *Schema) string {
	known := make(map[string]bool, len(s.Columns))
	for _, c := range s.Columns {
		known[c.Name] = true
	}
	extra := map[string]json.RawMessage{}
	for k, v := range fields {
		if !known[k] {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return ""
	}
	// As given: json.Marshal would write <, > and & as \u003c, \u003e
	// and \u0026 (for HTML), which a reader of _extra would see.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(extra) // raw messages of a parsed line: valid
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// fastLine reads the object whose fields start after line[open] (its '{')
// and end the line by the fast path into r (marked), with templates, and
// again without them if one misled.
func (p *Parser) fastLine(r *Rows, line []byte, open int) bool {
	if p.fast(r, line, open) {
		return true
	}
	if !p.usedTmpl {
		return false
	}
	r.rollback()
	p.noTmpl = true
	defer func() { p.noTmpl = false }()
	return p.fast(r, line, open)
}

func (p *Parser) fast(r *Rows, line []byte, open int) bool {
	p.usedTmpl, p.keysSeen = false, p.keysSeen[:0]
	end, ok := p.object(r, p.l.top, p.l.index, 0, line, open, 0)
	return ok && skipSpace(line, end) == len(line)
}

// object scans the object whose fields start after line[i] (its '{'), adding the values of the
// declared fields nodes (by name in index) at repetition level rep, and
// nulls for the ones missing. obj numbers the object (0: the line's own).
func (p *Parser) object(r *Rows, nodes []*node, index map[string]int, obj int, line []byte, i, rep int) (int, bool) {
	var seen [4]uint64 // up to 256 fields; wider objects take the reference path
	if len(nodes) > 256 {
		return 0, false
	}
	if t := &p.tmpl[obj]; t.ok && !p.noTmpl {
		p.usedTmpl = true
		return p.objectByTemplate(r, nodes, t, line, i, rep)
	}
	order := p.order[obj]
	npos := 0
	compact := true // no white space between the object's keys and punctuation
	seenFrom := len(p.keysSeen)
	i++
	if j := skipSpace(line, i); j != i {
		i, compact = j, false
	}
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for pos := 0; ; pos++ {
			if i >= len(line) || line[i] != '"' {
				return 0, false
			}
			col, end := -1, -1
			if pos < len(order) && order[pos] >= 0 {
				// Most lines list their fields in the same order.
				if n := nodes[order[pos]]; n.plain {
					e := i + 1 + len(n.c.Name)
					if e < len(line) && line[e] == '"' && string(line[i+1:e]) == n.c.Name {
						col, end = order[pos], e
					}
				}
			}
			if end < 0 {
				end = i + 1
				for end < len(line) && line[end] != '"' && line[end] != '\\' && line[end] >= 0x20 {
					end++
				}
				if end >= len(line) || line[end] != '"' {
					return 0, false // escape or control character in a key
				}
				key := line[i+1 : end]
				for _, c := range key {
					if c >= 0x80 {
						if !utf8.Valid(key) {
							return 0, false
						}
						break
					}
				}
				if c, ok := index[string(key)]; ok {
					col = c
				} else if p.knownUndeclared(obj, pos, key) {
					// As in the previous line: checked then.
				} else if obj == 0 && Reserved(str(key)) {
					return 0, false
				} else if p.l.oddKey(obj, key) {
					return 0, false // the reference rejects it
				} else {
					p.rememberUndeclared(obj, pos, key)
				}
				if col < 0 {
					// An undeclared key given twice: the reference rejects
					// the line (a value would be lost); it also checks
					// objects of many undeclared keys.
					keys := p.keysSeen[seenFrom:]
					if len(keys) >= maxKeysSeen {
						return 0, false
					}
					for _, k := range keys {
						if string(k) == string(key) {
							return 0, false
						}
					}
					p.keysSeen = append(p.keysSeen, key)
				}
			}
			if pos < len(order) {
				order[pos] = col
			} else if pos < 1024 {
				order = append(order, col)
				p.order[obj] = order
			}
			npos = pos + 1
			i = end + 1
			if j := skipSpace(line, i); j != i {
				i, compact = j, false
			}
			if i >= len(line) || line[i] != ':' {
				return 0, false
			}
			i++
			if j := skipSpace(line, i); j != i {
				i, compact = j, false
			}
			var vend int
			if col < 0 {
				var ok bool
				if vend, ok = p.skipValue(line, i); !ok {
					return 0, false
				}
			} else {
				if seen[col/64]&(1<<(col%64)) != 0 {
					return 0, false // duplicate key: the reference rejects it
				}
				seen[col/64] |= 1 << (col % 64)
				var ok bool
				if vend, ok = p.value(r, nodes[col], line, i, rep); !ok {
					return 0, false
				}
			}
			i = vend
			if j := skipSpace(line, i); j != i {
				i, compact = j, false
			}
			if i < len(line) && line[i] == ',' {
				i++
				if j := skipSpace(line, i); j != i {
					i, compact = j, false
				}
				continue
			}
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			return 0, false
		}
	}
	for c, n := range nodes {
		if seen[c/64]&(1<<(c%64)) == 0 {
			if !n.c.Nullable {
				return 0, false
			}
			r.nulls(n, rep, n.nullDef)
		}
	}
	if t := &p.tmpl[obj]; compact && !t.ok && t.misses < maxTemplateMisses && npos <= len(order) {
		t.learn(nodes, order[:npos])
	}
	p.keysSeen = p.keysSeen[:seenFrom]
	return i, true
}

// maxKeysSeen bounds the undeclared keys of one object the fast path
// compares pairwise for duplicates; an object with more goes to the
// reference.
const maxKeysSeen = 64

// knownUndeclared reports whether key, an undeclared key at position pos
// of object obj, is the one found there in an earlier line and checked
// then (not reserved, not odd): most lines repeat their keys, and folding
// a key each time is the slow part of the check.
func (p *Parser) knownUndeclared(obj, pos int, key []byte) bool {
	u := p.undeclared[obj]
	return pos < len(u) && len(u[pos]) > 0 && string(u[pos]) == string(key)
}

// rememberUndeclared notes key, checked, as the undeclared key at position
// pos of object obj.
func (p *Parser) rememberUndeclared(obj, pos int, key []byte) {
	if pos >= 1024 {
		return
	}
	u := p.undeclared[obj]
	for len(u) <= pos {
		u = append(u, nil)
	}
	u[pos] = append(u[pos][:0], key...)
	p.undeclared[obj] = u
}

// maxTemplateMisses is how often an object's template may fail before the
// parser stops learning one (a feed whose lines vary in layout).
const maxTemplateMisses = 8

// template is the layout of an object in a recent line: its keys in order,
// each written "name": with nothing between, and the fields it lacked.
type template struct {
	ok      bool
	keys    []templateKey
	missing []int // fields not in keys, all nullable
	misses  int
}

type templateKey struct {
	col    int
	prefix string // "name":
}

// learn sets t from a compact object read field by field: cols are its
// fields in order (-1 for an undeclared one). Objects with undeclared
// fields or names that need escapes are not learned.
func (t *template) learn(nodes []*node, cols []int) {
	in := make([]bool, len(nodes))
	for _, c := range cols {
		if c < 0 || !nodes[c].plain || in[c] {
			return
		}
		in[c] = true
	}
	t.keys = t.keys[:0]
	for _, c := range cols {
		t.keys = append(t.keys, templateKey{col: c, prefix: `"` + nodes[c].c.Name + `":`})
	}
	t.missing = t.missing[:0]
	for c := range nodes {
		if !in[c] {
			t.missing = append(t.missing, c)
		}
	}
	t.ok = true
}

// objectByTemplate reads the object at line[i] (a '{') if its keys are
// exactly t's, in order, with nothing between the punctuation; otherwise it
// reports false (and the line is read again without templates).
func (p *Parser) objectByTemplate(r *Rows, nodes []*node, t *template, line []byte, i, rep int) (int, bool) {
	i++
	for k, key := range t.keys {
		if k > 0 {
			if i >= len(line) || line[i] != ',' {
				return p.templateMiss(t)
			}
			i++
		}
		if len(line)-i < len(key.prefix) || string(line[i:i+len(key.prefix)]) != key.prefix {
			return p.templateMiss(t)
		}
		end, ok := p.value(r, nodes[key.col], line, i+len(key.prefix), rep)
		if !ok {
			return p.templateMiss(t)
		}
		i = end
	}
	if i >= len(line) || line[i] != '}' {
		return p.templateMiss(t)
	}
	for _, c := range t.missing {
		r.nulls(nodes[c], rep, nodes[c].nullDef)
	}
	return i + 1, true
}

// templateMiss forgets t, to be learned again from a later line.
func (p *Parser) templateMiss(t *template) (int, bool) {
	t.ok = false
	t.misses++
	return 0, false
}

// skipValue returns the end of a field's value that the schema drops; it
// must still be valid JSON.
func (p *Parser) skipValue(line []byte, i int) (int, bool) {
	vend, ok := valueEnd(line, i)
	if !ok {
		return 0, false
	}
	raw := line[i:vend]
	switch raw[0] {
	case '"':
		if bytes.IndexByte(raw, '\\') >= 0 && (!json.Valid(raw) || loneSurrogate(raw) > 0) {
			return 0, false // an invalid escape
		}
	case '{', '[':
		if loneSurrogate(raw) > 0 || !p.walk.nestedSound(raw) {
			return 0, false // the reference rejects it, or decides
		}
	default:
		if string(raw) != "null" && !validScalar(raw) {
			return 0, false
		}
	}
	return vend, true
}

// value adds the value at line[i] as n's at repetition level rep.
func (p *Parser) value(r *Rows, n *node, line []byte, i, rep int) (int, bool) {
	if i >= len(line) {
		return 0, false
	}
	if line[i] == 'n' {
		vend, ok := valueEnd(line, i)
		if !ok || string(line[i:vend]) != "null" || !n.c.Nullable {
			return 0, false
		}
		r.nulls(n, rep, n.nullDef)
		return vend, true
	}
	switch n.kind {
	case objectNode:
		if line[i] != '{' {
			return 0, false
		}
		return p.object(r, n.fields, n.index, n.obj, line, i, rep)
	case listNode:
		if line[i] != '[' {
			return 0, false
		}
		j := skipSpace(line, i+1)
		if j < len(line) && line[j] == ']' {
			r.nulls(n, rep, n.def)
			return j + 1, true
		}
		for {
			var ok bool
			if j, ok = p.value(r, n.items, line, j, rep); !ok {
				return 0, false
			}
			rep = n.rep
			j = skipSpace(line, j)
			if j < len(line) && line[j] == ',' {
				j = skipSpace(line, j+1)
				continue
			}
			if j < len(line) && line[j] == ']' {
				return j + 1, true
			}
			return 0, false
		}
	}
	if n.typ == tBool {
		// A boolean is read in place, not measured and then compared.
		if end, b, ok := boolAt(line, i); ok {
			r.putBool(n, rep, b)
			return end, true
		}
	}
	if c := line[i]; c == '-' || c >= '0' && c <= '9' {
		// Numbers are typed as they are scanned, in the common cases.
		switch n.typ {
		case tFloat64:
			if f, end, ok := floatAt(line, i); ok && (end == len(line) || delimits(line[end])) {
				r.putDouble(n, rep, f)
				return end, true
			}
		case tInt64:
			if v, end, ok := intAt(line, i); ok && (end == len(line) || delimits(line[end])) {
				r.putInt64(n, rep, v)
				return end, true
			}
		}
	}
	if line[i] == '"' && (n.typ == tString || n.typ == tTimestamp || n.typ == tDate) {
		// A string without escapes needs no second look.
		end, escaped, ok := stringSpan(line, i)
		if !ok {
			return 0, false
		}
		if !escaped {
			s := line[i+1 : end-1]
			switch n.typ {
			case tString:
				r.putBytes(n, rep, s)
			case tTimestamp:
				us, ok := rfc3339Micros(s)
				if !ok || len(n.c.Formats) > 0 {
					return p.scalarAt(r, n, line, i, end, rep)
				}
				r.putInt64(n, rep, us)
			case tDate:
				d, ok := isoDate(s)
				if !ok || len(n.c.Formats) > 0 {
					return p.scalarAt(r, n, line, i, end, rep)
				}
				r.putInt32(n, rep, int32(d))
			}
			return end, true
		}
		return p.scalarAt(r, n, line, i, end, rep)
	}
	vend, ok := valueEnd(line, i)
	if !ok {
		return 0, false
	}
	return p.scalarAt(r, n, line, i, vend, rep)
}

// boolAt reads the literal true or false at line[i], followed by the line's
// end or a delimiter (the bytes at which valueEnd ends a literal); anything
// else is left to the generic path (valueEnd, scalarAt), which refuses it
// and so sends the line to the reference parser, whose reject it is.
func boolAt(line []byte, i int) (end int, b, ok bool) {
	switch {
	case bytes.HasPrefix(line[i:], []byte("true")):
		end, b = i+4, true
	case bytes.HasPrefix(line[i:], []byte("false")):
		end = i + 5
	default:
		return 0, false, false
	}
	return end, b, end == len(line) || delimits(line[end])
}

// scalarAt adds line[i:end], a value of scalar node n, at repetition level rep.
func (p *Parser) scalarAt(r *Rows, n *node, line []byte, i, end, rep int) (int, bool) {
	v, ok := p.scalar(n, line[i:end])
	if !ok {
		return 0, false
	}
	r.putValue(n, rep, v)
	return end, true
}

// str views b as a string without copying; only for calls that do not keep it.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// scalar types raw (not null) as c's value, or reports false when the
// reference must decide. A byte array may point into raw or into a new
// string: it is copied into the Rows at once.
func (p *Parser) scalar(n *node, raw []byte) (parquet.Value, bool) {
	c := n.c
	switch n.typ {
	case tString:
		if raw[0] == '"' {
			if bytes.IndexByte(raw, '\\') < 0 {
				return parquet.ByteArrayValue(raw[1 : len(raw)-1]), true
			}
			var s string
			if json.Unmarshal(raw, &s) != nil || loneSurrogate(raw) > 0 {
				return parquet.Value{}, false
			}
			return parquet.ByteArrayValue(bytesOf(s)), true
		}
		if c.AnyScalar && validScalar(raw) {
			return parquet.ByteArrayValue(raw), true
		}
	case tInt64:
		if n, ok := parseInt(raw); ok {
			return parquet.Int64Value(n), true
		}
		if validNumber(raw) {
			// Exactly an integer, on its text (1.0, 1e3, 9007199254740993e0);
			// anything else is the reference's to reject.
			if v, kind := intText(raw); kind == intExact {
				return parquet.Int64Value(v), true
			}
		}
	case tFloat64:
		if f, ok := parseFloatFast(raw); ok {
			return parquet.DoubleValue(f), true
		}
		if validNumber(raw) {
			// Underflow to 0 is the reference's to reject.
			// So is an integer float64 would round.
			if f, err := strconv.ParseFloat(str(raw), 64); err == nil && (f != 0 || zeroNumber(raw)) && floatHoldsText(raw, f) {
				return parquet.DoubleValue(f), true
			}
		}
	case tBool:
		switch string(raw) {
		case "true":
			return parquet.BooleanValue(true), true
		case "false":
			return parquet.BooleanValue(false), true
		}
	case tTimestamp:
		if raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			s := raw[1 : len(raw)-1]
			if len(c.Formats) == 0 {
				if us, ok := rfc3339Micros(s); ok {
					return parquet.Int64Value(us), true
				}
			}
			v, err := c.parseTime(string(s))
			return parquet.Int64Value(v.I), err == nil
		}
	case tDate:
		if raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			s := raw[1 : len(raw)-1]
			if len(c.Formats) == 0 {
				if d, ok := isoDate(s); ok {
					return parquet.Int32Value(int32(d)), true
				}
			}
			v, err := c.parseTime(string(s))
			return parquet.Int32Value(int32(v.I)), err == nil
		}
	case tDecimal, tDecimal32:
		if validNumber(raw) || raw[0] == '"' {
			v, err := c.parse(raw, "")
			if n.typ == tDecimal32 {
				return parquet.Int32Value(int32(v.I)), err == nil // at most 9 digits
			}
			return parquet.Int64Value(v.I), err == nil
		}
	case tJSON:
		if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || validScalar(raw) {
			if loneSurrogate(raw) > 0 {
				return parquet.Value{}, false
			}
			if (raw[0] == '{' || raw[0] == '[') && !p.walk.nestedSound(raw) {
				return parquet.Value{}, false // the reference rejects it, or decides
			}
			if bytes.IndexAny(raw, " \t\r\n") < 0 {
				// Already compact; the reference's Compact would return it as is.
				// A string's escapes are checked here: stringSpan skips them;
				// objects and arrays were validated by nestedSound.
				if raw[0] != '"' || validEscapes(raw) {
					return parquet.ByteArrayValue(raw), true
				}
				return parquet.Value{}, false
			}
			var buf bytes.Buffer
			if json.Compact(&buf, raw) != nil {
				return parquet.Value{}, false
			}
			return parquet.ByteArrayValue(buf.Bytes()), true
		}
	}
	return parquet.Value{}, false
}
