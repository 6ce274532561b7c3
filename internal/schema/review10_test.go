package schema

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// A json column keeps only valid JSON: a string with an escape JSON does
// not have (\q, a \u without four hex digits) is rejected by the fast
// parser as by the reference, never stored as it is.
func TestJSONColumnRejectsInvalidEscapes(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "m", Type: JSON, Nullable: true}}}
	for _, in := range []string{`"bad\q"`, `"\u12"`, `"\u12g4"`, `"a\"`, `["\x"]`, `{"a":"\u"}`} {
		_, le := bothParsers(t, s, `{"m":`+in+`}`)
		if le == nil || !strings.Contains(le.Reason, "invalid JSON") {
			t.Errorf("%s: %+v, want an invalid JSON reject", in, le)
		}
	}
	for in, want := range map[string]string{`"a\"b"`: `"a\"b"`, `"\u00e9\n\/"`: `"\u00e9\n\/"`, `"\\q"`: `"\\q"`} {
		r, le := bothParsers(t, s, `{"m":`+in+`}`)
		if le != nil {
			t.Errorf("%s rejected: %s", in, le.Reason)
			continue
		}
		if got := string(r.LeafValues(0)[0].ByteArray()); got != want {
			t.Errorf("%s stored as %s, want %s", in, got, want)
		}
	}
	// After a line that teaches the parser the column's layout.
	l := mustLayout(t, s)
	p := NewParser(l)
	r := NewRows(l)
	if err := p.AppendLine(r, []byte(`{"m":{"a":1}}`)); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`{"m":"bad\q"}`, `{"m":"\u12"}`} {
		_, _, ref := s.Parse([]byte(line))
		err := p.AppendLine(r, []byte(line))
		if ref == nil || err == nil || ref.Error() != err.Error() {
			t.Errorf("%s: reference %v, parser %v", line, ref, err)
		}
	}
	if r.N != 1 {
		t.Errorf("%d rows, want 1", r.N)
	}
}

func TestValidEscapesDoesNotAllocate(t *testing.T) {
	raw := []byte(`"a\"b\\c\u00e9\n"`)
	if n := testing.AllocsPerRun(100, func() { validEscapes(raw) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// Review 10, item 2: what Sound calls impossible for every schema, Parse
// rejects under any schema (a number out of range or an empty key below
// the top level, in a dropped field or a json column too; white space
// other than JSON's around the line), with the fast parser agreeing; a
// top-level empty key is only an odd key (kept in _extra, else rejected).
func TestSoundMatchesWhatEveryParseRejects(t *testing.T) {
	schemas := []Schema{
		{Columns: []Column{{Name: "a", Type: Int64, Nullable: true}}, Unknown: UnknownDrop},
		{Columns: []Column{{Name: "a", Type: Int64, Nullable: true}, {Name: "b", Type: JSON, Nullable: true}, {Name: "c", Type: JSON, Nullable: true}}, Unknown: UnknownDrop},
		{Columns: []Column{{Name: "a", Type: Int64, Nullable: true}, {Name: "b", Type: String, Nullable: true, AnyScalar: true}}, Unknown: UnknownDrop},
	}
	for _, line := range []string{`{"a":2,"b":1e400}`, `{"a":3,"c":{"":1}}`, `{"a":3,"c":[{"x":{"":1}}]}`, `{"a":1,"b":[1e-400]}`,
		"\u00a0{\"a\":1}", "{\"a\":1}\v", "\f{\"a\":1}", "{\"a\":1}\u2028"} {
		if Sound([]byte(line)) != Unsound {
			t.Errorf("Sound(%q) is not Unsound", line)
		}
		for _, s := range schemas {
			if _, le := bothParsers(t, s, line); le == nil {
				t.Errorf("%q accepted by %v", line, s.Columns)
			}
		}
	}
	for _, line := range []string{`{"a":1,"b":1e300}`, `{"a":1,"c":{"x":0e-400}}`, " \t{\"a\":1}\r\n", `{"a":1,"b":"\"\":1e400"}`} {
		if Sound([]byte(line)) != SoundLine {
			t.Errorf("Sound(%q) is not SoundLine", line)
		}
		for _, s := range schemas {
			if _, le := bothParsers(t, s, line); le != nil {
				t.Errorf("%q rejected by %v: %s", line, s.Columns, le.Reason)
			}
		}
	}
}

// Review 10, item 5: a timestamp or date format with a zone abbreviation
// (MST) is refused: time.Parse makes an unknown one UTC and a known one the
// host's offset, so the stored value depended on the machine's TZ.
func TestFormatsWithZoneAbbreviationsAreRefused(t *testing.T) {
	for _, typ := range []Type{Timestamp, Date} {
		for _, f := range []string{"Jan _2 2006 3:04PM MST", time.RFC1123, time.UnixDate, "2006-01-02 15:04:05 MST"} {
			s := Schema{Columns: []Column{{Name: "at", Type: typ, Nullable: true, Formats: []string{"2006-01-02", f}}}}
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), "zone abbreviation") || !strings.Contains(err.Error(), "-0700 or Z07:00") {
				t.Errorf("%s %q: %v", typ, f, err)
			}
			if _, err := NewLayout(&s, LayoutOptions{}); err == nil {
				t.Errorf("%s %q: layout made", typ, f)
			}
		}
	}
	s := Schema{Columns: []Column{{Name: "at", Type: Timestamp, Nullable: true, Formats: []string{"Jan _2 2006 15:04 -0700", time.RFC1123Z}}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, le := bothParsers(t, s, `{"at":"Mon, 02 Jan 2006 15:04:05 -0700"}`)
	if le != nil || r.LeafValues(0)[0].Int64() != time.Date(2006, 1, 2, 22, 4, 5, 0, time.UTC).UnixMicro() {
		t.Errorf("numeric offset: %+v", le)
	}
	if err := (&Schema{Columns: []Column{{Name: "n", Type: Int64, Formats: []string{"2006"}}}}).Validate(); err == nil {
		t.Error("formats on an int64 column accepted")
	}
}

// Review 10, item 6: the reference decides on the text (intText) whether
// an int64 value with many digits and an exponent or fraction is an
// integer in range: ParseInt's ErrRange at the 20th digit is not the
// answer. Both parsers agree, with -unknown reject too (reference path).
func TestInt64ManyDigitsWithExponentOnTheText(t *testing.T) {
	for _, unknown := range []string{UnknownDrop, UnknownReject} {
		s := Schema{Columns: []Column{{Name: "id", Type: Int64, Nullable: true}}, Unknown: unknown}
		for in, want := range map[string]int64{"50000000000000000000e-2": 500000000000000000, "-92233720368547758080e-1": -9223372036854775808,
			"123456789012345678900000.000e-5": 1234567890123456789} {
			r, le := bothParsers(t, s, `{"id":`+in+`}`)
			if le != nil {
				t.Errorf("%s %s rejected: %s", unknown, in, le.Reason)
				continue
			}
			if got := r.LeafValues(0)[0].Int64(); got != want {
				t.Errorf("%s %s stored as %d", unknown, in, got)
			}
			if vals, _, err := s.Parse([]byte(`{"id":` + in + `}`)); err != nil || vals[0].I != want {
				t.Errorf("%s %s: reference %v %v", unknown, in, vals, err)
			}
		}
		for in, reason := range map[string]string{
			"123456789012345678901.5e-3": `field "id": want int64, got a number with a fraction`,
			"12345678901234567890.5":     `field "id": want int64, got a number with a fraction`,
			"92233720368547758080e-1":    `field "id": number out of range (int64 holds`,
			"12345678901234567890":       `field "id": number out of range (int64 holds`,
		} {
			_, le := bothParsers(t, s, `{"id":`+in+`}`)
			if le == nil || !strings.HasPrefix(le.Reason, reason) {
				t.Errorf("%s %s: %+v, want %q", unknown, in, le, reason)
			}
		}
	}
}

// floatHoldsText reads integers of any spelling by their significant
// digits and power of ten, so a long run of zeros costs no big number.
func TestFloatHoldsTextBySignificantDigits(t *testing.T) {
	for in, want := range map[string]bool{
		"1" + strings.Repeat("0", 500) + "e-480": true, // 10^20, exact
		"0.00100000000000000000000e23":           true, // 10^20
		"9007199254740993.0":                     false, "1e30": true, "6.02214076e23": true, "1234567890123456e20": false, "1e22": true, "1.5": true, "9007199254740993.5": true,
		"1" + strings.Repeat("0", 500) + "1e-300":  true, // a fraction: rounded, as float64 is
		"1" + strings.Repeat("0", 5000) + "e-4724": true, // 10^276: one significant digit
	} {
		f, _ := strconv.ParseFloat(in, 64)
		t0 := time.Now()
		if got := floatHoldsText([]byte(in), f); got != want {
			t.Errorf("%.40s: %v", in, got)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("%.40s: %v", in, d)
		}
	}
}
