// Package schema holds a feed's declared columns and turns one NDJSON line
// into typed values, or into a reason the line is rejected: Schema.Parse is
// the reference, Parser the fast path that types lines straight into the
// Parquet leaf columns of a Layout. PutToKinesis uses it to quarantine bad
// lines before anything is sent; the converters use it to write Parquet.
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
	Object    Type = "object"  // a JSON object of declared Fields: a Parquet group
	List      Type = "list"    // a JSON array of Items: a Parquet LIST
)

// maxDepth bounds how deeply objects and lists nest in a schema.
const maxDepth = 32

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
	// Fields are an object column's fields.
	Fields []Column `toml:"fields" json:"fields,omitempty"`
	// Items is a list column's element; its Name is not used and its
	// Nullable says whether elements may be null.
	Items *Column `toml:"items" json:"items,omitempty"`
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
	for _, c := range s.Columns {
		if c.Name == FeedIDField || c.Name == LineField {
			return fmt.Errorf("column %q is reserved: feedpipe adds it to every record", c.Name)
		}
	}
	if err := validateColumns(s.Columns, "", 0); err != nil {
		return err
	}
	switch s.Unknown {
	case "", UnknownDrop, UnknownReject:
	default:
		return fmt.Errorf("unknown_fields = %q; use %q or %q", s.Unknown, UnknownDrop, UnknownReject)
	}
	return nil
}

// validateColumns checks the columns (or fields) under path.
func validateColumns(cols []Column, path string, depth int) error {
	seen := map[string]bool{}
	for i, c := range cols {
		name := path + c.Name
		switch {
		case c.Name == "":
			return fmt.Errorf("column %d%s has no name", i+1, under(path))
		case seen[strings.ToLower(c.Name)]:
			return fmt.Errorf("column %q is declared twice (names are case-insensitive in Snowflake)", name)
		}
		seen[strings.ToLower(c.Name)] = true
		if err := validateColumn(c, name, depth); err != nil {
			return err
		}
	}
	return nil
}

func under(path string) string {
	if path == "" {
		return ""
	}
	return " of " + strings.TrimSuffix(path, ".")
}

func validateColumn(c Column, name string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("column %q: objects and lists nest deeper than %d levels; declare a level as json", name, maxDepth)
	}
	if c.Type != Object && len(c.Fields) > 0 {
		return fmt.Errorf("column %q: fields are for type object, not %s", name, c.Type)
	}
	if c.Type != List && c.Items != nil {
		return fmt.Errorf("column %q: items is for type list, not %s", name, c.Type)
	}
	switch c.Type {
	case String, Int64, Float64, Bool, Timestamp, Date, JSON:
	case Decimal:
		if c.Precision < 1 || c.Precision > 18 || c.Scale < 0 || c.Scale > c.Precision {
			return fmt.Errorf("column %q: decimal needs 1 <= precision <= 18 and 0 <= scale <= precision (got precision %d, scale %d)", name, c.Precision, c.Scale)
		}
	case Object:
		if len(c.Fields) == 0 {
			return fmt.Errorf("column %q: an object needs fields (or declare it json to keep it as JSON text)", name)
		}
		return validateColumns(c.Fields, name+".", depth+1)
	case List:
		if c.Items == nil {
			return fmt.Errorf("column %q: a list needs items, e.g. items = { type = \"string\" }", name)
		}
		return validateColumn(*c.Items, name+"[]", depth+1)
	default:
		return fmt.Errorf("column %q: unknown type %q; use one of string, int64, float64, bool, timestamp, date, json, decimal, object, list", name, c.Type)
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
	// Fields are an object's values, in Column.Fields order.
	Fields []Value
	// Items are a list's elements (empty, not nil, for []).
	Items []Value
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
	fields, feedID, lineNo, err := recordFields(line)
	if err != nil {
		return "", 0, nil, err
	}
	delete(fields, FeedIDField)
	delete(fields, LineField)
	vals, err = s.values(fields)
	return feedID, lineNo, vals, err
}

// RecordFeed reads a staged record's _feed_id and _line as ParseRecord
// does, with the same errors, without typing its other fields.
func RecordFeed(line []byte) (feedID string, lineNo int64, err error) {
	_, feedID, lineNo, err = recordFields(line)
	return feedID, lineNo, err
}

// recordFields decodes a staged record into its fields, its feed id and
// its line number.
func recordFields(line []byte) (fields map[string]json.RawMessage, feedID string, lineNo int64, err error) {
	if err := json.Unmarshal(line, &fields); err != nil {
		return nil, "", 0, reject("invalid JSON: %v", err)
	}
	if err := json.Unmarshal(fields[FeedIDField], &feedID); err != nil || feedID == "" {
		return nil, "", 0, reject("no %s", FeedIDField)
	}
	if err := json.Unmarshal(fields[LineField], &lineNo); err != nil || lineNo <= 0 {
		return nil, "", 0, reject("no %s", LineField)
	}
	return fields, feedID, lineNo, nil
}

func (s *Schema) values(fields map[string]json.RawMessage) ([]Value, error) {
	vals, err := objectValues(s.Columns, fields, s.Unknown)
	if err != nil {
		return nil, &LineError{Reason: err.Error()}
	}
	return vals, nil
}

// objectValues types an object's fields by cols; unknown is the policy for
// fields cols does not declare.
func objectValues(cols []Column, fields map[string]json.RawMessage, unknown string) ([]Value, error) {
	if unknown == UnknownReject && len(fields) > 0 {
		known := make(map[string]bool, len(cols))
		for _, c := range cols {
			known[c.Name] = true
		}
		for k := range fields {
			if !known[k] {
				return nil, fmt.Errorf("unknown field %q (the pipeline rejects unknown fields)", k)
			}
		}
	}
	vals := make([]Value, len(cols))
	for i, c := range cols {
		raw, ok := fields[c.Name]
		if !ok || string(raw) == "null" {
			if !c.Nullable {
				return nil, fmt.Errorf("field %q is required", c.Name)
			}
			vals[i] = Value{Null: true}
			continue
		}
		v, err := c.parse(raw, unknown)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", c.Name, err)
		}
		vals[i] = v
	}
	return vals, nil
}

func (c Column) parse(raw json.RawMessage, unknown string) (Value, error) {
	switch c.Type {
	case Object:
		if raw[0] != '{' {
			return Value{}, fmt.Errorf("want an object, got %s", truncate(string(raw), 40))
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return Value{}, err
		}
		vals, err := objectValues(c.Fields, fields, unknown)
		if err != nil {
			return Value{}, err
		}
		return Value{Fields: vals}, nil
	case List:
		if raw[0] != '[' {
			return Value{}, fmt.Errorf("want an array, got %s", truncate(string(raw), 40))
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return Value{}, err
		}
		vals := make([]Value, len(items))
		for i, it := range items {
			if string(it) == "null" {
				if !c.Items.Nullable {
					return Value{}, fmt.Errorf("element %d is null; the list's items are not nullable", i+1)
				}
				vals[i] = Value{Null: true}
				continue
			}
			v, err := c.Items.parse(it, unknown)
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i+1, err)
			}
			vals[i] = v
		}
		return Value{Items: vals}, nil
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
