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
	"unicode"
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

// MaxLeafColumns bounds a schema's leaf columns (Parquet columns: one per
// scalar, json or list-of-scalar field at any depth), far below what
// Parquet indexes, so that no file is too wide to write or load.
const MaxLeafColumns = 10_000

// LeafColumns is how many Parquet leaf columns c takes.
func LeafColumns(c Column) int {
	switch c.Type {
	case Object:
		n := 0
		for _, f := range c.Fields {
			n += LeafColumns(f)
		}
		return n
	case List:
		if c.Items == nil {
			return 1
		}
		return LeafColumns(*c.Items)
	}
	return 1
}

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
	// keepOdd: the line's own odd keys (see OddKey) are kept in _extra, not
	// rejected (a Layout with _extra sets it on its copy).
	keepOdd bool
}

// Validate checks the schema itself, naming the column at fault.
func (s *Schema) Validate() error {
	if len(s.Columns) == 0 {
		return errors.New(`no columns declared: add columns, each with a name and a type (columns = [{ name = "id", type = "int64" }] in a -schema file, [[pipeline.schema.columns]] entries in the pipelines config)`)
	}
	for _, c := range s.Columns {
		if Reserved(c.Name) {
			return fmt.Errorf("column %q is reserved: feedpipe adds %s and %s to every record (Snowflake names ignore case)", c.Name, FeedIDField, LineField)
		}
	}
	if err := validateColumns(s.Columns, "", 0); err != nil {
		return err
	}
	leaves := 0
	for _, c := range s.Columns {
		if leaves += LeafColumns(c); leaves > MaxLeafColumns {
			return fmt.Errorf("column %q: the schema has more than %d leaf columns (one per scalar field at any depth), the most feedpipe writes; declare wide objects as json", c.Name, MaxLeafColumns)
		}
	}
	switch s.Unknown {
	case "", UnknownDrop, UnknownReject:
	default:
		return fmt.Errorf("unknown_fields = %q; use %q or %q", s.Unknown, UnknownDrop, UnknownReject)
	}
	return nil
}

// Reserved reports whether name is _feed_id or _line but for case: a
// column or key of that name would be the column feedpipe adds, in
// Snowflake, whose names ignore case.
func Reserved(name string) bool {
	return strings.EqualFold(name, FeedIDField) || strings.EqualFold(name, LineField)
}

// FoldName is a column name as Snowflake compares names: without case.
// Two names with the same FoldName are one column in Snowflake, so a
// schema holds at most one of them at each level (see OddKey).
func FoldName(name string) string { return strings.ToLower(name) }

// validateColumns checks the columns (or fields) under path.
func validateColumns(cols []Column, path string, depth int) error {
	seen := map[string]string{}
	for i, c := range cols {
		name := path + c.Name
		first, dup := seen[FoldName(c.Name)]
		switch {
		case c.Name == "":
			return fmt.Errorf("column %d%s has no name (an empty name cannot be a column)", i+1, under(path))
		case dup && first == c.Name:
			return fmt.Errorf("column %q is declared twice", name)
		case dup:
			return fmt.Errorf("column %q and column %q differ only in case: Snowflake names ignore case, so they would be one column; declare one of them", path+first, name)
		}
		seen[FoldName(c.Name)] = c.Name
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
	if len(c.Formats) > 0 && c.Type != Timestamp && c.Type != Date {
		return fmt.Errorf("column %q: formats are for types timestamp and date, not %s", name, c.Type)
	}
	for _, f := range c.Formats {
		if strings.Contains(f, "MST") {
			// time.Parse gives an unknown abbreviation offset 0 and a
			// known one the host's offset: the value would depend on
			// the machine.
			return fmt.Errorf("column %q: format %q reads a zone abbreviation (MST), whose offset Go takes from the host's time zone or makes 0: the value would depend on the machine; use a numeric offset like -0700 or Z07:00", name, f)
		}
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

// LineError is why a line is rejected, in two forms.
type LineError struct {
	// TypeMismatch: a value is of a kind its column's type does not take
	// (another JSON kind, a fraction or a number beyond int64 in an int64
	// column, a string that is no timestamp in a timestamp column). For a
	// column inferred from a sample, the type changed after it.
	TypeMismatch bool
	// Reason says what is wrong without any of the line's content: the
	// field's path (objects' fields joined by ".", list elements numbered
	// from 1 in brackets: "addr.geo[2]"), the type the column wants and the
	// kind of value found, e.g. `field "id": want int64, got a string (12
	// chars)`. It is what feedpipe puts in workflow history (first bad
	// lines, the reject-threshold error, the progress query).
	Reason string
	// Detail is the reason with an excerpt of the offending value (up to
	// 40 characters), for the quarantine object, which holds the raw line
	// anyway; "" when Reason says all there is.
	Detail string
}

// Error is Detail, or Reason when there is no Detail: the message as it
// was before history reasons lost their values. Code that records a
// reason where the line's content must not go uses Reason.
func (e *LineError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Reason
}

// reject is a LineError whose reason holds no value.
func reject(format string, args ...any) error {
	return &LineError{Reason: fmt.Sprintf(format, args...)}
}

// rejectValue is a LineError with a value-free reason and a detail that
// quotes the value.
func rejectValue(reason, detail string) error {
	if detail == reason {
		detail = ""
	}
	return &LineError{Reason: reason, Detail: detail}
}

// valueError is why a field's value does not fit its column: path is the
// field's path below where the error was made ("" for the value itself),
// reason says what is wrong without the value, detail quotes it.
type valueError struct {
	path   string
	reason string
	detail string
	// mismatch: the value is of a kind the column's type does not take
	// (see LineError.TypeMismatch).
	mismatch bool
}

func (e *valueError) Error() string { return e.detail }

// asValueError is err as a valueError; an error of another type (the
// JSON decoder's, on a value already checked) gets a reason without its
// message, which may quote the value.
func asValueError(err error) *valueError {
	var ve *valueError
	if errors.As(err, &ve) {
		return ve
	}
	return &valueError{reason: "invalid JSON value", detail: err.Error()}
}

// mismatch is a valueError for raw, which is not the wanted type: detail
// is the message quoting the value.
func mismatch(want string, raw []byte, detail string) *valueError {
	return &valueError{reason: "want " + want + ", got " + kindOf(raw), detail: detail, mismatch: true}
}

// outOfRange is the valueError for a number that typ cannot hold, too
// large, or so small that it would be stored as 0: never rounded to a
// different value silently.
//
// typ "" is a number no column type holds (beyond float64's range, or
// so small float64 would store 0), in an int64 column.
func outOfRange(typ string, raw []byte) *valueError {
	limit := "±9223372036854775807"
	if typ == "float64" {
		limit = "about ±1.8e308, and nothing closer to 0 than about ±4.9e-324"
	}
	reason := fmt.Sprintf("number out of range (%s holds %s)", typ, limit)
	if typ == "" {
		reason = "number out of range (no number column holds it: int64 holds integers within ±9223372036854775807, float64 about ±1.8e308 and nothing closer to 0 than about ±4.9e-324)"
	}
	// An integer beyond int64 wants another type; a float64 out of range
	// fits none.
	return &valueError{reason: reason, detail: fmt.Sprintf("number out of range: %s %s", truncate(string(raw), 40), strings.TrimPrefix(reason, "number out of range ")),
		mismatch: typ == "int64"}
}

// zeroNumber reports whether the JSON number raw is zero: its digits before
// any exponent are all 0.
func zeroNumber(raw []byte) bool {
	for _, c := range raw {
		switch {
		case c == 'e' || c == 'E':
			return true
		case c >= '1' && c <= '9':
			return false
		}
	}
	return true
}

// joinPath joins a field path below prefix ("zip", "[2]", "[2].n") to it.
func joinPath(prefix, rest string) string {
	switch {
	case rest == "":
		return prefix
	case strings.HasPrefix(rest, "["):
		return prefix + rest
	}
	return prefix + "." + rest
}

// kindOf names the kind of a JSON value without its content: "a string
// (12 chars)", "a number with a fraction", "an object", ….
func kindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "a malformed string"
		}
		return fmt.Sprintf("a string (%d chars)", utf8.RuneCountInString(s))
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		f, err := strconv.ParseFloat(string(raw), 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return "a number out of range"
		case err != nil || !validNumber(raw):
			return "a malformed number"
		case f != math.Trunc(f) || hasFraction(raw):
			return "a number with a fraction"
		case math.Abs(f) > 1<<53 || !floatHoldsText(raw, f):
			return "a number beyond ±2^53"
		case bytes.ContainsAny(raw, "eE"):
			return "a number in exponent notation"
		}
		return "a number"
	}
	return "not a JSON value"
}

// jsonError is the LineError for err, a JSON syntax error in line whose
// JSON text starts lead bytes in: the reason gives the position (bytes
// from 1) in the line only; the detail adds the character found there
// (the decoder's own message would show a multi-byte character's first
// byte as if it were a character: 'Ã' for 'ð').
func jsonError(err error, line []byte, lead int) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return rejectValue("invalid JSON", "invalid JSON: "+err.Error())
	}
	at := lead + int(se.Offset)
	msg := se.Error()
	if strings.HasPrefix(msg, "unexpected end") {
		return reject("invalid JSON: the line ends inside a value (after byte %d)", at)
	}
	reason := fmt.Sprintf("invalid JSON at byte %d", at)
	detail := reason + ": " + msg
	if rest, ok := strings.CutPrefix(msg, "invalid character "); ok && at >= 1 && at <= len(line) {
		context := ""
		if i := strings.LastIndex(rest, "' "); i >= 0 {
			context = rest[i+1:]
		}
		r, _ := utf8.DecodeRune(line[at-1:])
		detail = fmt.Sprintf("%s: unexpected %q%s", reason, r, context)
	}
	return rejectValue(reason, detail)
}

// utf8Error is the LineError for a line that is not valid UTF-8, with the
// position of its first byte that is not.
func utf8Error(line []byte) error {
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		if r == utf8.RuneError && size <= 1 {
			return reject("not valid UTF-8 (at byte %d)", i+1)
		}
		i += size
	}
	return reject("not valid UTF-8")
}

// Parse checks that line is one JSON object matching s and returns the value
// of each column, in s.Columns order, plus the object's fields. The error is
// a *LineError saying what is wrong with the line.
func (s *Schema) Parse(line []byte) ([]Value, map[string]json.RawMessage, error) {
	if !utf8.Valid(line) {
		return nil, nil, utf8Error(line)
	}
	// Only JSON's white space may stand around the object: a line with
	// another (U+00A0, \v, …) is rejected, as Sound says.
	lead := skipSpace(line, 0)
	trimmed := trimJSONSpace(line)
	if len(trimmed) == 0 {
		return nil, nil, reject("empty line")
	}
	if r, _ := utf8.DecodeRune(trimmed); unicode.IsSpace(r) {
		return nil, nil, reject("white space %U before the object: JSON allows only space, tab, CR and LF there", r)
	}
	if r, _ := utf8.DecodeLastRune(trimmed); unicode.IsSpace(r) {
		return nil, nil, reject("white space %U after the object: JSON allows only space, tab, CR and LF there", r)
	}
	if trimmed[0] != '{' {
		return nil, nil, rejectValue("not a JSON object (the line is "+lineKind(trimmed)+")",
			fmt.Sprintf("not a JSON object (starts with %q)", truncate(string(trimmed), 20)))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, nil, jsonError(err, line, lead)
	}
	if at := loneSurrogate(line); at > 0 {
		return nil, nil, surrogateError(at)
	}
	reserved := ""
	for k := range fields {
		if Reserved(k) && (reserved == "" || k < reserved) {
			reserved = k
		}
	}
	if reserved != "" {
		return nil, nil, reject("field %q is reserved for feedpipe (as are %s and %s in any case)", reserved, FeedIDField, LineField)
	}
	if err := duplicateError(trimmed); err != nil {
		return nil, nil, err
	}
	vals, err := s.values(fields)
	if err == nil {
		err = nestedError(fields)
	}
	return vals, fields, err
}

// duplicateError rejects a line with a key given twice in one object, at
// any depth: encoding/json would keep the last value and drop the other
// silently (DuckDB refuses such a file whole).
func duplicateError(line []byte) error {
	if k, ok := duplicateKey(line, true); ok {
		return duplicateErr(k)
	}
	return nil
}

// duplicateErr is the reject of a line with key k given twice.
func duplicateErr(k string) error {
	const why = "appears twice in one object: one of its values would be lost; give each key once"
	return rejectValue("a key "+why, fmt.Sprintf("key %q %s", truncate(k, 40), why))
}

// nestedError rejects what every schema rejects wherever it is in the
// line, even in a field the schema drops, keeps in _extra or keeps as JSON
// text: an empty key below the top level, a number out of range (see
// numberInRange). The first field in key order is named.
func nestedError(fields map[string]json.RawMessage) error {
	var bad, kind string
	var num []byte
	for k, raw := range fields {
		if kind != "" && k >= bad {
			continue
		}
		if what, n := nestedProblem(raw); what != "" {
			bad, kind, num = k, what, n
		}
	}
	switch kind {
	case "key":
		const why = "holds an object with an empty key (an empty key cannot be a column, at any depth)"
		return rejectValue(fmt.Sprintf("field %q: %s", bad, why), "")
	case "number":
		ve := outOfRange("", num)
		return rejectValue(fmt.Sprintf("field %q: %s", bad, ve.reason), fmt.Sprintf("field %q: %s", bad, ve.detail))
	}
	return nil
}

// ParseRecord parses a staged record (a line plus _feed_id and _line).
func (s *Schema) ParseRecord(line []byte) (feedID string, lineNo int64, vals []Value, err error) {
	if !utf8.Valid(line) {
		// encoding/json would turn the bytes into U+FFFD silently.
		return "", 0, nil, utf8Error(line)
	}
	fields, feedID, lineNo, err := recordFields(line)
	if err != nil {
		return "", 0, nil, err
	}
	if k, ok := duplicateKey(line, true); ok {
		if k == FeedIDField || k == LineField {
			return "", 0, nil, reject("%s or %s given twice", FeedIDField, LineField)
		}
		return "", 0, nil, duplicateErr(k)
	}
	delete(fields, FeedIDField)
	delete(fields, LineField)
	vals, err = s.values(fields)
	if err == nil {
		err = nestedError(fields)
	}
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
		return nil, "", 0, jsonError(err, line, 0)
	}
	if at := loneSurrogate(line); at > 0 {
		return nil, "", 0, surrogateError(at)
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
	vals, err := objectValues(s.Columns, fields, s.Unknown, s.keepOdd)
	if err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			reason := ve.reason
			if ve.path != "" {
				reason = fmt.Sprintf("field %q: %s", ve.path, ve.reason)
			}
			le := rejectValue(reason, ve.detail).(*LineError)
			le.TypeMismatch = ve.mismatch
			return nil, le
		}
		return nil, &LineError{Reason: err.Error()}
	}
	return vals, nil
}

// lineKind names what a line that is not a JSON object holds.
func lineKind(trimmed []byte) string {
	if k := kindOf(trimmed); k != "not a JSON value" && !strings.HasPrefix(k, "a malformed") {
		if k == "null" {
			return "null"
		}
		return k
	}
	return "not JSON"
}

// OddKey says why key, a key of an object whose declared fields are cols,
// can be no column: "" when it can (declared, or a name Snowflake can
// hold beside them). An empty key cannot, nor a key that differs only in
// case from a declared one (Snowflake names ignore case): such a key is
// never dropped as an undeclared field would be; its line is rejected, or
// (top level, -unknown extra) the key is kept in _extra.
func OddKey(cols []Column, key string) string {
	if key == "" {
		return "an empty key cannot be a column"
	}
	for _, c := range cols {
		if c.Name == key {
			return ""
		}
	}
	fold := FoldName(key)
	for _, c := range cols {
		if FoldName(c.Name) == fold {
			return fmt.Sprintf("differs only in case from column %q (Snowflake names ignore case), so it cannot be a column of its own", c.Name)
		}
	}
	return ""
}

// oddKeyError is the error for the first odd key of fields (see OddKey),
// in key order, or nil.
func oddKeyError(cols []Column, fields map[string]json.RawMessage) error {
	var odd, why string
	for k := range fields {
		if w := OddKey(cols, k); w != "" && (why == "" || k < odd) {
			odd, why = k, w
		}
	}
	if why == "" {
		return nil
	}
	detail := why
	if odd != "" {
		detail = fmt.Sprintf("field %q: %s", odd, why)
	}
	return &valueError{path: odd, reason: why, detail: detail}
}

// objectValues types an object's fields by cols; unknown is the policy for
// fields cols does not declare. Odd keys (see OddKey) are an error unless
// keepOdd (the line's own fields, kept in _extra).
func objectValues(cols []Column, fields map[string]json.RawMessage, unknown string, keepOdd bool) ([]Value, error) {
	if !keepOdd && len(fields) > 0 {
		declared := 0
		for _, c := range cols {
			if _, ok := fields[c.Name]; ok {
				declared++
			}
		}
		if declared < len(fields) {
			if err := oddKeyError(cols, fields); err != nil {
				return nil, err
			}
		}
	}
	if unknown == UnknownReject && len(fields) > 0 {
		known := make(map[string]bool, len(cols))
		for _, c := range cols {
			known[c.Name] = true
		}
		for k := range fields {
			if !known[k] {
				return nil, &valueError{path: k, reason: "not declared in the schema (undeclared fields are rejected)",
					detail: fmt.Sprintf("field %q is not declared in the schema (undeclared fields are rejected)", k)}
			}
		}
	}
	vals := make([]Value, len(cols))
	for i, c := range cols {
		raw, ok := fields[c.Name]
		if !ok || string(raw) == "null" {
			if !c.Nullable {
				reason := "required, but missing"
				if ok {
					reason = "required, but null"
				}
				return nil, &valueError{path: c.Name, reason: reason, detail: fmt.Sprintf("field %q is required", c.Name)}
			}
			vals[i] = Value{Null: true}
			continue
		}
		v, err := c.parse(raw, unknown)
		if err != nil {
			ve := asValueError(err)
			return nil, &valueError{path: joinPath(c.Name, ve.path), reason: ve.reason, detail: fmt.Sprintf("field %q: %s", c.Name, ve.detail), mismatch: ve.mismatch}
		}
		vals[i] = v
	}
	return vals, nil
}

func (c Column) parse(raw json.RawMessage, unknown string) (Value, error) {
	switch c.Type {
	case Object:
		if raw[0] != '{' {
			return Value{}, mismatch("an object", raw, fmt.Sprintf("want an object, got %s", truncate(string(raw), 40)))
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return Value{}, err
		}
		vals, err := objectValues(c.Fields, fields, unknown, false)
		if err != nil {
			return Value{}, err
		}
		return Value{Fields: vals}, nil
	case List:
		if raw[0] != '[' {
			return Value{}, mismatch("an array", raw, fmt.Sprintf("want an array, got %s", truncate(string(raw), 40)))
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return Value{}, err
		}
		vals := make([]Value, len(items))
		for i, it := range items {
			if string(it) == "null" {
				if !c.Items.Nullable {
					return Value{}, &valueError{path: fmt.Sprintf("[%d]", i+1), reason: "null, but the list's items are not nullable",
						detail: fmt.Sprintf("element %d is null; the list's items are not nullable", i+1)}
				}
				vals[i] = Value{Null: true}
				continue
			}
			v, err := c.Items.parse(it, unknown)
			if err != nil {
				ve := asValueError(err)
				return Value{}, &valueError{path: joinPath(fmt.Sprintf("[%d]", i+1), ve.path), reason: ve.reason, mismatch: ve.mismatch,
					detail: fmt.Sprintf("element %d: %s", i+1, ve.detail)}
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
			return Value{}, mismatch("string", raw, fmt.Sprintf("want a string, got %s", truncate(string(raw), 40)))
		}
		return Value{S: s}, nil
	case Int64:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if errors.Is(err, strconv.ErrRange) && plainInteger(raw) {
			return Value{}, outOfRange("int64", raw)
		}
		// ParseInt gives up with ErrRange at the 20th digit, before an
		// exponent or fraction that follows: such text is intText's.
		if err != nil {
			if raw[0] == '"' || !validNumber(raw) {
				return Value{}, mismatch("int64", raw, fmt.Sprintf("want an integer, got %s", truncate(string(raw), 40)))
			}
			if f, ferr := strconv.ParseFloat(string(raw), 64); errors.Is(ferr, strconv.ErrRange) || f == 0 && !zeroNumber(raw) {
				return Value{}, outOfRange("", raw) // no number column holds it
			}
			// Integer or not is decided on the text, exactly: a float64
			// would round 1.00000000000000000001 to 1.
			v, kind := intText(raw)
			switch kind {
			case intFraction:
				return Value{}, mismatch("int64", raw, fmt.Sprintf("want an integer, got %s", truncate(string(raw), 40)))
			case intBeyond:
				return Value{}, outOfRange("int64", raw)
			}
			n = v
		}
		return Value{I: n}, nil
	case Float64:
		f, err := strconv.ParseFloat(string(raw), 64)
		if raw[0] != '"' && (errors.Is(err, strconv.ErrRange) || err == nil && f == 0 && !zeroNumber(raw)) {
			return Value{}, outOfRange("float64", raw)
		}
		if err != nil || raw[0] == '"' {
			return Value{}, mismatch("float64", raw, fmt.Sprintf("want a number, got %s", truncate(string(raw), 40)))
		}
		if !floatHoldsText(raw, f) {
			// An integer, however written: inference makes such integers
			// int64 or string columns, exact; a float64 column would round
			// them.
			return Value{}, mismatch("float64", raw, fmt.Sprintf("integer %s is beyond ±2^53 and float64 cannot hold it exactly", truncate(string(raw), 40)))
		}
		return Value{F: f}, nil
	case Bool:
		switch string(raw) {
		case "true":
			return Value{B: true}, nil
		case "false":
			return Value{B: false}, nil
		}
		return Value{}, mismatch("bool", raw, fmt.Sprintf("want true or false, got %s", truncate(string(raw), 40)))
	case Timestamp, Date:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, mismatch(string(c.Type)+" (as a string)", raw, fmt.Sprintf("want a %s string, got %s", c.Type, truncate(string(raw), 40)))
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
		n, err := c.parseDecimal(raw, text)
		if err != nil {
			return Value{}, err
		}
		return Value{I: n}, nil
	}
	return Value{}, fmt.Errorf("unsupported type %q", c.Type)
}

// parseDecimal reads a decimal number (as JSON writes it, or quoted: raw,
// whose text is text) exactly, into its value scaled by 10^Scale. Digits
// beyond the scale or the precision are an error, never rounded away.
func (c Column) parseDecimal(raw []byte, text string) (int64, error) {
	want := fmt.Sprintf("decimal(%d,%d)", c.Precision, c.Scale)
	what := "a number"
	if raw[0] == '"' {
		what = "a string"
	}
	t := text
	neg := false
	if strings.HasPrefix(t, "-") {
		neg, t = true, t[1:]
	}
	intPart, frac, point := strings.Cut(t, ".")
	// JSON's grammar, for quoted numbers too: digits on both sides of a
	// point (".5" and "5." are refused alike), no leading zero ("007.5").
	if intPart == "" || point && frac == "" || len(intPart) > 1 && intPart[0] == '0' || strings.ContainsAny(intPart+frac, "eE+-") {
		return 0, mismatch(want, raw, fmt.Sprintf("want a decimal number like 12.34, got %q", truncate(text, 40)))
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > c.Scale {
		return 0, &valueError{reason: fmt.Sprintf("want %s, got %s with %d digits after the point", want, what, len(frac)),
			detail: fmt.Sprintf("%s has %d digits after the point; the column keeps %d", truncate(text, 40), len(frac), c.Scale)}
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart)+c.Scale > c.Precision {
		return 0, &valueError{reason: fmt.Sprintf("want %s, got %s with %d digits before the point", want, what, len(intPart)),
			detail: fmt.Sprintf("%s has more than the %d digits of decimal(%d,%d)", truncate(text, 40), c.Precision, c.Precision, c.Scale)}
	}
	digits := intPart + frac + strings.Repeat("0", c.Scale-len(frac))
	var n int64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, mismatch(want, raw, fmt.Sprintf("want a decimal number like 12.34, got %q", truncate(text, 40)))
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
				// Days since the epoch, floored: 1969-12-31T12:00:00Z is
				// day -1, not 0.
				secs := t.UTC().Unix()
				days := secs / 86400
				if secs%86400 < 0 {
					days--
				}
				return Value{I: days}, nil
			}
			if t.Nanosecond()%1000 != 0 || belowMicro(s) {
				// Kept in microseconds: cutting the digits below would
				// change the value.
				const reason = "timestamp with digits below the microsecond (the column keeps microseconds; declare it string to keep them)"
				return Value{}, &valueError{reason: reason, detail: fmt.Sprintf("%q: %s", truncate(s, 40), reason), mismatch: true}
			}
			return Value{I: t.UTC().UnixMicro()}, nil
		}
	}
	text := formatsText(formats)
	return Value{}, &valueError{reason: fmt.Sprintf("want %s as %s, got a string (%d chars) that matches none", c.Type, text, utf8.RuneCountInString(s)),
		detail: fmt.Sprintf("%q matches none of the formats: %s", truncate(s, 40), text), mismatch: true}
}

// belowMicro reports whether s holds a fraction of a second (digits
// after a '.' or ',') with a digit other than 0 after its sixth: time.Parse
// keeps nine digits and drops the rest, so Nanosecond alone does not show
// them.
func belowMicro(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && s[i] != ',' {
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			if j-i > 6 && s[j] != '0' {
				return true
			}
			j++
		}
		i = j - 1
	}
	return false
}

// formatsText names time layouts as a person reads them: "RFC 3339 (…)
// or YYYY-MM-DD", not as Go's reference time.
func formatsText(formats []string) string {
	var names []string
	seen := map[string]bool{}
	for _, f := range formats {
		n := humanLayout(f)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return strings.Join(names, " or ")
}

// layoutWords turns a Go layout's elements into the letters people write
// formats with, longer elements first.
var layoutWords = strings.NewReplacer(
	"January", "<month name>", "Monday", "<weekday name>", "2006", "YYYY",
	"Z07:00", "(Z or ±hh:mm)", "Z0700", "(Z or ±hhmm)", "-07:00", "±hh:mm", "-0700", "±hhmm", "-07", "±hh",
	".000000000", ".fffffffff", ".000000", ".ffffff", ".000", ".fff",
	".999999999", "[.fraction]", ".999999", "[.fraction]", ".999", "[.fraction]",
	"Jan", "<month abbr.>", "Mon", "<weekday abbr.>", "PM", "AM/PM",
	"002", "DDD", "01", "MM", "02", "DD", "_2", "DD", "06", "YY", "15", "hh", "03", "hh", "04", "mm", "05", "ss",
	// Single digits, unpadded: month, day, hour (12-hour), minute, second.
	"1", "M", "2", "D", "3", "h", "4", "m", "5", "s",
)

// humanLayout is one Go time layout in people's terms.
func humanLayout(layout string) string {
	switch layout {
	case time.RFC3339, time.RFC3339Nano:
		return "RFC 3339 (like 2026-01-02T15:04:05Z; a fraction of a second and a ±hh:mm offset allowed)"
	}
	return layoutWords.Replace(layout)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
