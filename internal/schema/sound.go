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
	w.spellings, w.keys, w.dup = false, w.keys[:0], w.dup[:0]
	if !w.object(line, true) {
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
	// findDup: only duplicates count (see duplicateKey); empty and
	// reserved keys are walked past.
	findDup bool
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
		// the top level, -unknown extra keeps it in _extra.
		w.spellings = w.spellings || top
		return top
	}
	if top && Reserved(str(k)) && !w.findDup {
		return false
	}
	if s.folded != nil {
		fold := FoldName(string(k))
		if s.exact[string(k)] {
			w.dup = append(w.dup[:0], k...)
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
			w.dup = append(w.dup[:0], k...)
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
// key). It reports the first it meets, unless another problem every schema
// rejects (an empty nested key, a number out of range) comes first.
func duplicateKey(raw []byte, top bool) (string, bool) {
	w := walker{findDup: true}
	if top {
		w.object(raw, true)
	} else {
		w.value(raw)
	}
	return string(w.dup), w.dup != nil
}

func (w *walker) object(raw []byte, top bool) bool {
	keys := keySet{start: len(w.keys)}
	defer func() { w.keys = w.keys[:keys.start] }()
	ok := true
	if Fields(raw, func(k, v []byte) {
		ok = ok && w.add(&keys, k, top) && w.value(v)
	}) {
		return ok
	}
	// Escaped keys, or not JSON: decoded.
	w.keys, keys.folded, keys.exact = w.keys[:keys.start], nil, nil
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		tok, err := dec.Token()
		k, isKey := tok.(string)
		var v json.RawMessage
		if err != nil || !isKey || dec.Decode(&v) != nil || !w.add(&keys, []byte(k), top) || !w.value(v) {
			return false
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return false
	}
	return len(trimJSONSpace(raw[dec.InputOffset():])) == 0 // nothing after the object
}

func (w *walker) value(v []byte) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return false
	}
	switch c := v[0]; {
	case c == '{':
		return w.object(v, false)
	case c == '[':
		ok := true
		if Elements(v, func(e []byte) { ok = ok && w.value(e) }) {
			return ok
		}
		var items []json.RawMessage
		if json.Unmarshal(v, &items) != nil {
			return false
		}
		for _, it := range items {
			if !w.value(it) {
				return false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return numberInRange(v)
	}
	return true
}
