package schema

import (
	"errors"
	"strings"
	"testing"
)

// A rejected line's Reason, which goes into workflow history, names the
// field path, the type wanted and the kind of value, and never the value;
// Detail (for the quarantine object) still quotes it.
func TestReasonsNameThePathAndKindNotTheValue(t *testing.T) {
	s := testSchema()
	s.Columns = append(s.Columns,
		Column{Name: "addr", Type: Object, Nullable: true, Fields: []Column{
			{Name: "zip", Type: String},
			{Name: "geo", Type: List, Nullable: true, Items: &Column{Type: Float64}},
		}},
		Column{Name: "tags", Type: List, Nullable: true, Items: &Column{Type: String}},
	)
	const secret = "SECRETVALUE"
	for line, c := range map[string]struct{ reason, detail string }{
		`{"id": "SECRETVALUE-12"}`:                                   {`field "id": want int64, got a string (14 chars)`, `want an integer, got "SECRETVALUE-12"`},
		`{"id": 1.5}`:                                                {`field "id": want int64, got a number with a fraction`, "want an integer, got 1.5"},
		`{"id": 1, "score": "SECRETVALUE"}`:                          {`field "score": want float64, got a string (11 chars)`, `"SECRETVALUE"`},
		`{"id": 1, "ok": {"SECRETVALUE": 1}}`:                        {`field "ok": want bool, got an object`, "SECRETVALUE"},
		`{"id": 1, "at": "SECRETVALUE"}`:                             {`field "at": want timestamp as RFC 3339 (like 2026-01-02T15:04:05Z; a fraction of a second and a ±hh:mm offset allowed) or YYYY-MM-DD, got a string (11 chars) that matches none`, `"SECRETVALUE" matches none of the formats: RFC 3339`},
		`{"id": 1, "amount": 1.23456}`:                               {`field "amount": want decimal(9,3), got a number with 5 digits after the point`, "1.23456 has 5 digits"},
		`{"id": 1, "amount": "SECRETVALUE"}`:                         {`field "amount": want decimal(9,3), got a string (11 chars)`, `"SECRETVALUE"`},
		`{"id": 1, "addr": {"zip": 12345}}`:                          {`field "addr.zip": want string, got a number`, `field "addr": field "zip": want a string, got 12345`},
		`{"id": 1, "addr": {}}`:                                      {`field "addr.zip": required, but missing`, `field "addr": field "zip" is required`},
		`{"id": 1, "addr": {"zip": "1", "geo": [1, "SECRETVALUE"]}}`: {`field "addr.geo[2]": want float64, got a string (11 chars)`, `element 2: want a number, got "SECRETVALUE"`},
		`{"id": 1, "tags": ["a", null]}`:                             {`field "tags[2]": null, but the list's items are not nullable`, "element 2 is null"},
		`{"id": 1, "tags": "SECRETVALUE"}`:                           {`field "tags": want an array, got a string (11 chars)`, `want an array, got "SECRETVALUE"`},
		`{"id": null}`:                                               {`field "id": required, but null`, `field "id" is required`},
		`["SECRETVALUE"]`:                                            {`not a JSON object (the line is an array)`, `starts with "[\"SECRETVALUE\"]"`},
		`SECRETVALUE`:                                                {`not a JSON object (the line is not JSON)`, `starts with "SECRETVALUE"`},
		`{"id": 1, "name": SECRETVALUE}`:                             {`invalid JSON at byte 19`, "invalid JSON at byte 19: unexpected 'S' looking for beginning of value"},
		`{"id": 1, "name": "SECRETVALUE"`:                            {`invalid JSON: the line ends inside a value (after byte 31)`, "invalid JSON: the line ends inside a value (after byte 31)"},
		`  {"id": 1, "name": ðSECRET}`:                               {`invalid JSON at byte 21`, "invalid JSON at byte 21: unexpected 'ð' looking for beginning of value"},
		"{\"id\": 1, \"name\": \"SECRET\xff\"}":                      {`not valid UTF-8 (at byte 26)`, "not valid UTF-8 (at byte 26)"},
	} {
		_, _, err := s.Parse([]byte(line))
		var le *LineError
		if !errors.As(err, &le) {
			t.Errorf("Parse(%s) = %v, want a LineError", line, err)
			continue
		}
		if !strings.HasPrefix(le.Reason, c.reason) {
			t.Errorf("Parse(%s): reason %q, want it to start %q", line, le.Reason, c.reason)
		}
		if strings.Contains(le.Reason, secret) || strings.Contains(le.Reason, "12345") || strings.Contains(le.Reason, "1.23456") {
			t.Errorf("Parse(%s): reason %q holds the value", line, le.Reason)
		}
		if !strings.Contains(le.Error(), c.detail) {
			t.Errorf("Parse(%s): detail %q, want it to hold %q", line, le.Error(), c.detail)
		}
	}

	s.Unknown = UnknownReject
	_, _, err := s.Parse([]byte(`{"id": 1, "addr": {"zip": "1", "SECRETKEY": 2}}`))
	var le *LineError
	if !errors.As(err, &le) || le.Reason != `field "addr.SECRETKEY": not declared in the schema (undeclared fields are rejected)` {
		t.Errorf("unknown nested field: %#v", err)
	}
}

// The fast path gives the same LineError, Reason and Detail, as the reference.
func TestParserGivesTheReferencesReason(t *testing.T) {
	s := testSchema()
	l, err := NewLayout(&s, LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(l)
	for _, line := range []string{`{"id":1}`, `{"id":"SECRET"}`, `{"id":1,"amount":1.23456}`, `{"id":1,"at":"x"}`} {
		_, _, want := s.Parse([]byte(line))
		got := p.Check([]byte(line))
		var w, g *LineError
		if (want == nil) != (got == nil) || want != nil && (!errors.As(want, &w) || !errors.As(got, &g) || *w != *g) {
			t.Errorf("%s: parser %#v, reference %#v", line, got, want)
		}
	}
}

// A key that is empty or differs only in case from a declared field, at any
// depth, is never dropped as an undeclared key is: the line is rejected
// with a reason naming it, by the fast path as by the reference; with
// _extra, the line's own such keys are kept there.
func TestOddKeysAreRejectedNotDropped(t *testing.T) {
	s := Schema{Columns: []Column{
		{Name: "userId", Type: Int64, Nullable: true},
		{Name: "addr", Type: Object, Nullable: true, Fields: []Column{{Name: "zip", Type: String, Nullable: true}}},
		{Name: "items", Type: List, Nullable: true, Items: &Column{Type: Object, Fields: []Column{{Name: "sku", Type: String, Nullable: true}}}},
	}, Unknown: UnknownDrop}
	l, err := NewLayout(&s, LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(l)
	for line, want := range map[string]string{
		`{"userID":1}`:                            `field "userID": differs only in case from column "userId" (Snowflake names ignore case), so it cannot be a column of its own`,
		`{"userId":1,"USERID":2}`:                 `field "USERID": differs only in case from column "userId"`,
		`{"userId":1,"":2}`:                       `an empty key cannot be a column`,
		`{"addr":{"zip":"1","ZIP":"2"}}`:          `field "addr.ZIP": differs only in case from column "zip"`,
		`{"addr":{"zip":"1","":"2"}}`:             `field "addr": an empty key cannot be a column`,
		`{"userId":1,"Addr":{"zip":"1"}}`:         `field "Addr": differs only in case from column "addr"`,
		`{"items":[{"sku":"a"},{"SKU":"b"}]}`:     `field "items[2].SKU": differs only in case from column "sku"`,
		`{"userId":1,"other":{"":1,"X":2}}`:       `field "other": holds an object with an empty key`, // undeclared, but no schema takes it: inference skips such lines
		`{"userId":1,"addr":{"zip":"1","zap":2}}`: "",
	} {
		_, _, ref := s.Parse([]byte(line))
		fast := p.Check([]byte(line))
		var rl, fl *LineError
		if want == "" {
			if ref != nil || fast != nil {
				t.Errorf("%s: rejected (%v, %v), want a row", line, ref, fast)
			}
			continue
		}
		if !errors.As(ref, &rl) || !strings.HasPrefix(rl.Reason, want) {
			t.Errorf("%s: reference %#v, want a reason starting %q", line, ref, want)
			continue
		}
		if !errors.As(fast, &fl) || *fl != *rl {
			t.Errorf("%s: parser %#v, reference %#v", line, fast, ref)
		}
	}

	le, err := NewLayout(&s, LayoutOptions{Extra: true})
	if err != nil {
		t.Fatal(err)
	}
	pe := NewParser(le)
	rows := NewRows(le)
	if err := pe.AppendLine(rows, []byte(`{"userId":1,"userID":2,"":3}`)); err != nil {
		t.Errorf("with _extra: %v", err)
	} else if got := string(rows.LeafValues(le.ExtraLeaf)[0].ByteArray()); got != `{"":3,"userID":2}` {
		t.Errorf("_extra %s", got)
	}
	// _extra holds the fields' JSON as given, not HTML-escaped.
	if err := pe.AppendLine(rows, []byte(`{"x":"<a href=\"q?a=1&b=2\">","<k>":[">"]}`)); err != nil {
		t.Errorf("with _extra: %v", err)
	} else if got := string(rows.LeafValues(le.ExtraLeaf)[1].ByteArray()); got != `{"<k>":[">"],"x":"<a href=\"q?a=1&b=2\">"}` {
		t.Errorf("_extra %s", got)
	}
	if err := pe.AppendLine(rows, []byte(`{"addr":{"ZIP":"1"}}`)); err == nil {
		t.Error("with _extra: a nested odd key was accepted (only the line's own go to _extra)")
	}
	if s.keepOdd {
		t.Error("NewLayout with Extra changed the caller's schema")
	}
}

// A timestamp reject names the accepted formats as people write them, not
// as Go layouts; rejects for a value of a kind the column does not take
// are marked TypeMismatch (convert adds a hint for inferred columns).
func TestTimestampFormatsInPeoplesTerms(t *testing.T) {
	s := Schema{Columns: []Column{
		{Name: "at", Type: Timestamp, Nullable: true, Formats: []string{"02/01/2006 15:04:05.000", "2006-01-02T15:04:05Z07:00", "Jan _2 2006 3:04PM -0700"}},
		{Name: "n", Type: Int64, Nullable: true},
		{Name: "f", Type: Float64, Nullable: true},
	}}
	_, _, err := s.Parse([]byte(`{"at":"soon"}`))
	var le *LineError
	want := `field "at": want timestamp as DD/MM/YYYY hh:mm:ss.fff or RFC 3339 (like 2026-01-02T15:04:05Z; a fraction of a second and a ±hh:mm offset allowed) or <month abbr.> DD YYYY h:mmAM/PM ±hhmm, got a string (4 chars) that matches none`
	if !errors.As(err, &le) || le.Reason != want || !le.TypeMismatch {
		t.Errorf("reason %#v\nwant %q", err, want)
	}
	// Go's single-digit elements too (issue 9, review 10).
	if got := formatsText([]string{"1/2/2006 3:4:5 PM", "2006-01-02"}); got != "M/D/YYYY h:m:s AM/PM or YYYY-MM-DD" {
		t.Errorf("single digits: %q", got)
	}
	for line, mismatch := range map[string]bool{`{"n":"1"}`: true, `{"n":1.5}`: true, `{"n":9223372036854775808}`: true, `{"f":1e400}`: false, `{"f":"x"}`: true, `{"at":"x"}`: true, `{"":1}`: false} {
		_, _, err := s.Parse([]byte(line))
		if !errors.As(err, &le) || le.TypeMismatch != mismatch {
			t.Errorf("%s: %#v, want TypeMismatch %v", line, err, mismatch)
		}
	}
}
