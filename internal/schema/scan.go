package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the end of the JSON value at b[i:], checking strings
// (valid UTF-8, no raw control characters) and the nesting of objects and
// arrays; numbers and literals are checked when typed.
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, ok := stringEnd(b, j)
				if !ok {
					return 0, false
				}
				j = e - 1
			case '{', '[':
				depth++
				if depth > 1000 {
					return 0, false
				}
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n' {
		j++
	}
	return j, j > i
}

// stringEnd returns the index after the string starting at b[i] (a quote).
func stringEnd(b []byte, i int) (int, bool) {
	end, _, ok := stringSpan(b, i)
	return end, ok
}

// stringSpan is stringEnd, and says whether the string has escapes. It
// checks that the string is valid UTF-8 and holds no raw control
// characters; escapes are checked by whoever decodes them.
func stringSpan(b []byte, i int) (end int, escaped, ok bool) {
	ascii := true
	for j := i + 1; j < len(b); j++ {
		j = plainRun(b, j)
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return 0, false, false
			}
			return j + 1, escaped, true
		case c == '\\':
			escaped = true
			j++
		case c < 0x20:
			return 0, false, false
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, false, false
}

// trimJSONSpace is b without the JSON white space (space, tab, CR, LF)
// at its ends.
func trimJSONSpace(b []byte) []byte {
	b = b[skipSpace(b, 0):]
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// validEscapes reports whether every backslash in raw, a string whose
// span stringSpan has checked, starts a JSON escape: one of \" \\ \/ \b
// \f \n \r \t, or \u and four hex digits. It does not allocate.
func validEscapes(raw []byte) bool {
	for j := 0; j < len(raw); j++ {
		if raw[j] != '\\' {
			continue
		}
		if j+1 >= len(raw) {
			return false
		}
		switch raw[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j++
		case 'u':
			if _, ok := hex4(raw, j+2); !ok {
				return false
			}
			j += 5
		default:
			return false
		}
	}
	return true
}

// plainRun returns the index of the first byte at or after j that is a
// quote, a backslash, a control character or not ASCII, or a position
// near the end of b from which the caller checks byte by byte; it looks at
// eight bytes at a time.
func plainRun(b []byte, j int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for j+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[j:])
		q := x ^ 0x2222222222222222  // zero where '"'
		bs := x ^ 0x5C5C5C5C5C5C5C5C // zero where '\\'
		// The lowest flagged byte is exact: a false flag only ever sits above
		// a true one (a borrow moves up).
		t := ((q - ones) &^ q) | ((bs - ones) &^ bs) | (x - 0x2020202020202020) | x
		if t &= highs; t != 0 {
			return j + bits.TrailingZeros64(t)/8
		}
		j += 8
	}
	return j
}

// validScalar reports whether raw is true, false or a JSON number some
// number column holds (see numberInRange).
func validScalar(raw []byte) bool {
	s := string(raw)
	return s == "true" || s == "false" || validNumber(raw) && numberInRange(raw)
}

// numberInRange reports whether the JSON number raw is one a number column
// could hold: float64 neither overflows nor rounds it from nonzero to 0.
// Every schema rejects a line with a number out of range anywhere in it,
// even in a field it drops or keeps as JSON text.
func numberInRange(raw []byte) bool {
	if len(raw) <= 300 && bytes.IndexAny(raw, "eE") < 0 {
		return true
	}
	f, err := strconv.ParseFloat(str(raw), 64)
	return !errors.Is(err, strconv.ErrRange) && (f != 0 || zeroNumber(raw))
}

// nestedProblem finds in raw, a valid JSON value, what every schema
// rejects wherever it is: an empty key of an object ("key") or a number
// out of range ("number", and the number); "" when there is none.
func nestedProblem(raw []byte) (string, []byte) {
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '"':
			end, ok := stringEnd(raw, i)
			if !ok {
				return "", nil // not valid JSON: said elsewhere
			}
			if end == i+2 {
				if j := skipSpace(raw, end); j < len(raw) && raw[j] == ':' {
					return "key", nil
				}
			}
			i = end
		case c == '-' || c >= '0' && c <= '9':
			j := numberEnd(raw, i)
			if !numberInRange(raw[i:j]) {
				return "number", raw[i:j]
			}
			i = j
		default:
			i++
		}
	}
	return "", nil
}

// numberEnd is the end of the number that starts at raw[i].
func numberEnd(raw []byte, i int) int {
	for i < len(raw) && !delimits(raw[i]) {
		i++
	}
	return i
}

// parseInt parses a JSON integer (no sign but '-', no leading zeros).
func parseInt(b []byte) (int64, bool) {
	neg := false
	i := 0
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	if i >= len(b) || len(b)-i > 18 || (b[i] == '0' && len(b)-i > 1) {
		return 0, false
	}
	var n int64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// validNumber checks the JSON number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

// Fields calls fn with each top-level field of a JSON object line, in order,
// with the value's raw bytes. It reports false, having called fn for some
// fields perhaps, when the line is not a plain well-formed object (escapes in
// keys, invalid values); callers then use encoding/json.
func Fields(line []byte, fn func(key, raw []byte)) bool {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipSpace(line, i+1) == len(line)
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return false
		}
		end := i + 1
		for end < len(line) && line[end] != '"' && line[end] != '\\' && line[end] >= 0x20 {
			end++
		}
		if end >= len(line) || line[end] != '"' {
			return false
		}
		key := line[i+1 : end]
		i = skipSpace(line, end+1)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipSpace(line, i+1)
		vend, ok := valueEnd(line, i)
		if !ok {
			return false
		}
		raw := line[i:vend]
		if !plainValue(raw) {
			return false
		}
		fn(key, raw)
		i = skipSpace(line, vend)
		if i < len(line) && line[i] == ',' {
			i = skipSpace(line, i+1)
			continue
		}
		if i < len(line) && line[i] == '}' {
			return skipSpace(line, i+1) == len(line)
		}
		return false
	}
}

// plainValue checks a value valueEnd delimited as far as Fields and
// Elements need: scalars and escaped strings fully, objects and arrays by
// their nesting only (their contents are checked when they are walked).
func plainValue(v []byte) bool {
	switch v[0] {
	case '"':
		return bytes.IndexByte(v, '\\') < 0 || json.Valid(v)
	case '{', '[':
		return true
	}
	return string(v) == "null" || validScalar(v)
}

// Elements calls fn with each element of a JSON array, in order, with the
// element's raw bytes. It reports false, having called fn for some elements
// perhaps, when raw is not a plain well-formed array; callers then use
// encoding/json.
func Elements(raw []byte, fn func(elem []byte)) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return skipSpace(raw, i+1) == len(raw)
	}
	for {
		end, ok := valueEnd(raw, i)
		if !ok {
			return false
		}
		v := raw[i:end]
		if !plainValue(v) {
			return false
		}
		fn(v)
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == ']' {
			return skipSpace(raw, i+1) == len(raw)
		}
		return false
	}
}

// loneSurrogate returns the position (bytes from 1) of the first \u escape
// in b that is half a UTF-16 surrogate pair without its other half, or 0.
// encoding/json would decode it as U+FFFD, silently: a string (or key)
// would change, and two keys could become one. b is JSON, whose
// backslashes are all in strings.
func loneSurrogate(b []byte) int {
	for i := 0; i < len(b); {
		k := bytes.IndexByte(b[i:], '\\')
		if k < 0 {
			return 0
		}
		i += k
		if i+1 >= len(b) || b[i+1] != 'u' {
			i += 2
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			i += 2 // not an escape the decoder takes; it says so
			continue
		}
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo, ok := hex4(b, i+8); ok && lo >= 0xdc00 && lo < 0xe000 {
					i += 12
					continue
				}
			}
			return i + 1
		case r >= 0xdc00 && r < 0xe000:
			return i + 1
		}
		i += 6
	}
	return 0
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// surrogateError is the LineError for a line with a lone surrogate escape
// at byte at.
func surrogateError(at int) error {
	return reject("invalid \\u escape: lone surrogate at byte %d", at)
}
