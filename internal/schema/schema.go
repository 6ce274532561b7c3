// Package schema holds a feed's declared columns and turns one NDJSON line
// into typed values, or into a reason the line is rejected. PutToKinesis uses
// it to quarantine bad lines before anything is sent; the local converter uses
// it to write Parquet.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is a column's logical type.
type Type string

// The column types a pipeline may declare.
const (
	String    Type = "string"
	Int64     Type = "int64"
	Float64   Type = "float64"
	Bool      Type = "bool"
	Timestamp Type = "timestamp" // UTC, microsecond precision
	Date      Type = "date"
	JSON      Type = "json"    // any JSON value, kept as its JSON text
	Decimal   Type = "decimal" // exact, with the column's precision (≤ 18) and scale
)

// Unknown-field policies.
const (
	UnknownDrop   = "drop"   // ignore fields the schema does not declare
	UnknownReject = "reject" // quarantine lines that have any
)

// Reserved field names feedpipe adds to every record.
const (
	FeedIDField = "_feed_id"
	LineField   = "_line"
)

// Column is one declared column.
type Column struct {
	Name     string   `toml:"name" json:"name"`
	Type     Type     `toml:"type" json:"type"`
	Nullable bool     `toml:"nullable" json:"nullable"`
	Formats  []string `toml:"formats" json:"formats,omitempty"` // timestamp/date layouts (Go reference time); default RFC 3339 / 2006-01-02
	// AnyScalar lets a string column take numbers and booleans as their JSON
	// text (inferred columns widened to string); objects and arrays are still rejected.
	AnyScalar bool `toml:"any_scalar" json:"any_scalar,omitempty"`
	// Dictionary asks for dictionary encoding in Parquet: for string columns
	// with few distinct values (countries, currencies, names).
	Dictionary bool `toml:"dictionary" json:"dictionary,omitempty"`
	// Precision and Scale of a decimal column: at most Precision digits in
	// all, Scale of them after the point.
	Precision int `toml:"precision" json:"precision,omitempty"`
	Scale     int `toml:"scale" json:"scale,omitempty"`
}

// Schema is a feed's columns and its unknown-field policy.
type Schema struct {
	Columns []Column `toml:"columns" json:"columns"`
	Unknown string   `toml:"unknown_fields" json:"unknown_fields"`
}

// Validate checks the schema itself, naming the column at fault.
func (s *Schema) Validate() error {
	if len(s.Columns) == 0 {
		return errors.New("no columns declared; add [[pipeline.schema.columns]] entries with name and type")
	}
	seen := map[string]bool{}
	for i, c := range s.Columns {
		switch {
		case c.Name == "":
			return fmt.Errorf("column %d has no name", i+1)
		case c.Name == FeedIDField || c.Name == LineField:
			return fmt.Errorf("column %q is reserved: feedpipe adds it to every record", c.Name)
		case seen[strings.ToLower(c.Name)]:
			return fmt.Errorf("column %q is declared twice (names are case-insensitive in Snowflake)", c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		switch c.Type {
		case String, Int64, Float64, Bool, Timestamp, Date, JSON:
		case Decimal:
			if c.Precision < 1 || c.Precision > 18 || c.Scale < 0 || c.Scale > c.Precision {
				return fmt.Errorf("column %q: decimal needs 1 <= precision <= 18 and 0 <= scale <= precision (got precision %d, scale %d)", c.Name, c.Precision, c.Scale)
			}
		default:
			return fmt.Errorf("column %q: unknown type %q; use one of string, int64, float64, bool, timestamp, date, json, decimal", c.Name, c.Type)
		}
	}
	switch s.Unknown {
	case "", UnknownDrop, UnknownReject:
	default:
		return fmt.Errorf("unknown_fields = %q; use %q or %q", s.Unknown, UnknownDrop, UnknownReject)
	}
	return nil
}

// Value is one parsed column value; Null marks a missing or null field.
type Value struct {
	Null bool
	I    int64   // Int64, Timestamp (µs since epoch, UTC), Date (days since epoch), Decimal (unscaled)
	F    float64 // Float64
	B    bool    // Bool
	S    string  // String, JSON
}

// LineError is why a line is rejected.
type LineError struct {
	Reason string
}

func (e *LineError) Error() string { return e.Reason }

func reject(format string, args ...any) error {
	return &LineError{Reason: fmt.Sprintf(format, args...)}
}

// Parse checks that line is one JSON object matching s and returns the value
// of each column, in s.Columns order, plus the object's fields. The error is
// a *LineError saying what is wrong with the line.
func (s *Schema) Parse(line []byte) ([]Value, map[string]json.RawMessage, error) {
	if !utf8.Valid(line) {
		return nil, nil, reject("not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return nil, nil, reject("empty line")
	}
	if trimmed[0] != '{' {
		return nil, nil, reject("not a JSON object (starts with %q)", truncate(string(trimmed), 20))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, nil, reject("invalid JSON: %v", err)
	}
	if _, ok := fields[FeedIDField]; ok {
		return nil, nil, reject("field %q is reserved for feedpipe", FeedIDField)
	}
	if _, ok := fields[LineField]; ok {
		return nil, nil, reject("field %q is reserved for feedpipe", LineField)
	}
	vals, err := s.values(fields)
	return vals, fields, err
}

// ParseRecord parses a staged record (a line plus _feed_id and _line).
func (s *Schema) ParseRecord(line []byte) (feedID string, lineNo int64, vals []Value, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return "", 0, nil, reject("invalid JSON: %v", err)
	}
	if err := json.Unmarshal(fields[FeedIDField], &feedID); err != nil || feedID == "" {
		return "", 0, nil, reject("no %s", FeedIDField)
	}
	if err := json.Unmarshal(fields[LineField], &lineNo); err != nil || lineNo <= 0 {
		return "", 0, nil, reject("no %s", LineField)
	}
	delete(fields, FeedIDField)
	delete(fields, LineField)
	vals, err = s.values(fields)
	return feedID, lineNo, vals, err
}

func (s *Schema) values(fields map[string]json.RawMessage) ([]Value, error) {
	if s.Unknown == UnknownReject && len(fields) > 0 {
		known := make(map[string]bool, len(s.Columns))
		for _, c := range s.Columns {
			known[c.Name] = true
		}
		for k := range fields {
			if !known[k] {
				return nil, reject("unknown field %q (the pipeline rejects unknown fields)", k)
			}
		}
	}
	vals := make([]Value, len(s.Columns))
	for i, c := range s.Columns {
		raw, ok := fields[c.Name]
		if !ok || string(raw) == "null" {
			if !c.Nullable {
				return nil, reject("field %q is required", c.Name)
			}
			vals[i] = Value{Null: true}
			continue
		}
		v, err := c.parse(raw)
		if err != nil {
			return nil, reject("field %q: %v", c.Name, err)
		}
		vals[i] = v
	}
	return vals, nil
}

func (c Column) parse(raw json.RawMessage) (Value, error) {
	switch c.Type {
	case String:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			if c.AnyScalar && raw[0] != '{' && raw[0] != '[' {
				return Value{S: string(raw)}, nil
			}
			return Value{}, fmt.Errorf("want a string, got %s", truncate(string(raw), 40))
		}
		return Value{S: s}, nil
	case Int64:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(raw), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return Value{}, fmt.Errorf("want an integer, got %s", truncate(string(raw), 40))
			}
			n = int64(f)
		}
		return Value{I: n}, nil
	case Float64:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || raw[0] == '"' {
			return Value{}, fmt.Errorf("want a number, got %s", truncate(string(raw), 40))
		}
		return Value{F: f}, nil
	case Bool:
		switch string(raw) {
		case "true":
			return Value{B: true}, nil
		case "false":
			return Value{B: false}, nil
		}
		return Value{}, fmt.Errorf("want true or false, got %s", truncate(string(raw), 40))
	case Timestamp, Date:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, fmt.Errorf("want a %s string, got %s", c.Type, truncate(string(raw), 40))
		}
		return c.parseTime(s)
	case JSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return Value{}, err
		}
		return Value{S: buf.String()}, nil
	case Decimal:
		text := string(raw)
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &text); err != nil {
				return Value{}, err
			}
		}
		n, err := c.parseDecimal(text)
		if err != nil {
			return Value{}, err
		}
		return Value{I: n}, nil
	}
	return Value{}, fmt.Errorf("unsupported type %q", c.Type)
}

// parseDecimal reads a decimal number (as JSON writes it, or quoted) exactly,
// into its value scaled by 10^Scale. Digits beyond the scale or the
// precision are an error, never rounded away.
func (c Column) parseDecimal(text string) (int64, error) {
	t := text
	neg := false
	if strings.HasPrefix(t, "-") {
		neg, t = true, t[1:]
	}
	intPart, frac, _ := strings.Cut(t, ".")
	if intPart == "" || strings.ContainsAny(intPart+frac, "eE+-") {
		return 0, fmt.Errorf("want a decimal number like 12.34, got %q", truncate(text, 40))
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > c.Scale {
		return 0, fmt.Errorf("%s has %d digits after the point; the column keeps %d", truncate(text, 40), len(frac), c.Scale)
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart)+c.Scale > c.Precision {
		return 0, fmt.Errorf("%s has more than the %d digits of decimal(%d,%d)", truncate(text, 40), c.Precision, c.Precision, c.Scale)
	}
	digits := intPart + frac + strings.Repeat("0", c.Scale-len(frac))
	var n int64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, fmt.Errorf("want a decimal number like 12.34, got %q", truncate(text, 40))
		}
		n = n*10 + int64(d-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// parseTime parses a timestamp or date string by the column's formats.
func (c Column) parseTime(s string) (Value, error) {
	formats := c.Formats
	if len(formats) == 0 {
		formats = []string{time.RFC3339Nano, "2006-01-02"}
		if c.Type == Date {
			formats = []string{"2006-01-02"}
		}
	}
	for _, f := range formats {
		if t, err := time.Parse(f, s); err == nil {
			if c.Type == Date {
				return Value{I: t.UTC().Unix() / 86400}, nil
			}
			return Value{I: t.UTC().UnixMicro()}, nil
		}
	}
	return Value{}, fmt.Errorf("%q matches none of the formats %q", truncate(s, 40), formats)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
