package schema

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
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
	vals, _, err := s.Parse([]byte(`{"id": 7, "name": "Zoë", "score": 1.5, "ok": false, "at": "2026-01-02T03:04:05.123456000+01:00", "day": "2026-01-02", "meta": {"a": [1, 2]}, "extra": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].I != 7 || vals[1].S != "Zoë" || vals[2].F != 1.5 || vals[3].B || vals[3].Null {
		t.Errorf("scalars %+v", vals[:4])
	}
	// UTC, in microseconds (zeros below them are no digits lost).
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
		`{"id": 1, "at": "2026-01-02T03:04:05.123456789Z"}`: "digits below the microsecond",
		`{"id": 1, "score": 1e400}`:                         "number out of range",
		`{"id": 1, "score": -1e400}`:                        "number out of range",
		`{"id": 1, "score": 1e-400}`:                        "number out of range",
		`{"id": 9223372036854775808}`:                       "number out of range",
		`{"id": 1e400}`:                                     "number out of range",
		`{"id": 1e-400}`:                                    "number out of range",
		`{"id": 1, "_line": 2}`:                             "reserved",
		`{"id": 1, "_feed_id": "x"}`:                        "reserved",
	} {
		_, _, err := s.Parse([]byte(line))
		var le *LineError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want a LineError containing %q", line, err, want)
		}
	}
	s.Unknown = UnknownReject
	if _, _, err := s.Parse([]byte(`{"id": 1, "extra": 2}`)); err == nil || !strings.Contains(err.Error(), `field "extra" is not declared`) {
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
		{Schema{Columns: []Column{{Name: "a", Type: String}, {Name: "a", Type: String}}}, `column "a" is declared twice`},
		{Schema{Columns: []Column{{Name: "userId", Type: String}, {Name: "userID", Type: String}}}, `column "userId" and column "userID" differ only in case`},
		{Schema{Columns: []Column{{Name: "o", Type: Object, Fields: []Column{{Name: "x", Type: String}, {Name: "X", Type: String}}}}}, `column "o.x" and column "o.X" differ only in case`},
		{Schema{Columns: []Column{{Name: "a", Type: String}, {Name: "", Type: String}}}, "column 2 has no name"},
		{Schema{Columns: []Column{{Name: "o", Type: Object, Fields: []Column{{Name: "", Type: String}}}}}, "column 1 of o has no name"},
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
// with the same values and levels in every leaf column.
func FuzzFastParserMatchesReference(f *testing.F) {
	for _, seed := range []string{`{"id":1,"amount":"12.5"}`, `{"id":1,"amount":-0.001}`, `{"id":1,"amount":1.0001}`, `{"id":1,"name":"a","score":1.5,"ok":true,"at":"2026-01-01T00:00:00Z","day":"2026-01-02","meta":{"a":[1,{"b":null}]}}`,
		`{"id":1,"x":tru}`, `{"id":1,"x":[1,,2]}`, `{"id":1,"\u0069d":2}`, `{"id":1,"id":2}`, `{"id":1e3}`, `{"id":01}`, `{"id":1,"name":"a\"b"}`,
		`{"id":1,"name":7}`, "{\"id\":1,\"\xff\":1}", `{"id":9007199254740993}`, `{"id":-0,"score":-0.0e+1}`, ` {"id":1} `, `{"id":1}x`, `{}`, `{"id":null}`,
		`{"id":1,"addr":{"city":"x","geo":[1.5,-2],"tags":[]}}`, `{"id":1,"addr":{"geo":[null]}}`, `{"id":1,"addr":{"city":"a","city":"b"}}`,
		`{"id":1,"events":[{"at":"2026-01-01T00:00:00.5+02:00","n":[1,2]},{"n":null},{}]}`, `{"id":1,"events":[[]]}`, `{"id":1,"addr":[]}`,
		`{"id":1,"at":"2026-02-29T00:00:00Z"}`, `{"id":1,"at":"2024-02-29T23:59:59.1234567891Z"}`, `{"id":1,"day":"0000-03-01"}`,
		`{"id":1,"ID":2}`, `{"id":1,"":2}`, `{"id":1,"addr":{"CITY":"x"}}`, `{"id":1,"events":[{"N":[1]}]}`, `{"id":1,"score":1e-400}`, `{"id":1e400}`,
		`{"id":1,"at":"2026-01-01T00:00:00.123456001Z"}`, `{"id":1,"at":"2026-01-01T00:00:00.123456000Z"}`,
		// Issue 9's review: exact integers, sub-µs digits after the ninth,
		// lone surrogates, reserved keys in another case, undeclared keys.
		`{"id":1.00000000000000000001}`, `{"id":9007199254740993e0}`, `{"id":1,"score":9007199254740993}`, `{"id":1,"score":123456789012345678901234567890}`,
		`{"id":1,"at":"2026-01-02T15:04:05.1234560000001Z"}`, `{"id":1,"name":"\ud800x"}`, `{"id":1,"x":["\udc00"]}`, `{"id":1,"name":"\ud83d\ude00"}`,
		`{"id":1,"_FEED_ID":1}`, `{"id":1,"größe":1,"GRÖSSE":2}`,
		// The second review: escapes in json columns.
		`{"id":1,"meta":"bad\q"}`, `{"id":1,"meta":"\u12"}`, `{"id":1,"meta":["\x"]}`, `{"id":1,"meta":"a\"b\u00e9"}`,
		`{"id":1,"b":1e400}`, `{"id":1,"c":{"":1}}`, `{"id":1,"meta":[1e-400]}`, `{"id":1,"meta":{"":1}}`, `{"id":1,"name":1e400}`, "\u00a0{\"id\":1}", "{\"id\":1}\v",
		`{"id":50000000000000000000e-2}`, `{"id":123456789012345678901.5e-3}`, `{"id":92233720368547758080e-1}`,
		`{"id":1,"score":9007199254740993.0}`, `{"id":1,"score":90071992547409930e-1}`, `{"id":1,"score":1e30}`, `{"id":1,"score":1.00000000000000000001}`, `{"id":1,"addr":{"geo":[9007199254740993.0]}}`,
		// Duplicate keys: rejects, at any depth.
		`{"id":1,"x":1,"x":2}`, `{"id":1,"meta":{"a":1,"a":1}}`, `{"id":1,"addr":{"zz":1,"zz":2}}`, `{"id":1,"x":{"q":[{"r":1,"r":2}]}}`,
		// Booleans, read in place.
		`{"id":1,"ok":true}`, `{"id":1,"ok":false }`, `{"id":1,"ok":tru}`, `{"id":1,"ok":truex}`, `{"id":1,"ok":falsey}`, `{"id":1,"ok":"true"}`,
		`{"id":1,"ok":true`, `{"id":1,"ok":True}`, `{"id":1,"ok":true,"ok":false}`, `{"id":1,"ok":t}`,
		"{\"id\":1,\"ok\":true\v}", `{"id":1,"ok":true/}`, "{\"id\":1,\"ok\":false\u00a0}"} {
		f.Add([]byte(seed))
	}
	s, l, p := nestedParser(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		want, _, werr := s.Parse(line)
		wantRows := NewRows(l)
		if werr == nil {
			l.AppendValues(wantRows, "", 0, want, "")
		}
		got := NewRows(l)
		gerr := p.AppendLine(got, line)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: reference error %v, fast error %v", line, werr, gerr)
		}
		if werr != nil {
			if werr.Error() != gerr.Error() {
				t.Fatalf("%q: reasons differ: %v / %v", line, werr, gerr)
			}
			if got.N != 0 {
				t.Fatalf("%q: rejected, yet %d rows added", line, got.N)
			}
			for i := range got.Leaves {
				if n, b := got.Leaves[i].Levels(), len(got.Leaves[i].Bytes); n != 0 || b != 0 {
					t.Fatalf("%q: rejected, yet leaf %d holds %d values, %d bytes", line, i, n, b)
				}
			}
			return
		}
		sameRows(t, string(line), wantRows, got)
	})
}

func sameRows(t *testing.T, what string, want, got *Rows) {
	t.Helper()
	if want.N != got.N {
		t.Fatalf("%s: %d rows, want %d", what, got.N, want.N)
	}
	for i := range want.Leaves {
		w, g := want.LeafValues(i), got.LeafValues(i)
		if len(w) != len(g) {
			t.Fatalf("%s leaf %d: %d values, want %d", what, i, len(g), len(w))
		}
		for j := range w {
			if w[j].RepetitionLevel() != g[j].RepetitionLevel() || w[j].DefinitionLevel() != g[j].DefinitionLevel() ||
				w[j].Column() != g[j].Column() || !parquet.Equal(w[j], g[j]) {
				t.Fatalf("%s leaf %d value %d: got %v (r%d d%d c%d), want %v (r%d d%d c%d)", what, i, j,
					g[j], g[j].RepetitionLevel(), g[j].DefinitionLevel(), g[j].Column(),
					w[j], w[j].RepetitionLevel(), w[j].DefinitionLevel(), w[j].Column())
			}
		}
	}
}

// nestedParser returns nestedSchema, its layout and a parser of it.
func nestedParser(tb testing.TB) (Schema, *Layout, *Parser) {
	tb.Helper()
	s := nestedSchema()
	l, err := NewLayout(&s, LayoutOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return s, l, NewParser(l)
}

// nestedSchema is testSchema plus an object with a list and a list of
// objects with a list inside.
func nestedSchema() Schema {
	s := testSchema()
	s.Columns = append(s.Columns,
		Column{Name: "addr", Type: Object, Nullable: true, Fields: []Column{
			{Name: "city", Type: String, Nullable: true},
			{Name: "geo", Type: List, Nullable: true, Items: &Column{Type: Float64, Nullable: true}},
			{Name: "tags", Type: List, Items: &Column{Type: String}, Nullable: true},
		}},
		Column{Name: "events", Type: List, Nullable: true, Items: &Column{Type: Object, Nullable: true, Fields: []Column{
			{Name: "at", Type: Timestamp, Nullable: true},
			{Name: "n", Type: List, Nullable: true, Items: &Column{Type: Int64}},
		}}},
	)
	return s
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
	for in, want := range map[string]string{`1.234`: "3 digits after the point", `123456789.1`: "more than the 10 digits", `1e3`: "want a decimal number", `"x"`: "want a decimal number",
		// Issue 9: quoted numbers follow JSON's grammar, on both sides of the point.
		`"5."`: `want a decimal number like 12.34, got "5."`, `".5"`: `want a decimal number like 12.34, got ".5"`, `"-.5"`: "want a decimal number", `"+5"`: "want a decimal number",
		`"007.5"`: `want a decimal number like 12.34, got "007.5"`, `"00"`: "want a decimal number", `"-01"`: "want a decimal number"} {
		if _, _, err := s.Parse([]byte(`{"amount":` + in + `}`)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	bad := Schema{Columns: []Column{{Name: "a", Type: Decimal, Precision: 19, Scale: 2}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "precision") {
		t.Errorf("precision 19: %v", err)
	}
}

// Well-formed lines, nested ones included, take the fast path: the
// reference is for the unusual line only.
func TestFastPathTakesWellFormedLines(t *testing.T) {
	_, l, p := nestedParser(t)
	for _, line := range []string{
		`{"id":1,"name":"a","score":1.5,"ok":true,"at":"2026-01-01T00:00:00.5Z","day":"2026-01-02","meta":{"a":[1,{"b":null}]},"amount":"1.5"}`,
		`{"id":2,"addr":{"city":"x","geo":[1.5,null,-2],"tags":[]},"events":[{"at":"2026-01-01T00:00:00+02:00","n":[1,2]},null,{"n":[]},{}]}`,
		`{"addr":null,"id":3,"events":[],"unknown":{"x":[1,"y"]}}`,
	} {
		r := NewRows(l)
		r.mark()
		if !p.fastLine(r, []byte(line), 0) {
			t.Errorf("%s: fast path declined", line)
		}
	}
}

// What the fast timestamp reader accepts, time.Parse accepts with the same
// microseconds.
func FuzzRFC3339MatchesTime(f *testing.F) {
	for _, seed := range []string{"2026-01-02T03:04:05Z", "2024-02-29T23:59:59.999999999-01:30", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00+23:59",
		"2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00.Z", "9999-12-31T23:59:59.1234567891Z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, ok := rfc3339Micros([]byte(s))
		if !ok {
			return
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%q: fast reader accepts, time.Parse says %v", s, err)
		}
		if tm.UnixMicro() != us {
			t.Fatalf("%q: fast reader %d µs, time.Parse %d", s, us, tm.UnixMicro())
		}
		if d, ok := isoDate([]byte(s[:10])); ok {
			td, err := time.Parse("2006-01-02", s[:10])
			if err != nil || td.Unix()/86400 != d {
				t.Fatalf("%q: fast date %d, time.Parse %v %v", s[:10], d, td, err)
			}
		}
	})
}

// plainRun skips exactly the plain bytes: everything before the index it
// returns is plain, and it stops at the first special byte it reaches.
func FuzzPlainRun(f *testing.F) {
	for _, seed := range []string{"abcdefghijklmnop\"", "abc\\def", "ab\x01cdefghijkl", "héllo wörld, long enough", "\x7f\x80", ""} {
		f.Add([]byte(seed))
	}
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	f.Fuzz(func(t *testing.T, b []byte) {
		p := plainRun(b, 0)
		for k := 0; k < p; k++ {
			if special(b[k]) {
				t.Fatalf("%q: skipped special byte %#x at %d (stopped at %d)", b, b[k], k, p)
			}
		}
		if p < len(b) && !special(b[p]) && p+8 <= len(b) {
			t.Fatalf("%q: stopped at plain byte %#x at %d", b, b[p], p)
		}
	})
}

// What the fast float reader accepts is a JSON number, read as
// strconv.ParseFloat reads it, to the bit.
func FuzzFloatFastMatchesStrconv(f *testing.F) {
	for _, seed := range []string{"0", "-0", "1.5", "-69.68541499253126", "0.18376608278451934", "9007199254740993", "1e22", "1e23", "123.456e-7",
		"0.000001", "1E+2", "01", "1.", ".5", "-", "1e", "3453.8", "1e-22", "4.9e-324", "0.03326394329057725", "9007199254740993",
		"18446744073709551615", "9999999999999999999e19", "1234567890123456789e-19", "0.5000000000000000555", "2.2250738585072014e-308"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseFloatFast([]byte(s))
		if !ok {
			return
		}
		if !validNumber([]byte(s)) {
			t.Fatalf("%q: fast reader accepts what JSON does not", s)
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: fast %v (%#x), strconv %v (%#x) %v", s, got, math.Float64bits(got), want, math.Float64bits(want), err)
		}
	})
}

// intAt reads what parseInt reads, and says where the number ends.
func FuzzIntAtMatchesParseInt(f *testing.F) {
	for _, seed := range []string{"0", "-0", "12", "01", "-", "123456789012345678", "1234567890123456789", "12.5", "7e3", "12,"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, end, ok := intAt([]byte(s), 0)
		if !ok {
			return
		}
		want, wok := parseInt([]byte(s[:end]))
		if !wok || want != n {
			t.Fatalf("%q: intAt %d (end %d), parseInt %d %v", s, n, end, want, wok)
		}
	})
}

// Lines laid out like the one before are read by template; a line that
// differs in any way (order, a missing or extra field, white space, a value
// of another shape) is read field by field instead, with the same result as
// the reference either way.
func TestTemplatesMatchReference(t *testing.T) {
	s, l, p := nestedParser(t)
	lines := []struct {
		line     string
		template bool // read by the template learned from the lines before
	}{
		{`{"id":1,"name":"a","addr":{"city":"x","geo":[1,2]}}`, false},
		{`{"id":2,"name":"b","addr":{"city":"y","geo":[]}}`, true},
		{`{"id":3,"name":"c","addr":{"city":"z","geo":null}}`, true},
		{`{"name":"d","id":4,"addr":{"city":"z","geo":null}}`, false},         // order changed: template missed, read again
		{`{"name":"e","id":5,"addr":{"city":"z","geo":null}}`, true},          // the new order, learned
		{`{"name":"f","id":6,"addr":{"geo":[3],"city":"w"}}`, false},          // nested order changed
		{`{"name":"g","id":7,"addr":{"geo":[3],"city":"w"},"x":1}`, false},    // an undeclared field: not learned
		{`{"name":"h", "id":8,"addr":{"geo":[3],"city":"w"}}`, true},          // white space: only addr by template
		{`{"name":"i","id":9,"addr":null}`, false},                            // no template for the line yet
		{`{"name":"j","id":10,"addr":{"geo":[3],"city":"w"}}`, true},          // addr is null in the template: still read
		{`{"name":"k","id":"11","addr":{"geo":[3],"city":"w"}}`, false},       // rejected: id is a string
		{`{"name":"l","id":12,"addr":{"geo":[3],"city":"w"},"id":13}`, false}, // duplicate key: the reference decides
	}
	for _, c := range lines {
		want, _, werr := s.Parse([]byte(c.line))
		wantRows := NewRows(l)
		if werr == nil {
			l.AppendValues(wantRows, "", 0, want, "")
		}
		got := NewRows(l)
		gerr := p.AppendLine(got, []byte(c.line))
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("%s: reference %v, parser %v", c.line, werr, gerr)
		}
		if p.usedTmpl != c.template {
			t.Errorf("%s: template used %v, want %v", c.line, p.usedTmpl, c.template)
		}
		sameRows(t, c.line, wantRows, got)
	}
}

// Elements walks a well-formed array's elements and refuses anything else.
func TestElements(t *testing.T) {
	for raw, want := range map[string]string{
		`[]`:                                 "",
		` [ 1 , "a\"b" , {"x":[1]}, null ] `: `1|"a\"b"|{"x":[1]}|null|`,
		`[[],[[]]]`:                          `[]|[[]]|`,
		`[1,]`:                               "false",
		`[1 2]`:                              "false",
		`[tru]`:                              "false",
		`["\x"]`:                             "false",
		`[1]x`:                               "false",
		`{"a":1}`:                            "false",
	} {
		var got strings.Builder
		if !Elements([]byte(raw), func(e []byte) { got.Write(e); got.WriteString("|") }) {
			got.Reset()
			got.WriteString("false")
		}
		if got.String() != want {
			t.Errorf("Elements(%s) = %s, want %s", raw, got.String(), want)
		}
	}
}

// Random decimals of 15 to 19 digits with exponents within ±19 — the
// floats strconv would otherwise read — come out bit for bit as strconv's.
func TestFloatFastAgreesWithStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	taken := 0
	for range 300_000 {
		digits := 15 + rng.IntN(5)
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(byte('1' + rng.IntN(9)))
		point := rng.IntN(digits)
		for k := 1; k < digits; k++ {
			if k == point {
				b.WriteByte('.')
			}
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "e%d", rng.IntN(30)-15)
		}
		str := b.String()
		got, ok := parseFloatFast([]byte(str))
		if !ok {
			continue
		}
		taken++
		want, err := strconv.ParseFloat(str, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%s: fast %v, strconv %v %v", str, got, want, err)
		}
	}
	if taken < 200_000 {
		t.Errorf("the fast path took only %d of 300,000", taken)
	}
}

// AppendRecord accepts and rejects exactly the records ParseRecord does,
// with the same values and levels, whatever follows the feed fields.
func FuzzAppendRecordMatchesReference(f *testing.F) {
	for _, seed := range []string{`}`, ` } `, `,"id":1}`, `,"id":1,"name":"a","addr":{"city":"x","geo":[1,null]},"events":[{"n":[1]}]}`,
		`,}`, `, }`, `,"id":1,}`, `,"id":1,"_line":7}`, `,"id":1,"_line":8}`, `,"id":1,"_feed_id":"g"}`, `,"id":1,"\u005fline":7}`,
		`,"id":"x"}`, `,"id":1}x`, `,"id":1}` + "\r", ",\"id\":1,\"name\":\"\xff\"}", `,"id":1,"x":tru}`, `x"id":1}`, `,"id":null}`} {
		f.Add([]byte(seed))
	}
	s, _, _ := nestedParser(f)
	l, err := NewLayout(&s, LayoutOptions{FeedColumns: true})
	if err != nil {
		f.Fatal(err)
	}
	p := NewParser(l)
	const prefix = `{"_feed_id":"f","_line":7`
	f.Fuzz(func(t *testing.T, rest []byte) {
		rec := append([]byte(prefix), rest...)
		feed, line, want, werr := s.ParseRecord(rec)
		if werr == nil && (feed != "f" || line != 7) {
			werr = &LineError{Reason: "_feed_id or _line given twice"}
		}
		wantRows := NewRows(l)
		if werr == nil {
			l.AppendValues(wantRows, "f", 7, want, "")
		}
		for _, at := range []int{len(prefix), 0} {
			got := NewRows(l)
			gerr := p.AppendRecord(got, rec, "f", 7, at)
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("%q at %d: reference error %v, AppendRecord error %v", rec, at, werr, gerr)
			}
			sameRows(t, string(rec), wantRows, got)
		}
	})
}

// Records laid out as PutToKinesis writes them take the fast path: they
// are typed without allocating.
func TestAppendRecordFastPath(t *testing.T) {
	s := nestedSchema()
	l, err := NewLayout(&s, LayoutOptions{FeedColumns: true})
	if err != nil {
		t.Fatal(err)
	}
	p, r := NewParser(l), NewRows(l)
	for _, rec := range []string{
		`{"_feed_id":"f","_line":7,"id":1,"name":"a","score":1.5,"addr":{"city":"x","geo":[1.5,null,-2],"tags":[]},"events":[{"n":[1,2]},null,{}]}`,
		`{"_feed_id":"f","_line":7,"id":1}`,
	} {
		at := strings.IndexAny(rec[len(`{"_feed_id":"f","_line":`):], ",}") + len(`{"_feed_id":"f","_line":`)
		b := []byte(rec)
		allocs := testing.AllocsPerRun(100, func() {
			if err := p.AppendRecord(r, b, "f", 7, at); err != nil {
				t.Fatal(err)
			}
			r.Reset()
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations a record", rec, allocs)
		}
	}
	if err := p.AppendRecord(r, []byte(`{"_feed_id":"f","_line":7}`), "f", 7, 25); err == nil || err.Error() != `field "id" is required` {
		t.Errorf("empty record: %v", err)
	}
	if err := NewParser(mustLayout(t, s)).AppendRecord(r, []byte(`{"_feed_id":"f","_line":7,"id":1}`), "f", 7, 25); err != ErrNoFeedColumns {
		t.Errorf("layout without feed columns: %v", err)
	}
}

func mustLayout(t *testing.T, s Schema) *Layout {
	t.Helper()
	l, err := NewLayout(&s, LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A decimal of up to 9 digits is an INT32 column, made without parquet-go's
// warning for an INT64 of fewer than 10 digits (printed on stderr at every
// conversion).
func TestDecimalLayoutPrintsNoWarning(t *testing.T) {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	defer log.SetOutput(os.Stderr)
	for _, p := range []int{1, 9, 10, 18} {
		s := Schema{Columns: []Column{{Name: "d", Type: Decimal, Precision: p, Scale: 0}}}
		if _, err := NewLayout(&s, LayoutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() > 0 {
		t.Errorf("logged %q", buf.String())
	}
}
