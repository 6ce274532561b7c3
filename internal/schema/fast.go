package schema

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Parser parses lines of one schema without decoding them into maps: it
// scans the object once and types each declared field in place. It handles
// the common, well-formed line; anything unusual (escapes in keys, duplicate
// or reserved keys, a missing required field, a value of the wrong type,
// non-UTF-8 bytes, …) goes to Schema.Parse, the reference, so both accept and
// reject exactly the same lines with the same reasons.
type Parser struct {
	s     *Schema
	index map[string]int
}

// NewParser compiles s. Only the drop policy for unknown fields has a fast
// path; other policies always use Schema.Parse.
func NewParser(s *Schema) *Parser {
	p := &Parser{s: s, index: make(map[string]int, len(s.Columns))}
	for i, c := range s.Columns {
		p.index[c.Name] = i
	}
	return p
}

// Parse is Schema.Parse without the fields map. vals, when long enough, is
// reused for the result.
func (p *Parser) Parse(line []byte, vals []Value) ([]Value, error) {
	if p.s.Unknown != UnknownReject {
		if v, ok := p.fast(line, vals); ok {
			return v, nil
		}
	}
	v, _, err := p.s.Parse(line)
	return v, err
}

func (p *Parser) fast(line []byte, vals []Value) ([]Value, bool) {
	n := len(p.s.Columns)
	if cap(vals) >= n {
		vals = vals[:n]
	} else {
		vals = make([]Value, n)
	}
	var seen [4]uint64 // up to 256 columns; wider schemas take the reference path
	if n > 256 {
		return nil, false
	}
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return nil, false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			// key
			if i >= len(line) || line[i] != '"' {
				return nil, false
			}
			end := i + 1
			for end < len(line) && line[end] != '"' && line[end] != '\\' && line[end] >= 0x20 {
				end++
			}
			if end >= len(line) || line[end] != '"' {
				return nil, false // escape or control character in a key
			}
			key := line[i+1 : end]
			for _, c := range key {
				if c >= 0x80 {
					if !utf8.Valid(key) {
						return nil, false
					}
					break
				}
			}
			i = skipSpace(line, end+1)
			if i >= len(line) || line[i] != ':' {
				return nil, false
			}
			i = skipSpace(line, i+1)
			col, known := p.index[string(key)]
			if !known && (string(key) == FeedIDField || string(key) == LineField) {
				return nil, false
			}
			vend, ok := valueEnd(line, i)
			if !ok {
				return nil, false
			}
			if !known {
				// A dropped field must still be valid JSON.
				raw := line[i:vend]
				switch raw[0] {
				case '"':
					if bytes.IndexByte(raw, '\\') >= 0 && !json.Valid(raw) {
						return nil, false // an invalid escape
					}
				case '{', '[':
					if !json.Valid(raw) {
						return nil, false
					}
				default:
					if string(raw) != "null" && !validScalar(raw) {
						return nil, false
					}
				}
			}
			if known {
				if seen[col/64]&(1<<(col%64)) != 0 {
					return nil, false // duplicate key: the reference keeps the last
				}
				seen[col/64] |= 1 << (col % 64)
				v, ok := p.typed(p.s.Columns[col], line[i:vend])
				if !ok {
					return nil, false
				}
				vals[col] = v
			}
			i = skipSpace(line, vend)
			if i < len(line) && line[i] == ',' {
				i = skipSpace(line, i+1)
				continue
			}
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			return nil, false
		}
	}
	if skipSpace(line, i) != len(line) {
		return nil, false
	}
	for c, col := range p.s.Columns {
		if seen[c/64]&(1<<(c%64)) == 0 {
			if !col.Nullable {
				return nil, false
			}
			vals[c] = Value{Null: true}
		}
	}
	return vals, true
}

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
	ascii := true
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return 0, false
			}
			return j + 1, true
		case c == '\\':
			j++
		case c < 0x20:
			return 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, false
}

func (p *Parser) typed(c Column, raw []byte) (Value, bool) {
	if string(raw) == "null" {
		return Value{Null: true}, c.Nullable
	}
	switch c.Type {
	case String:
		if raw[0] == '"' {
			if bytes.IndexByte(raw, '\\') < 0 {
				return Value{S: string(raw[1 : len(raw)-1])}, true
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return Value{}, false
			}
			return Value{S: s}, true
		}
		if c.AnyScalar && validScalar(raw) {
			return Value{S: string(raw)}, true
		}
	case Int64:
		if n, ok := parseInt(raw); ok {
			return Value{I: n}, true
		}
		if validNumber(raw) {
			f, err := strconv.ParseFloat(string(raw), 64)
			if err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
				return Value{I: int64(f)}, true
			}
		}
	case Float64:
		if validNumber(raw) {
			if n, ok := parseInt(raw); ok && n > -1<<53 && n < 1<<53 {
				return Value{F: float64(n)}, true
			}
			if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
				return Value{F: f}, true
			}
		}
	case Bool:
		switch string(raw) {
		case "true":
			return Value{B: true}, true
		case "false":
			return Value{B: false}, true
		}
	case Timestamp, Date:
		if raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			v, err := c.parseTime(string(raw[1 : len(raw)-1]))
			return v, err == nil
		}
	case Decimal:
		if validNumber(raw) || raw[0] == '"' {
			v, err := c.parse(raw)
			return v, err == nil
		}
	case JSON:
		if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || validScalar(raw) {
			if bytes.IndexAny(raw, " \t\r\n") < 0 {
				// Already compact; the reference's Compact would return it as is.
				if raw[0] != '{' && raw[0] != '[' || json.Valid(raw) {
					return Value{S: string(raw)}, true
				}
				return Value{}, false
			}
			var buf bytes.Buffer
			if json.Compact(&buf, raw) != nil {
				return Value{}, false
			}
			return Value{S: buf.String()}, true
		}
	}
	return Value{}, false
}

func validScalar(raw []byte) bool {
	s := string(raw)
	return s == "true" || s == "false" || validNumber(raw)
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
func Fields(line []byte, fn func(key string, raw []byte)) bool {
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
		if raw[0] != '"' && raw[0] != '{' && raw[0] != '[' && string(raw) != "null" && !validScalar(raw) {
			return false
		}
		if raw[0] == '"' && bytes.IndexByte(raw, '\\') >= 0 && !json.Valid(raw) {
			return false
		}
		fn(string(key), raw)
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
