package convert

import (
	"encoding/json"
	"fmt"
	"github.com/feedpipe/feedpipe/internal/schema"
	"io"
	"strings"
	"testing"
)

// Review 10, item 2a: a number out of range or an empty key below the top
// level, anywhere in a line (in a field no column takes too), makes every
// schema reject the line; inference skips such lines, and conversion
// rejects them with a reason, rather than take them with fields dropped.
func TestConvertRejectsWhatInferenceSkips(t *testing.T) {
	in := "{\"a\":1}\n{\"a\":2,\"b\":1e400}\n{\"a\":3,\"c\":{\"\":1}}\n{\"a\":4,\"d\":[1e-400]}\n"
	for _, opt := range []Options{{}, {Unknown: UnknownExtra}} {
		pq, _, rej := convertBytes(t, []byte(in), opt)
		got := reasonsByLine(rej)
		if !strings.HasPrefix(got[2], `field "b": number out of range`) || !strings.HasPrefix(got[3], `field "c": holds an object with an empty key`) ||
			!strings.HasPrefix(got[4], `field "d": number out of range`) || len(got) != 3 {
			t.Errorf("%+v: rejects %v", opt, got)
		}
		cols := pyColumns(t, pq)
		if a := cols["a"]; len(a) != 1 || a[0] != json.Number("1") {
			t.Errorf("%+v: a read back as %v", opt, a)
		}
		for _, name := range []string{"b", "c", "d"} {
			if _, ok := cols[name]; ok {
				t.Errorf("%+v: column %s from a rejected line", opt, name)
			}
		}
	}
}

// Review 10, item 2b: only JSON's white space may stand around a line's
// object; NBSP or \v there is a reject with a reason, in the sample (which
// then does not shape the schema) and after it.
func TestConvertRejectsUnicodeSpaceAroundTheLine(t *testing.T) {
	in := "{\"a\":1}\n\u00a0{\"a\":2,\"b\":1}\n{\"a\":3,\"c\":1}\v\n \t{\"a\":4}\r\n"
	pq, _, rej := convertBytes(t, []byte(in), Options{})
	got := reasonsByLine(rej)
	if got[2] != "white space U+00A0 before the object: JSON allows only space, tab, CR and LF there" ||
		got[3] != "white space U+000B after the object: JSON allows only space, tab, CR and LF there" || len(got) != 2 {
		t.Errorf("rejects %v", got)
	}
	cols := pyColumns(t, pq)
	if a := cols["a"]; len(a) != 2 || a[0] != json.Number("1") || a[1] != json.Number("4") || len(cols) != 1 {
		t.Errorf("read back as %v", cols)
	}
}

// Review 10, item 2c: when no line of the sample gives a column, inference
// reads on to the first line that does and infers from it, so later lines
// keep their fields; only {} to the end still gives the value column; past
// MaxUnusableLines it fails naming the lines.
func TestConvertInfersPastUnusableSampleLines(t *testing.T) {
	pq, st, rej := convertBytes(t, []byte("garbage\n{\"a\":1,\"b\":\"x\"}\n{\"a\":2}\n"), Options{InferLines: 1})
	if got := reasonsByLine(rej); len(got) != 1 || got[1] == "" || st.Rows != 2 {
		t.Errorf("rejects %v, rows %d", got, st.Rows)
	}
	cols := pyColumns(t, pq)
	if a, b := cols["a"], cols["b"]; len(cols) != 2 || len(a) != 2 || a[0] != json.Number("1") || a[1] != json.Number("2") || b[0] != "x" || b[1] != nil {
		t.Errorf("read back as %v", cols)
	}

	pq, st, rej = convertBytes(t, []byte("{}\n{}\n{}\n{\"a\":7}\n"), Options{InferLines: 2})
	cols = pyColumns(t, pq)
	if a := cols["a"]; len(rej) != 0 || len(cols) != 1 || len(a) != 4 || a[0] != nil || a[3] != json.Number("7") {
		t.Errorf("{} lines first: rejects %v, read back as %v", rej, cols)
	}

	_, st, _ = convertBytes(t, []byte("{}\n{}\n"), Options{InferLines: 1})
	if st.Rows != 2 || len(st.Schema.Columns) != 1 || st.Schema.Columns[0].Name != "value" {
		t.Errorf("only {}: %d rows, schema %v", st.Rows, st.Schema.Columns)
	}

	in := strings.Repeat("x\n", MaxUnusableLines+10) + "{\"a\":1}\n"
	_, err := Convert(t.Context(), strings.NewReader(in), io.Discard, Options{InferLines: 1})
	if err == nil || !strings.Contains(err.Error(), "none of lines 1 to ") || !strings.Contains(err.Error(), "give -schema") {
		t.Errorf("past the bound: %v", err)
	}
}

// wideLine is an object of n keys k0…k(n-1), each valued by its number.
func wideLine(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString("}")
	return b.String()
}

// Review 10, item 3: a sample line of 65,535 keys made parquet-go panic.
// Inference makes at most schema.MaxLeafColumns leaf columns: keys past
// the limit go to _extra (-unknown extra), or the run fails naming the
// limit rather than drop them; a wide object becomes one json column.
func TestConvertBoundsInferredColumns(t *testing.T) {
	wide := wideLine(65535)
	_, err := Convert(t.Context(), strings.NewReader(wide+"\n"), io.Discard, Options{})
	if err == nil || !strings.Contains(err.Error(), "more than 10000 leaf columns") || !strings.Contains(err.Error(), `the first "k10000"`) {
		t.Errorf("drop: %v", err)
	}

	pq, st, rej := convertBytes(t, []byte(wide+"\n"), Options{Unknown: UnknownExtra})
	if len(rej) != 0 || st.Rows != 1 || len(st.Schema.Columns) != schema.MaxLeafColumns {
		t.Fatalf("extra: rejects %v, rows %d, %d columns", rej, st.Rows, len(st.Schema.Columns))
	}
	cols := pyColumns(t, pq)
	var extra map[string]int
	if err := json.Unmarshal([]byte(cols["_extra"][0].(string)), &extra); err != nil || len(extra) != 65535-schema.MaxLeafColumns || extra["k65534"] != 65534 {
		t.Errorf("_extra holds %d keys (%v)", len(extra), err)
	}
	if k := cols["k9999"]; len(k) != 1 || k[0] != json.Number("9999") {
		t.Errorf("k9999 read back as %v", k)
	}

	_, _, rej = convertBytes(t, []byte(wide+"\n"), Options{Unknown: schema.UnknownReject})
	if len(rej) != 1 || !strings.Contains(rej[0].reason, "is not declared") || !strings.Contains(rej[0].reason, "inference makes at most 10000 leaf columns") {
		t.Errorf("reject: %v", rej)
	}

	nested := `{"id":1,"o":` + wide + "}\n"
	pq, st, rej = convertBytes(t, []byte(nested), Options{})
	if len(rej) != 0 || len(st.Schema.Columns) != 2 || st.Schema.Columns[1].Type != schema.JSON {
		t.Fatalf("nested: rejects %v, schema %v", rej, st.Schema.Columns)
	}
	if o := pyColumns(t, pq)["o"]; len(o) != 1 || o[0] != wide {
		t.Errorf("nested object not kept whole as json")
	}

	s := &schema.Schema{}
	for i := range schema.MaxLeafColumns + 1 {
		s.Columns = append(s.Columns, schema.Column{Name: fmt.Sprintf("c%d", i), Type: schema.Int64, Nullable: true})
	}
	_, err = Convert(t.Context(), strings.NewReader("{}\n"), io.Discard, Options{Schema: s})
	if err == nil || !strings.Contains(err.Error(), "more than 10000 leaf columns") {
		t.Errorf("-schema with %d columns: %v", len(s.Columns), err)
	}
}

// Review 10, item 6: with -unknown extra (the reference parser), an int64
// written with 20 digits and an exponent is stored exactly, and one with a
// fraction is rejected as such, not as out of range.
func TestConvertInt64ManyDigitsWithExponent(t *testing.T) {
	s := &schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64, Nullable: true}}}
	in := "{\"id\":50000000000000000000e-2}\n{\"id\":123456789012345678901.5e-3}\n"
	for _, unknown := range []string{UnknownExtra, schema.UnknownReject, schema.UnknownDrop} {
		pq, _, rej := convertBytes(t, []byte(in), Options{Schema: s, Unknown: unknown})
		if got := reasonsByLine(rej); len(got) != 1 || !strings.HasPrefix(got[2], `field "id": want an integer, got 123456789012345678901.5e-3`) {
			t.Errorf("%s: rejects %v", unknown, got)
		}
		if id := pyColumns(t, pq)["id"]; len(id) != 1 || id[0] != json.Number("500000000000000000") {
			t.Errorf("%s: id read back as %v", unknown, id)
		}
	}
}

// Review 10, item 7: an integer float64 would round is rejected by a
// float64 column however it is written, as the plain spelling is; in the
// sample it makes the column exact (int64, or string beyond int64), so
// no value changes. A fraction keeps float64's 15–17 digits.
func TestConvertFloat64NeverRoundsAnIntegerHoweverWritten(t *testing.T) {
	s := &schema.Schema{Columns: []schema.Column{{Name: "f", Type: schema.Float64, Nullable: true}}}
	in := "{\"f\":1.5}\n{\"f\":9007199254740993.0}\n{\"f\":90071992547409930e-1}\n{\"f\":9007199254740993}\n{\"f\":1e30}\n{\"f\":1.00000000000000000001}\n{\"f\":1e22}\n"
	for _, unknown := range []string{schema.UnknownDrop, UnknownExtra} {
		pq, _, rej := convertBytes(t, []byte(in), Options{Schema: s, Unknown: unknown})
		got := reasonsByLine(rej)
		for line := int64(2); line <= 4; line++ {
			if !strings.HasPrefix(got[line], `field "f": integer `) || !strings.Contains(got[line], "float64 cannot hold it exactly") {
				t.Errorf("%s line %d: %q", unknown, line, got[line])
			}
		}
		// 1e30 has one significant digit, which float64 gives back.
		if f := pyColumns(t, pq)["f"]; len(got) != 3 || len(f) != 4 || f[0] != json.Number("1.5") || f[1] != json.Number("1e+30") || f[2] != json.Number("1.0") || f[3] != json.Number("1e+22") {
			t.Errorf("%s: rejects %v, f read back as %v", unknown, got, f)
		}
	}

	// Inferred: 9007199254740993.0 beside integers is an exact int64
	// column; 1e30 beside them a float64 column (one significant digit,
	// read back as written); 1234567890123456e20 a string of its text.
	pq, st, rej := convertBytes(t, []byte("{\"a\":1,\"b\":1,\"c\":1}\n{\"a\":9007199254740993.0,\"b\":1e30,\"c\":1234567890123456e20}\n"), Options{})
	cols := pyColumns(t, pq)
	if len(rej) != 0 || st.Schema.Columns[0].Type != schema.Int64 || st.Schema.Columns[1].Type != schema.Float64 || st.Schema.Columns[2].Type != schema.String {
		t.Fatalf("rejects %v, schema %v", rej, st.Schema.Columns)
	}
	if a, b, c := cols["a"], cols["b"], cols["c"]; a[1] != json.Number("9007199254740993") || b[0] != json.Number("1.0") || b[1] != json.Number("1e+30") || c[1] != "1234567890123456e20" {
		t.Errorf("read back as %v", cols)
	}
}

// Review 10, item 2a: an empty key at the top level is an odd key, not a
// line every schema rejects: with -unknown extra the line is a row (the
// key in _extra) and a field only it holds is still a column; otherwise
// the line is a reject naming the key.
func TestConvertTopLevelEmptyKeyInTheSample(t *testing.T) {
	in := "{\"a\":1}\n{\"a\":2,\"\":3,\"b\":4}\n"
	pq, _, rej := convertBytes(t, []byte(in), Options{Unknown: UnknownExtra})
	cols := pyColumns(t, pq)
	if b, extra := cols["b"], cols["_extra"]; len(rej) != 0 || len(b) != 2 || b[1] != json.Number("4") || extra[1] != `{"":3}` {
		t.Errorf("extra: rejects %v, read back as %v", rej, cols)
	}
	pq, _, rej = convertBytes(t, []byte(in), Options{})
	if got := reasonsByLine(rej); len(got) != 1 || !strings.Contains(got[2], "an empty key cannot be a column") {
		t.Errorf("drop: rejects %v", got)
	}
	if cols := pyColumns(t, pq); len(cols["a"]) != 1 {
		t.Errorf("drop: read back as %v", cols)
	}
}
