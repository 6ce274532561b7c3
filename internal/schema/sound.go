package schema

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Sound says whether line could be a row under some schema. Whatever the
// columns, Parse rejects a line that is not valid UTF-8 or not one JSON
// object, that holds a lone surrogate escape, a reserved key (see
// Reserved), an empty key below the top level, a key given twice in one
// object (one of its values would be lost), or a number no number
// column holds (1e400, 1e-400), wherever they are (in a field the schema
// drops or keeps as JSON text too): Unsound. A line that holds two
// spellings of one name in an object (at any depth; see OddKey) is
// rejected when one of them is a column (or, at the top level with
// -unknown extra, keeps the other in _extra): TwoSpellings; so is a line
// with an empty key at the top level (rejected, or kept in _extra). Inference learns types and spellings only from
// Sound lines, so that a line that is rejected does not shape the schema.
func Sound(line []byte) Soundness {
	var c SoundChecker
	return c.Check(line)
}

// SoundChecker is Sound with buffers kept from line to line: it does not
// allocate for lines of plain objects of up to 32 keys each.
type SoundChecker struct{ w walker }

// Check is Sound(line).
func (c *SoundChecker) Check(line []byte) Soundness {
	if !utf8.Valid(line) || loneSurrogate(line) > 0 {
		return Unsound
	}
	w := &c.w
	w.spellings, w.keys, w.dup, w.dupFound = false, w.keys[:0], w.dup[:0], false
	if !w.walk(line, true) {
		return Unsound
	}
	if w.spellings {
		return TwoSpellings
	}
	return SoundLine
}

// Soundness is what Sound says of a line.
type Soundness uint8

// Sound's verdicts.
const (
	SoundLine    Soundness = iota // some schema takes it
	TwoSpellings                  // two spellings of one name in an object, or an empty top-level key, nothing worse
	Unsound                       // every schema rejects it
)

// walker walks a line for Sound, or a nested value for a Parser (see
// nestedSound).
type walker struct {
	spellings bool   // two spellings of one name seen
	dup       []byte // a key given twice in one object, once seen
	dupFound  bool   // dup is set (it may be the empty key)
	// findDup: only duplicates count (see duplicateKey); empty and
	// reserved keys are walked past.
	findDup bool
	stack   []walkLevel
	// keys is a stack of the keys of the objects being read, innermost
	// last: each object's keys from where it started.
	keys []walkedKey
}

// walkedKey is a key in a walker's stack, and whether it is all ASCII:
// two ASCII keys of different lengths are never two spellings of one name,
// which spares comparing most pairs.
type walkedKey struct {
	b     []byte
	ascii bool
}

// keySet is one object's keys in a walker's stack, to find two spellings
// of one name (FoldName) among them.
type keySet struct {
	start  int
	folded map[string]string // beyond 32 keys
	exact  map[string]bool   // beyond 32 keys, as given
}

// add reports whether k can be a key of the object beside the keys added
// before: not empty, not reserved at the top level, not one of them (a
// duplicate, noted in w.dup: every schema rejects it, as one of its values
// would be lost); another spelling of one of them is noted in w.
func (w *walker) add(s *keySet, k []byte, top bool) bool {
	if len(k) == 0 && !w.findDup {
		// An empty key below the top level is rejected by every schema; at
		// the top level, -unknown extra keeps it in _extra (once: twice is
		// a duplicate, below).
		if !top {
			return false
		}
		w.spellings = true
	}
	if top && Reserved(str(k)) && !w.findDup {
		return false
	}
	if s.folded != nil {
		fold := FoldName(string(k))
		if s.exact[string(k)] {
			w.dup, w.dupFound = append(w.dup[:0], k...), true
			return false
		}
		s.exact[string(k)] = true
		if _, ok := s.folded[fold]; ok {
			w.spellings = true
			return true
		}
		s.folded[fold] = string(k)
		return true
	}
	ascii := isASCII(k)
	for _, prev := range w.keys[s.start:] {
		if ascii && prev.ascii && len(prev.b) != len(k) {
			continue
		}
		if bytes.Equal(prev.b, k) {
			w.dup, w.dupFound = append(w.dup[:0], k...), true
			return false
		}
		if !w.spellings && sameName(prev.b, k) {
			w.spellings = true
		}
	}
	w.keys = append(w.keys, walkedKey{k, ascii})
	if len(w.keys)-s.start > 32 {
		s.folded = make(map[string]string, 64)
		s.exact = make(map[string]bool, 64)
		for i := len(w.keys) - 1; i >= s.start; i-- { // the first spelling stays
			s.folded[FoldName(string(w.keys[i].b))] = string(w.keys[i].b)
			s.exact[string(w.keys[i].b)] = true
		}
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// sameName reports whether a and b have the same FoldName.
func sameName(a, b []byte) bool {
	if !isASCII(a) || !isASCII(b) {
		return FoldName(string(a)) == FoldName(string(b))
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// duplicateKey finds a key given twice in one object of raw, a valid JSON
// value, at any depth (keys compared as decoded: "a" and "\u0061" are one
// key). It reports the first it meets, unless a number out of range comes
// first.
func duplicateKey(raw []byte, top bool) (string, bool) {
	w := walker{findDup: true}
	w.walk(raw, top)
	return string(w.dup), w.dupFound
}

// nestedSound reports whether raw, an object or array below the top level
// (a field the parser drops, or keeps as JSON text), is valid JSON that
// every schema takes wherever it stands: no empty key, no key twice in an
// object, no number out of range; one pass of the walker for what
// json.Valid, nestedProblem and duplicateKey each read the value for. Lone
// surrogate escapes are checked apart (loneSurrogate). The Parser keeps
// one walker for it, whose stacks keep their room from value to value.
func (w *walker) nestedSound(raw []byte) bool {
	w.spellings, w.dup, w.dupFound, w.findDup, w.keys = false, w.dup[:0], false, false, w.keys[:0]
	return w.walk(raw, false)
}

// walkLevel is an object or array walk is in.
type walkLevel struct {
	obj  bool
	keys keySet
}

// What walk expects next.
const (
	wantValue        = iota // a value
	wantValueOrClose        // a value or ']' (after '[')
	wantKeyOrClose          // a key or '}' (after '{')
	wantKey                 // a key (after ',' in an object)
	wantColon               // ':' (after a key)
	wantCommaOrClose        // ',' or the closing bracket (after a value)
	wantEnd                 // nothing but white space (after the value)
)

// maxWalkDepth is encoding/json's nesting limit, which the reference
// parser has: a line nested deeper is invalid JSON to both.
const maxWalkDepth = 10000

// walk reports whether raw is one valid JSON value (with top, an object:
// the line's, whose own keys are top-level) whose keys and numbers some
// schema takes: each key checked against the keys before it in its object
// (see add), each number against the range a number column holds. One
// pass, whatever the depth, with no allocation for plain lines.
func (w *walker) walk(raw []byte, top bool) bool {
	stack := w.stack[:0]
	defer func() { w.stack = stack[:0] }()
	want := wantValue
	i := skipSpace(raw, 0)
	if top && (i >= len(raw) || raw[i] != '{') {
		return false
	}
	for ; i < len(raw); i = skipSpace(raw, i) {
		c := raw[i]
		switch want {
		case wantValue, wantValueOrClose:
			switch {
			case c == ']' && want == wantValueOrClose:
				stack = stack[:len(stack)-1]
				want = afterValue(len(stack))
				i++
			case c == '{' || c == '[':
				if len(stack) >= maxWalkDepth {
					return false
				}
				if c == '{' {
					stack = append(stack, walkLevel{obj: true, keys: keySet{start: len(w.keys)}})
					want = wantKeyOrClose
				} else {
					stack = append(stack, walkLevel{})
					want = wantValueOrClose
				}
				i++
			case c == '"':
				end, escaped, ok := stringSpan(raw, i)
				if !ok || escaped && !validEscapes(raw[i:end]) {
					return false
				}
				want, i = afterValue(len(stack)), end
			case c == '-' || c >= '0' && c <= '9':
				j := numberEnd(raw, i)
				if !validNumber(raw[i:j]) || !numberInRange(raw[i:j]) {
					return false
				}
				want, i = afterValue(len(stack)), j
			default:
				n := literal(raw[i:])
				if n == 0 {
					return false
				}
				want, i = afterValue(len(stack)), i+n
			}
		case wantKeyOrClose, wantKey:
			if c == '}' && want == wantKeyOrClose {
				w.keys = w.keys[:stack[len(stack)-1].keys.start]
				stack = stack[:len(stack)-1]
				want = afterValue(len(stack))
				i++
				break
			}
			if c != '"' {
				return false
			}
			end, escaped, ok := stringSpan(raw, i)
			if !ok || escaped && !validEscapes(raw[i:end]) {
				return false
			}
			k := raw[i+1 : end-1]
			if escaped {
				var s string
				if json.Unmarshal(raw[i:end], &s) != nil {
					return false
				}
				k = []byte(s)
			}
			l := &stack[len(stack)-1]
			if !w.add(&l.keys, k, top && len(stack) == 1) {
				return false
			}
			want, i = wantColon, end
		case wantColon:
			if c != ':' {
				return false
			}
			want = wantValue
			i++
		case wantCommaOrClose:
			l := stack[len(stack)-1]
			switch {
			case c == ',' && l.obj:
				want = wantKey
			case c == ',':
				want = wantValue
			case c == '}' && l.obj, c == ']' && !l.obj:
				if l.obj {
					w.keys = w.keys[:l.keys.start]
				}
				stack = stack[:len(stack)-1]
				want = afterValue(len(stack))
			default:
				return false
			}
			i++
		default: // wantEnd
			return false
		}
	}
	return want == wantEnd
}

// afterValue is what walk expects after a value at the given depth.
func afterValue(depth int) int {
	if depth == 0 {
		return wantEnd
	}
	return wantCommaOrClose
}

// literal is the length of the JSON literal (true, false, null) that b
// starts with, or 0.
func literal(b []byte) int {
	for _, lit := range []string{"true", "false", "null"} {
		if len(b) >= len(lit) && string(b[:len(lit)]) == lit {
			return len(lit)
		}
	}
	return 0
}
