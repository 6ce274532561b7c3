package schema

import (
	"errors"
	"strings"
	"testing"
)

func testSchema() Schema {
	return Schema{Columns: []Column{
		{Name: "id", Type: Int64},
		{Name: "name", Type: String, Nullable: true},
		{Name: "score", Type: Float64, Nullable: true},
		{Name: "ok", Type: Bool, Nullable: true},
		{Name: "at", Type: Timestamp, Nullable: true},
		{Name: "day", Type: Date, Nullable: true},
		{Name: "meta", Type: JSON, Nullable: true},
		{Name: "amount", Type: Decimal, Precision: 9, Scale: 3, Nullable: true},
	}, Unknown: UnknownDrop}
}

func TestParseTypes(t *testing.T) {
	s := testSchema()
	vals, _, err := s.Parse([]byte(`{"id": 7, "name": "Zoë", "score": 1.5, "ok": false, "at": "2026-01-02T03:04:05.123456789+01:00", "day": "2026-01-02", "meta": {"a": [1, 2]}, "extra": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].I != 7 || vals[1].S != "Zoë" || vals[2].F != 1.5 || vals[3].B || vals[3].Null {
		t.Errorf("scalars %+v", vals[:4])
	}
	// UTC, truncated to microseconds.
	if vals[4].I != 1767319445123456 {
		t.Errorf("timestamp = %d µs", vals[4].I)
	}
	if vals[5].I != 20455 || vals[6].S != `{"a":[1,2]}` {
		t.Errorf("date %d json %q", vals[5].I, vals[6].S)
	}
	vals, _, err = s.Parse([]byte(`{"id": 1e3, "name": null}`))
	if err != nil || vals[0].I != 1000 || !vals[1].Null || !vals[2].Null {
		t.Errorf("integral float and nulls: %+v %v", vals, err)
	}
}

func TestParseRejectsWithAReason(t *testing.T) {
	s := testSchema()
	for line, want := range map[string]string{
		"":                                "empty line",
		"   ":                             "empty line",
		`[1,2]`:                           "not a JSON object",
		`"str"`:                           "not a JSON object",
		`{"id": 1`:                        "invalid JSON",
		"{\"id\": 1, \"name\": \"\xff\"}": "not valid UTF-8",
		`{"name": "x"}`:                   `"id" is required`,
		`{"id": null}`:                    `"id" is required`,
		`{"id": 1.5}`:                     "want an integer",
		`{"id": "1"}`:                     "want an integer",
		`{"id": 1, "score": "high"}`:      "want a number",
		`{"id": 1, "ok": "yes"}`:          "want true or false",
		`{"id": 1, "at": "yesterday"}`:    "matches none of the formats",
		`{"id": 1, "_line": 2}`:           "reserved",
		`{"id": 1, "_feed_id": "x"}`:      "reserved",
	} {
		_, _, err := s.Parse([]byte(line))
		var le *LineError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want a LineError containing %q", line, err, want)
		}
	}
	s.Unknown = UnknownReject
	if _, _, err := s.Parse([]byte(`{"id": 1, "extra": 2}`)); err == nil || !strings.Contains(err.Error(), `unknown field "extra"`) {
		t.Errorf("unknown field with reject policy: %v", err)
	}
}

func TestParseRecordReadsFeedFields(t *testing.T) {
	s := testSchema()
	feed, line, vals, err := s.ParseRecord([]byte(`{"_feed_id":"f","_line":9,"id":3}`))
	if err != nil || feed != "f" || line != 9 || vals[0].I != 3 {
		t.Errorf("ParseRecord = %s %d %+v %v", feed, line, vals, err)
	}
	if _, _, _, err := s.ParseRecord([]byte(`{"id":3}`)); err == nil {
		t.Error("a record without _feed_id was accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    Schema
		want string
	}{
		{Schema{}, "no columns"},
		{Schema{Columns: []Column{{Name: "a", Type: "text"}}}, `unknown type "text"`},
		{Schema{Columns: []Column{{Name: "a", Type: String}, {Name: "A", Type: String}}}, "declared twice"},
		{Schema{Columns: []Column{{Name: "_line", Type: Int64}}}, "reserved"},
		{Schema{Columns: []Column{{Name: "a", Type: String}}, Unknown: "keep"}, "unknown_fields"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.s, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{`{"id":1,"name":"a"}`, `{"id":1e400}`, `{"at":"2026-01-01"}`, "\xef\xbb\xbf{}", `{"id":-0}`, `[]`, `{"meta":{"a":{"b":[[[]]]}}}`} {
		f.Add([]byte(seed))
	}
	s := testSchema()
	f.Fuzz(func(t *testing.T, line []byte) {
		vals, _, err := s.Parse(line)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Reason == "" {
				t.Fatalf("Parse(%q) returned %v, not a LineError with a reason", line, err)
			}
			return
		}
		if len(vals) != len(s.Columns) {
			t.Fatalf("Parse(%q) returned %d values for %d columns", line, len(vals), len(s.Columns))
		}
	})
}

// The fast parser accepts and rejects exactly the lines the reference does,
// with the same values.
func FuzzFastParserMatchesReference(f *testing.F) {
	for _, seed := range []string{`{"id":1,"amount":"12.5"}`, `{"id":1,"amount":-0.001}`, `{"id":1,"amount":1.0001}`, `{"id":1,"name":"a","score":1.5,"ok":true,"at":"2026-01-01T00:00:00Z","day":"2026-01-02","meta":{"a":[1,{"b":null}]}}`,
		`{"id":1,"x":tru}`, `{"id":1,"x":[1,,2]}`, `{"id":1,"\u0069d":2}`, `{"id":1,"id":2}`, `{"id":1e3}`, `{"id":01}`, `{"id":1,"name":"a\"b"}`,
		`{"id":1,"name":7}`, "{\"id\":1,\"\xff\":1}", `{"id":9007199254740993}`, `{"id":-0,"score":-0.0e+1}`, ` {"id":1} `, `{"id":1}x`, `{}`, `{"id":null}`} {
		f.Add([]byte(seed))
	}
	s := testSchema()
	p := NewParser(&s)
	f.Fuzz(func(t *testing.T, line []byte) {
		want, _, werr := s.Parse(line)
		got, gerr := p.Parse(line, nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: reference error %v, fast error %v", line, werr, gerr)
		}
		if werr != nil {
			if werr.Error() != gerr.Error() {
				t.Fatalf("%q: reasons differ: %v / %v", line, werr, gerr)
			}
			return
		}
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("%q column %s: reference %+v, fast %+v", line, s.Columns[i].Name, want[i], got[i])
			}
		}
	})
}

func TestDecimalIsExact(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "amount", Type: Decimal, Precision: 10, Scale: 2}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]int64{`12.34`: 1234, `"12.3"`: 1230, `-0.05`: -5, `7`: 700, `12345678.90`: 1234567890, `0.10`: 10} {
		vals, _, err := s.Parse([]byte(`{"amount":` + in + `}`))
		if err != nil || vals[0].I != want {
			t.Errorf("%s → %+v %v, want %d", in, vals, err, want)
		}
	}
	for in, want := range map[string]string{`1.234`: "3 digits after the point", `123456789.1`: "more than the 10 digits", `1e3`: "want a decimal number", `"x"`: "want a decimal number"} {
		if _, _, err := s.Parse([]byte(`{"amount":` + in + `}`)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	bad := Schema{Columns: []Column{{Name: "a", Type: Decimal, Precision: 19, Scale: 2}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "precision") {
		t.Errorf("precision 19: %v", err)
	}
}
