package schema

import (
	"errors"
	"strings"
	"testing"
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
		if got := r.Leaves[0][0].Int64(); got != want {
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
// round (inference keeps such integers exact, in int64 or string
// columns); integers float64 holds exactly, and numbers written with a
// fraction or exponent, are taken.
func TestFloat64RejectsIntegersItWouldRound(t *testing.T) {
	s := Schema{Columns: []Column{{Name: "f", Type: Float64, Nullable: true}}}
	for in, want := range map[string]float64{
		"9007199254740992": 1 << 53, "-9007199254740992": -(1 << 53), "9007199254740994": 9007199254740994,
		"1152921504606846976": 1 << 60, "1237940039285380274899124224": 1 << 90, "1.5": 1.5,
		"9007199254740993e0": 9007199254740992, "1.2345678901234567890123e29": 1.2345678901234568e+29,
	} {
		r, le := bothParsers(t, s, `{"f":`+in+`}`)
		if le != nil {
			t.Errorf("%s rejected: %s", in, le.Reason)
			continue
		}
		if got := r.Leaves[0][0].Double(); got != want {
			t.Errorf("%s stored as %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"9007199254740993", "-9007199254740993", "123456789012345678901234567890", "18446744073709551615", "1237940039285380274899124225"} {
		_, le := bothParsers(t, s, `{"f":`+in+`}`)
		if le == nil || le.Reason != `field "f": want float64, got a number beyond ±2^53` || !le.TypeMismatch {
			t.Errorf("%s: %+v", in, le)
		}
	}
}
