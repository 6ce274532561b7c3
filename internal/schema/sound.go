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
	// Valid JSON first (encoding/json's scanner: one pass, whatever the
	// depth); then the keys and numbers, in one more.
	if i := skipSpace(line, 0); i >= len(line) || line[i] != '{' || !json.Valid(line) {
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

// walker walks a line for Sound.
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

// walkLevel is an object or array walk is in.
type walkLevel struct {
	obj     bool
	wantKey bool // an object's next string is a key
	keys    keySet
}

// walk checks the keys and numbers of raw, a valid JSON value (with top,
// the line's object, whose own keys are top-level), in one pass whatever
// its depth: each key against the keys before it in its object (see add),
// each number against the range a number column holds.
func (w *walker) walk(raw []byte, top bool) bool {
	stack := w.stack[:0]
	defer func() { w.stack = stack[:0] }()
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '{':
			stack = append(stack, walkLevel{obj: true, wantKey: true, keys: keySet{start: len(w.keys)}})
			i++
		case c == '[':
			stack = append(stack, walkLevel{})
			i++
		case c == '}' || c == ']':
			if len(stack) == 0 {
				return false
			}
			if l := stack[len(stack)-1]; l.obj {
				w.keys = w.keys[:l.keys.start]
			}
			stack = stack[:len(stack)-1]
			i++
		case c == ',':
			if n := len(stack); n > 0 && stack[n-1].obj {
				stack[n-1].wantKey = true
			}
			i++
		case c == '"':
			end, escaped, ok := stringSpan(raw, i)
			if !ok {
				return false
			}
			if n := len(stack); n > 0 && stack[n-1].wantKey {
				l := &stack[n-1]
				l.wantKey = false
				k := raw[i+1 : end-1]
				if escaped {
					var s string
					if json.Unmarshal(raw[i:end], &s) != nil {
						return false
					}
					k = []byte(s)
				}
				if !w.add(&l.keys, k, top && n == 1) {
					return false
				}
			}
			i = end
		case c == '-' || c >= '0' && c <= '9':
			j := numberEnd(raw, i)
			if !numberInRange(raw[i:j]) {
				return false
			}
			i = j
		default:
			i++ // white space, ':', true, false, null
		}
	}
	return len(stack) == 0
}
