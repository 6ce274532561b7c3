package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// bothParsers parses line with the reference and the fast parser of s,
// checks that they agree (accept, or reject for the same reason), and
// returns the fast parser's row (nil when rejected) and the reject.
func bothParsers(t *testing.T, s Schema, line string) (*Rows, *LineError) {
	t.Helper()
	l := mustLayout(t, s)
	r := NewRows(l)
	_, _, refErr := s.Parse([]byte(line))
	err := NewParser(l).AppendLine(r, []byte(line))
	var want, got *LineError
	if (refErr == nil) != (err == nil) || refErr != nil && (!errors.As(refErr, &want) || !errors.As(err, &got) || *want != *got) {
		t.Fatalf("%s: reference says %v, parser %v", line, refErr, err)
	}
	if err != nil {
		return nil, got
	}
	return r, nil
}

// An int64 column takes a number that is exactly an integer, however
// written, and keeps its exact value; a number with a fraction, however
// small, is rejected, never rounded to an integer (as a float64 would).
func TestInt64DecidesIntegerOnTheText(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "n", Type: Int64, Nullable: true}}}
	for in, want := range map[string]int64{
		"1.0": 1, "1e3": 1000, "1.5e1": 15, "-0.0": 0, "0e-400": 0, "123.4500e2": 12345,
		"9007199254740993e0": 9007199254740993, "9007199254740993.000": 9007199254740993,
		"9.223372036854775807e18": 9223372036854775807, "-9.223372036854775808e18": -9223372036854775808,
		"10000000000000000000e-1": 1000000000000000000,
	} {
		r, le := bothParsers(t, s, `{"n":`+in+`}`)
		if le != nil {
			t.Errorf("%s rejected: %s", in, le.Reason)
			continue
		}
		if got := r.LeafValues(0)[0].Int64(); got != want {
			t.Errorf("%s stored as %d, want %d", in, got, want)
		}
	}
	for in, reason := range map[string]string{
		"1.00000000000000000001":  "want int64, got a number with a fraction",
		"0.99999999999999999999":  "want int64, got a number with a fraction",
		"4503599627370497.5":      "want int64, got a number with a fraction",
		"9007199254740993.5e0":    "want int64, got a number with a fraction",
		"1e-7":                    "want int64, got a number with a fraction",
		"9.223372036854775808e18": "number out of range (int64 holds",
		"1e19":                    "number out of range (int64 holds",
		"1e400":                   "number out of range (no number column holds it",
		"1e-400":                  "number out of range (no number column holds it",
	} {
		_, le := bothParsers(t, s, `{"n":`+in+`}`)
		if le == nil || !strings.HasPrefix(le.Reason, `field "n": `+reason) {
			t.Errorf("%s: %+v, want %q", in, le, reason)
			continue
		}
		if wantMismatch := !strings.Contains(reason, "no number column"); le.TypeMismatch != wantMismatch {
			t.Errorf("%s: TypeMismatch %v", in, le.TypeMismatch)
		}
	}
}

// A float64 column rejects an integer beyond ±2^53 that float64 would
// round, however it is written (inference keeps such integers exact, in
// int64 or string columns); integers float64 holds exactly, and numbers
// with a fraction (rounded to float64's 15–17 digits), are taken.
func TestFloat64RejectsIntegersItWouldRound(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "f", Type: Float64, Nullable: true}}}
	for in, want := range map[string]float64{
		"9007199254740992": 1 << 53, "-9007199254740992": -(1 << 53), "9007199254740994": 9007199254740994,
		"1152921504606846976": 1 << 60, "1237940039285380274899124224": 1 << 90, "1.5": 1.5,
		"1e22": 1e22, "9007199254740992.0": 1 << 53, "4503599627370497.5": 4503599627370497.5, "1.00000000000000000001": 1,
	} {
		r, le := bothParsers(t, s, `{"f":`+in+`}`)
		if le != nil {
			t.Errorf("%s rejected: %s", in, le.Reason)
			continue
		}
		if got := r.LeafValues(0)[0].Double(); got != want {
			t.Errorf("%s stored as %v, want %v", in, got, want)
		}
	}
	// Review 10: an integer however written (a fraction of zeros, an
	// exponent) is rejected as the plain spelling is.
	for _, in := range []string{"9007199254740993", "-9007199254740993", "123456789012345678901234567890", "18446744073709551615", "1237940039285380274899124225",
		"9007199254740993e0", "9007199254740993.0", "90071992547409930e-1", "-9007199254740993.000e0", "1.2345678901234567890123e29"} {
		_, le := bothParsers(t, s, `{"f":`+in+`}`)
		if le == nil || le.Reason != `field "f": want float64, got a number beyond ±2^53` || !le.TypeMismatch {
			t.Errorf("%s: %+v", in, le)
		}
	}
	// Up to 15 significant digits float64 reads back as written, however
	// large: a float, not an id to keep exact.
	for _, in := range []string{"1e30", "6.02214076e23", "-1.5e300", "123456789012345e10"} {
		r, le := bothParsers(t, s, `{"f":`+in+`}`)
		want, _ := strconv.ParseFloat(in, 64)
		if le != nil {
			t.Errorf("%s: rejected: %s", in, le.Reason)
			continue
		}
		if got := r.LeafValues(0)[0].Double(); got != want {
			t.Errorf("%s stored as %v, want %v", in, got, want)
		}
	}
}

// Digits of a fraction of a second after the sixth must be 0, however many
// there are: time.Parse keeps nine and drops the rest, which hid them.
func TestTimestampDigitsBelowTheMicrosecondAnywhere(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "at", Type: Timestamp, Nullable: true},
		{Name: "custom", Type: Timestamp, Nullable: true, Formats: []string{"2006-01-02 15:04:05.999999999"}}}}
	for _, in := range []string{
		`{"at":"2026-01-02T15:04:05.1234560000001Z"}`,
		`{"at":"2026-01-02T15:04:05.0000000000000000009Z"}`,
		`{"at":"2026-01-02T15:04:05.0000001Z"}`,
		`{"custom":"2026-01-02 15:04:05.1234560000001"}`,
	} {
		_, le := bothParsers(t, s, in)
		if le == nil || !strings.Contains(le.Reason, "digits below the microsecond") {
			t.Errorf("%s: %+v", in, le)
		}
	}
	r, le := bothParsers(t, s, `{"at":"2026-01-02T15:04:05.1234560000000Z","custom":"2026-01-02 15:04:05.123456000000"}`)
	if le != nil {
		t.Fatal(le.Reason)
	}
	const want = 1767366245123456 // 2026-01-02T15:04:05.123456Z
	if a, c := r.LeafValues(0)[0].Int64(), r.LeafValues(1)[0].Int64(); a != want || c != want {
		t.Errorf("stored %d and %d, want %d", a, c, want)
	}
	if IsTimestamp([]byte(`"2026-01-02T15:04:05.1234560000001Z"`)) || !IsTimestamp([]byte(`"2026-01-02T15:04:05.1234560000000Z"`)) {
		t.Error("IsTimestamp does not see digits below the microsecond after the ninth")
	}
}

// A date column read with a time format takes the UTC day, floored:
// before 1970 too.
func TestDateFromTimeBeforeTheEpoch(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "d", Type: Date, Nullable: true, Formats: []string{"2006-01-02T15:04:05Z07:00"}}}}
	for in, want := range map[string]int32{
		"1969-12-31T12:00:00Z": -1, "1969-12-31T00:00:00Z": -1, "1969-12-30T23:59:59Z": -2,
		"1970-01-01T00:00:00Z": 0, "1970-01-01T23:59:59Z": 0, "1969-12-31T23:00:00-02:00": 0,
		"1900-01-01T06:00:00Z": -25567,
	} {
		r, le := bothParsers(t, s, `{"d":"`+in+`"}`)
		if le != nil {
			t.Errorf("%s: %s", in, le.Reason)
			continue
		}
		if got := r.LeafValues(0)[0].Int32(); got != want {
			t.Errorf("%s stored as day %d, want %d", in, got, want)
		}
	}
}

// A \u escape that is half a surrogate pair is rejected wherever it is (a
// declared string, a json column, an undeclared field, a key), not decoded
// as U+FFFD; a whole pair is a character like any other.
func TestLoneSurrogatesAreRejected(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "s", Type: String, Nullable: true}, {Name: "j", Type: JSON, Nullable: true},
		{Name: "l", Type: List, Nullable: true, Items: &Column{Type: String}}}}
	for in, at := range map[string]int{
		`{"s":"\ud800x"}`:               7,
		`{"s":"a\udc00"}`:               8,
		`{"s":"\ud800\u0041"}`:          7,
		`{"s":"\ud800"}`:                7,
		`{"j":{"k":"\udbff"}}`:          12,
		`{"l":["a","\udfff"]}`:          12,
		`{"x":"\ud800"}`:                7,
		`{"x":{"y":["\udc00"]}}`:        13,
		`{"\ud800":1,"\udbff":2}`:       3,
		` {"s":"ok", "\ud800":1}`:       14,
		`{"s":"\\ud800"}`:               0, // an escaped backslash, then text
		`{"s":"\ud83d\ude00"}`:          0,
		`{"s":"\uD83D\uDE00\u00e9"}`:    0,
		`{"j":"\ud83d\ude00","x":"\\"}`: 0,
	} {
		r, le := bothParsers(t, s, in)
		switch {
		case at == 0 && le != nil:
			t.Errorf("%s rejected: %s", in, le.Reason)
		case at > 0 && (le == nil || le.Reason != fmt.Sprintf(`invalid \u escape: lone surrogate at byte %d`, at)):
			t.Errorf("%s: %+v, want a lone surrogate at byte %d", in, le, at)
		case at == 0 && strings.Contains(in, `"s":"\ud83d`):
			leaf, _ := mustLayout(t, s).Parquet.Lookup("s")
			if got := string(r.LeafValues(leaf.ColumnIndex)[0].ByteArray()); got != "😀" {
				t.Errorf("%s stored %q", in, got)
			}
		}
	}
	if _, _, _, err := s.ParseRecord([]byte(`{"_feed_id":"f","_line":1,"s":"\ud800"}`)); err == nil || !strings.Contains(err.Error(), "lone surrogate") {
		t.Errorf("ParseRecord: %v", err)
	}
}

// _feed_id and _line are reserved in any case, as Snowflake compares
// names: in a schema, and as a line's key (which was dropped silently
// when its case differed, and rejected when it did not).
func TestReservedNamesIgnoreCase(t *testing.T) {
	for _, name := range []string{"_LINE", "_Feed_Id", "_line", "_feed_id"} {
		s := Schema{Columns: []Column{{Name: "id", Type: Int64}, {Name: name, Type: String}}}
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "is reserved") {
			t.Errorf("column %s: %v", name, err)
		}
	}
	s := Schema{Columns: []Column{{Name: "id", Type: Int64}}}
	for _, u := range []string{UnknownDrop, UnknownReject} {
		s.Unknown = u
		for _, key := range []string{"_FEED_ID", "_Line", "_line", "_feed_id"} {
			_, le := bothParsers(t, s, `{"id":1,"`+key+`":"x"}`)
			if le == nil || !strings.HasPrefix(le.Reason, `field "`+key+`" is reserved for feedpipe`) {
				t.Errorf("%s key %s: %+v", u, key, le)
			}
		}
	}
	// Nested, such a key is the object's own.
	s.Columns = append(s.Columns, Column{Name: "o", Type: Object, Nullable: true, Fields: []Column{{Name: "a", Type: Int64, Nullable: true}}})
	s.Unknown = UnknownDrop
	if _, le := bothParsers(t, s, `{"id":1,"o":{"_LINE":1}}`); le != nil {
		t.Errorf("nested: %s", le.Reason)
	}
}

// Sound tells lines every schema rejects from lines with two spellings of
// a name (rejected when one is a column) and lines some schema takes.
func TestSound(t *testing.T) {
	for line, want := range map[string]Soundness{
		`{"a":1,"b":{"c":[{"d":1}]}}`:       SoundLine,
		`{"a":1,"a":2}`:                     Unsound, // one key twice: a value would be lost
		`{"a":1,"\u0061":2}`:                Unsound,
		`{"a":{"b":[{"c":1,"c":1}]}}`:       Unsound,
		`{"":1,"":2}`:                       Unsound, // an empty key twice: a duplicate too
		`{"a":1,"A":2}`:                     TwoSpellings,
		`{"a":1,"b":{"c":[{"d":1,"D":2}]}}`: TwoSpellings,
		`{"a":1,"\u0041":2}`:                TwoSpellings,
		`{"a":1,"A":2,"":3}`:                TwoSpellings, // -unknown extra keeps the top-level empty key
		`{"":1}`:                            TwoSpellings,
		`{"a":1,"b":{"":1}}`:                Unsound,
		`{"a":{"":1}}`:                      Unsound,
		`{"_Line":1}`:                       Unsound,
		`{"a":{"_line":1}}`:                 SoundLine,
		"{\"a\":\"\xff\"}":                  Unsound,
		`{"a":"\udc00"}`:                    Unsound,
		`{"a":[1e400]}`:                     Unsound,
		`{"a":1e-400}`:                      Unsound,
		`{"a":0e-400}`:                      SoundLine,
		`{"a":1,}`:                          Unsound,
		`[1]`:                               Unsound,
		`{"a":1} {}`:                        Unsound,
		`{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,"k23":23,"k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30,"k31":31,"k32":32,"k33":33,"K1":0}`: TwoSpellings,
		// Beyond 32 keys (a map): an exact duplicate after another spelling.
		`{"K1":1,"k1":2,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,"k23":23,"k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30,"k31":31,"k32":32,"k33":33,"k1":0}`: Unsound,
	} {
		if got := Sound([]byte(line)); got != want {
			t.Errorf("Sound(%s) = %d, want %d", line, got, want)
		}
	}
}

// The fast parser's oddKey, which folds keys without allocating, agrees
// with OddKey (FoldName) on keys of every kind: ASCII, letters whose lower
// case is longer or shorter in UTF-8, long keys.
func TestOddKeyFoldsAsFoldName(t *testing.T) {
	long := strings.Repeat("Größe_", 12)
	cols := []Column{{Name: "kelvin", Type: Int64}, {Name: "straße", Type: Int64}, {Name: "ⱥb", Type: Int64},
		{Name: "i̇d", Type: Int64}, {Name: long, Type: Int64}, {Name: "x", Type: Int64}}
	l := mustLayout(t, Schema{Columns: cols})
	for _, key := range []string{"KELVIN", "\u212aELVIN", "Kelvin", "kelvi", "STRASSE", "STRAßE", "Straße", "ȺB", "ȺBc",
		"İD", "İd", "ID", strings.ToUpper(long), long + "x", strings.ToUpper(long) + "X", "X", "y", "ſ", "名前", strings.Repeat("K", 300)} {
		if key == "x" || key == long {
			continue
		}
		want := OddKey(cols, key) != ""
		if got := l.oddKey(0, []byte(key)); got != want {
			t.Errorf("oddKey(%q) = %v, OddKey says %v", key, got, want)
		}
	}
	if !l.oddKey(0, []byte("\u212aELVIN")) || !l.oddKey(0, []byte(strings.ToUpper(long))) {
		t.Error("case variants not odd")
	}
}

// A SoundChecker reads plain lines without allocating (inference checks
// every sample line).
func TestSoundCheckerDoesNotAllocate(t *testing.T) {
	line := []byte(`{"a":1,"b":{"c":[{"d":1,"e":"x"}],"f":true},"g":[1,2,3],"h":"2026-01-02T15:04:05Z"}`)
	var c SoundChecker
	c.Check(line)
	if n := testing.AllocsPerRun(100, func() { c.Check(line) }); n != 0 {
		t.Errorf("%v allocations per line", n)
	}
}

// A key given twice in one object, at any depth, declared or not, in a
// field kept as JSON text or dropped, is a reject that names the key in
// its detail (its reason stays free of the line's data): both parsers
// agree. Keys are compared as decoded; the same key in two objects, or two
// spellings of a name, are not duplicates.
func TestDuplicateKeysRejected(t *testing.T) {
	s := Schema{Columns: []Column{
		{Name: "id", Type: Int64},
		{Name: "o", Type: Object, Nullable: true, Fields: []Column{{Name: "a", Type: Int64, Nullable: true}}},
		{Name: "l", Type: List, Nullable: true, Items: &Column{Type: Object, Fields: []Column{{Name: "b", Type: Int64, Nullable: true}}}},
		{Name: "j", Type: JSON, Nullable: true},
	}, Unknown: UnknownDrop}
	for _, c := range []struct{ line, key string }{
		{`{"id":1,"id":1}`, "id"},
		{`{"id":1,"o":{"a":1,"a":2}}`, "a"},
		{`{"id":1,"o":{"a":1,"z":1,"z":2}}`, "z"},
		{`{"id":1,"l":[{"b":1},{"b":2,"b":3}]}`, "b"},
		{`{"id":1,"j":{"k":[{"q":1,"q":1}]}}`, "q"},
		{`{"id":1,"x":1,"y":2,"x":3}`, "x"},
		{`{"id":1,"x":{"deep":{"w":1,"w":1}}}`, "w"},
		{`{"id":1,"x":1,"\u0078":2}`, "x"},
	} {
		_, le := bothParsers(t, s, c.line)
		want := fmt.Sprintf("key %q appears twice in one object: one of its values would be lost; give each key once", c.key)
		if le == nil || le.Reason != "a key appears twice in one object: one of its values would be lost; give each key once" || le.Detail != want {
			t.Errorf("%s: %+v, want detail %q", c.line, le, want)
		}
	}
	for _, line := range []string{
		`{"id":1,"o":{"a":1},"x":{"a":1},"l":[{"b":1},{"b":2}],"j":{"a":{"a":1}}}`,
		`{"id":1,"x":1,"X":2}`,
	} {
		if _, le := bothParsers(t, s, line); le != nil {
			t.Errorf("%s rejected: %s", line, le.Reason)
		}
	}
	// With _extra, an empty top-level key is kept there once; twice, the
	// line is a reject (keeping one would lose the other).
	le, err := NewLayout(&s, LayoutOptions{Extra: true})
	if err != nil {
		t.Fatal(err)
	}
	rows := NewRows(le)
	if err := NewParser(le).AppendLine(rows, []byte(`{"id":1,"":"first"}`)); err != nil {
		t.Errorf("one empty key with _extra: %v", err)
	}
	var dup *LineError
	if err := NewParser(le).AppendLine(rows, []byte(`{"id":1,"":"first","":"second"}`)); !errors.As(err, &dup) || dup.Detail != `key "" appears twice in one object: one of its values would be lost; give each key once` {
		t.Errorf("two empty keys with _extra: %v", err)
	}
	// Under -unknown reject, a top-level duplicate is a reject as well.
	s.Unknown = UnknownReject
	if _, le := bothParsers(t, s, `{"id":1,"id":2}`); le == nil {
		t.Error("duplicate id taken under -unknown reject")
	}
}

// The walker validates JSON as encoding/json does (it replaced a
// json.Valid that allocated under the race detector's pools): in its
// duplicate-finding mode, which walks past empty and reserved keys, it
// fails on a valid value only for a duplicate key, a number out of range
// or invalid UTF-8, and never passes an invalid one.
func FuzzWalkValidatesAsEncodingJSON(f *testing.F) {
	for _, seed := range []string{`{"a":1}`, `[1,2,{"b":[true,false,null]}]`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1 "b":2}`, `01`, `-`, `1.`, `1e`, `"\x"`, `"\u12"`, `truex`, `nul`,
		`{"a":{"a":{"a":[]}}}`, ` {"x":"y"} `, `{"a":1}}`, `]`, `{`, `"a`, `{"":1,"":2}`, `[1e400]`, `{"k":"\ud800"}`, "\"\x01\"", `{"a":-0.0e+1}`, `[]`, `{}`, `""`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		w := walker{findDup: true}
		got := w.walk(raw, false)
		valid := json.Valid(raw)
		if got && !valid {
			t.Fatalf("%q: walk passes invalid JSON", raw)
		}
		if valid && !got && !w.dupFound && utf8.Valid(raw) { // encoding/json takes invalid UTF-8 in strings; Parse rejects it
			if k, _ := nestedProblem(raw); k != "number" {
				t.Fatalf("%q: walk fails valid JSON with no duplicate key or number out of range", raw)
			}
		}
	})
}

// A nested value the parser drops or keeps as JSON text is checked by the
// parser's own walker, kept between lines: no allocation a line.
func TestNestedCheckDoesNotAllocate(t *testing.T) {
	s := Schema{Columns: []Column{
		{Name: "id", Type: Int64},
		{Name: "j", Type: JSON, Nullable: true},
	}, Unknown: UnknownDrop}
	l, err := NewLayout(&s, LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, r := NewParser(l), NewRows(l)
	for _, line := range []string{
		`{"id":1,"j":{"a":[1,{"b":2,"c":[true,null]}],"d":"x"}}`,
		`{"id":1,"dropped":{"a":[1,{"b":2}],"c":{"d":[[],{}]}}}`,
	} {
		b := []byte(line)
		allocs := testing.AllocsPerRun(100, func() {
			if err := p.AppendLine(r, b); err != nil {
				t.Fatal(err)
			}
			r.Reset()
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations a line", line, allocs)
		}
	}
}
