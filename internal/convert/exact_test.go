package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// pyColumns reads pq's columns back with pyarrow, numbers exact (Python
// prints its ints in full and its floats so that they read back the same).
func pyColumns(t *testing.T, pq []byte) map[string][]any {
	t.Helper()
	out := pyarrowtest.Run(t, `
import sys, json, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({n: t.column(n).to_pylist() for n in t.column_names}, default=str))
`, writeTemp(t, pq))
	var cols map[string][]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&cols); err != nil {
		t.Fatal(err)
	}
	return cols
}

func reasonsByLine(rej []rejected) map[int64]string {
	m := map[int64]string{}
	for _, r := range rej {
		m[r.line] = r.reason
	}
	return m
}

// Issue 9, review 2: an int64 column decides integer-ness on the number's
// text, so a fraction below float64's precision is rejected, not rounded,
// and an integer written with an exponent keeps its exact value.
func TestConvertInt64NeverRoundsAFraction(t *testing.T) {
	in := strings.Join([]string{
		`{"n":1.00000000000000000001}`,
		`{"n":0.99999999999999999999}`,
		`{"n":4503599627370497.5}`,
		`{"n":9007199254740993e0}`,
		`{"n":1e-400}`,
		`{"n":12.5e1}`,
	}, "\n") + "\n"
	s := &schema.Schema{Columns: []schema.Column{{Name: "n", Type: schema.Int64, Nullable: true}}}
	pq, _, rej := convertBytes(t, []byte(in), Options{Schema: s})
	got := reasonsByLine(rej)
	for line := int64(1); line <= 3; line++ {
		if !strings.HasPrefix(got[line], `field "n": want an integer, got `) || strings.Contains(got[line], "type changed") {
			t.Errorf("line %d: %q", line, got[line])
		}
	}
	if !strings.HasPrefix(got[5], `field "n": number out of range: 1e-400 (no number column holds it`) || strings.Contains(got[5], "type changed") {
		t.Errorf("line 5: %q", got[5])
	}
	if len(got) != 4 {
		t.Errorf("rejects %v", got)
	}
	if n := pyColumns(t, pq)["n"]; len(n) != 2 || n[0] != json.Number("9007199254740993") || n[1] != json.Number("125") {
		t.Errorf("n read back as %v", n)
	}
}

// Issue 9, review 4: an inferred float64 column rejects an integer float64
// would round, as the same integer inside the sample would have made the
// column an exact string; the reason says the type changed after the sample.
func TestConvertFloat64RejectsIntegersItWouldRound(t *testing.T) {
	in := strings.Join([]string{
		`{"f":1.5}`,
		`{"f":123456789012345678901234567890}`,
		`{"f":9007199254740993}`,
		`{"f":9007199254740994}`,
		`{"f":-9007199254740992}`,
	}, "\n") + "\n"
	pq, st, rej := convertBytes(t, []byte(in), Options{InferLines: 1})
	if c := st.Schema.Columns[0]; c.Type != schema.Float64 {
		t.Fatalf("inferred %+v", c)
	}
	got := reasonsByLine(rej)
	for _, line := range []int64{2, 3} {
		if !strings.Contains(got[line], "is beyond ±2^53 and float64 cannot hold it exactly") || !strings.HasSuffix(got[line], "(type changed after the first line: raise -infer or give -schema)") {
			t.Errorf("line %d: %q", line, got[line])
		}
	}
	if len(got) != 2 {
		t.Errorf("rejects %v", got)
	}
	f := pyColumns(t, pq)["f"]
	if len(f) != 3 || f[0] != json.Number("1.5") || f[1] != json.Number("9007199254740994.0") || f[2] != json.Number("-9007199254740992.0") {
		t.Errorf("f read back as %v", f)
	}
}

// Issue 9, reviews 3 and 7: a timestamp's digits below the microsecond
// are rejected however many digits follow the ninth; a date read with a
// time format before 1970 is its own (UTC) day.
func TestConvertTimestampDigitsAndDatesBefore1970(t *testing.T) {
	in := strings.Join([]string{
		`{"at":"2026-01-02T15:04:05.1234560000001Z"}`,
		`{"at":"2026-01-02T15:04:05.0000000000000000009Z"}`,
		`{"at":"2026-01-02T15:04:05.1234560000000Z","d":"1969-12-31T12:00:00Z"}`,
		`{"d":"1969-12-30T23:59:59Z"}`,
	}, "\n") + "\n"
	s := &schema.Schema{Columns: []schema.Column{
		{Name: "at", Type: schema.Timestamp, Nullable: true},
		{Name: "d", Type: schema.Date, Nullable: true, Formats: []string{"2006-01-02T15:04:05Z07:00"}},
	}}
	pq, _, rej := convertBytes(t, []byte(in), Options{Schema: s})
	got := reasonsByLine(rej)
	if len(got) != 2 || !strings.Contains(got[1], "digits below the microsecond") || !strings.Contains(got[2], "digits below the microsecond") {
		t.Errorf("rejects %v", got)
	}
	rows := pyarrowtest.Read(t, pq).Rows
	if len(rows) != 2 || rows[0]["at"] != "2026-01-02T15:04:05.123456Z" || rows[0]["d"] != "1969-12-31" || rows[1]["d"] != "1969-12-30" {
		t.Errorf("read back %v", rows)
	}
	// Inferred, such a string is no timestamp: its column is a string, exact.
	pq, st, rej := convertBytes(t, []byte(`{"at":"2026-01-02T15:04:05.1234560000001Z"}`+"\n"), Options{})
	if st.Schema.Columns[0].Type != schema.String || len(rej) != 0 {
		t.Fatalf("inferred %+v, rejects %v", st.Schema.Columns, rej)
	}
	if rows := pyarrowtest.Read(t, pq).Rows; rows[0]["at"] != "2026-01-02T15:04:05.1234560000001Z" {
		t.Errorf("read back %v", rows)
	}
}

// Issue 9, review 5: a lone surrogate escape rejects its line (as raw
// invalid UTF-8 does), in a value or a key, instead of becoming U+FFFD;
// a whole pair reads back as its character.
func TestConvertRejectsLoneSurrogates(t *testing.T) {
	in := strings.Join([]string{
		`{"s":"\ud83d\ude00"}`,
		`{"s":"\ud800x"}`,
		`{"\ud800":1,"\udbff":2}`,
		`{"s":"a","t":["\udc00"]}`,
	}, "\n") + "\n"
	pq, _, rej := convertBytes(t, []byte(in), Options{})
	got := reasonsByLine(rej)
	want := map[int64]string{2: `invalid \u escape: lone surrogate at byte 7`, 3: `invalid \u escape: lone surrogate at byte 3`, 4: `invalid \u escape: lone surrogate at byte 16`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejects %v, want %v", got, want)
	}
	if rows := pyarrowtest.Read(t, pq).Rows; len(rows) != 1 || rows[0]["s"] != "😀" {
		t.Errorf("read back %v", rows)
	}
}

// Issue 9, review 1: a sample line that every schema rejects does not
// shape the schema: its spelling of a name must not become the column
// (which made every later line rejected).
func TestConvertRejectedSampleLinesDoNotShapeTheSchema(t *testing.T) {
	var rest strings.Builder
	for i := 2; i <= 20; i++ {
		fmt.Fprintf(&rest, `{"userId":%d,"o":{"a":%d}}`+"\n", i, i)
	}
	for name, first := range map[string]string{
		"two spellings":        `{"USERID":1,"userId":2}`,
		"two nested spellings": `{"USERID":1,"o":{"A":1,"a":2}}`,
		"invalid UTF-8":        "{\"USERID\":1,\"x\":\"\xff\"}",
		"reserved key":         `{"USERID":1,"_feed_id":"f"}`,
		"reserved key, case":   `{"USERID":1,"_LINE":1}`,
		"empty key":            `{"USERID":1,"o":{"":1}}`,
		"lone surrogate":       `{"USERID":1,"x":"\udc00"}`,
		"number out of range":  `{"USERID":1e400}`,
		"invalid JSON":         `{"USERID":1,}`,
		"escaped spellings":    `{"USERID":1,"user\u0049d":2}`,
	} {
		pq, st, rej := convertBytes(t, []byte(first+"\n"+rest.String()), Options{})
		var cols []string
		for _, c := range st.Schema.Columns {
			cols = append(cols, c.Name)
		}
		if fmt.Sprint(cols) != "[userId o]" {
			t.Errorf("%s: columns %v", name, cols)
		}
		if len(rej) != 1 || rej[0].line != 1 {
			t.Errorf("%s: rejects %+v, want line 1 only", name, rej)
		}
		ids := pyColumns(t, pq)["userId"]
		if len(ids) != 19 || ids[0] != json.Number("2") || ids[18] != json.Number("20") {
			t.Errorf("%s: userId read back as %v", name, ids)
		}
	}
}

// A name that only lines with two spellings of it hold is still a column,
// the first spelling, so that those lines are rejected rather than taken
// with both spellings dropped.
func TestConvertTwoSpellingsOnlyInOneLineAreNotDropped(t *testing.T) {
	in := `{"USERID":1,"userId":2,"o":{"b":1,"B":2}}` + "\n" + `{"x":1,"o":{"a":1}}` + "\n"
	pq, st, rej := convertBytes(t, []byte(in), Options{})
	if got := describeColumns(st.Schema.Columns); got != "[x o{a b} USERID]" {
		t.Errorf("columns %s", got)
	}
	if len(rej) != 1 || rej[0].line != 1 || !strings.Contains(rej[0].reason, "differs only in case") {
		t.Errorf("rejects %+v", rej)
	}
	if x := pyColumns(t, pq)["x"]; len(x) != 1 || x[0] != json.Number("1") {
		t.Errorf("x read back as %v", x)
	}
}

func describeColumns(cols []schema.Column) string {
	var names []string
	for _, c := range cols {
		n := c.Name
		if len(c.Fields) > 0 {
			n += "{" + strings.Trim(describeColumns(c.Fields), "[]") + "}"
		}
		names = append(names, n)
	}
	return fmt.Sprint(names)
}
