package schema

import (
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// nestedLines are rows of nestedSchema with nulls, empty and long lists,
// escaped strings and every scalar kind.
// Every scalar kind has values in several rows, around nulls, so that a
// split that starts a tail at the wrong value shows.
var nestedLines = []string{
	`{"id":1,"name":"a","score":1.5,"ok":true,"at":"2026-01-01T00:00:00.5Z","day":"2026-01-02","meta":{"a":[1,{"b":null}]},"amount":"1.5"}`,
	`{"id":2,"addr":{"city":"x\"y","geo":[1.5,null,-2],"tags":[]},"events":[{"at":"2026-01-01T00:00:00+02:00","n":[1,2]},null,{"n":[]},{}]}`,
	`{"addr":null,"id":3,"events":[],"name":"\u00e9t\u00e9","score":-2.25,"ok":false,"day":"2026-03-04","amount":"7.125"}`,
	`{"id":4,"name":"bcd","addr":{"city":null,"geo":null,"tags":["p","q","r"]},"events":[{"n":[7,8,9]}],"at":"2026-05-06T07:08:09Z"}`,
	`{"id":5,"score":3,"ok":true,"day":"2027-01-01","amount":"-2","meta":[1,2],"addr":{"city":"z","geo":[0.5],"tags":["s"]}}`,
	`{"id":6,"name":"ef","score":null,"ok":null,"day":"2028-02-29","at":"2028-02-29T00:00:00Z","events":[{"at":"2030-01-01T00:00:00Z","n":[4]}]}`,
}

func parsedRows(t *testing.T, lines []string) (*Layout, *Rows) {
	t.Helper()
	_, l, p := nestedParser(t)
	r := NewRows(l)
	for _, line := range lines {
		if err := p.AppendLine(r, []byte(line)); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	return l, r
}

// Split cuts every leaf at the same row: the head holds the first rows rows
// (a value of repetition level 0 starts each), the tail the others, and
// the two hold the values of the whole, in order.
func TestLeafSplitAtEveryRow(t *testing.T) {
	l, r := parsedRows(t, nestedLines)
	for rows := 0; rows <= r.N; rows++ {
		for i := range r.Leaves {
			head, tail := r.Leaves[i].Split(rows)
			got := append(leafValues(&head, i), leafValues(&tail, i)...)
			want := r.LeafValues(i)
			if len(got) != len(want) {
				t.Fatalf("split at %d, leaf %d (%v): %d values, want %d", rows, i, l.Parquet.Columns()[i], len(got), len(want))
			}
			for j := range want {
				if !parquet.Equal(got[j], want[j]) || got[j].DefinitionLevel() != want[j].DefinitionLevel() || got[j].RepetitionLevel() != want[j].RepetitionLevel() {
					t.Fatalf("split at %d, leaf %d value %d: %v, want %v", rows, i, j, got[j], want[j])
				}
			}
			starts := 0
			for j := range head.Levels() {
				if head.MaxRep == 0 || head.Reps[j] == 0 {
					starts++
				}
			}
			if starts != rows {
				t.Fatalf("split at %d, leaf %d: the head holds %d rows", rows, i, starts)
			}
		}
	}
}

func leafValues(lf *Leaf, column int) []parquet.Value {
	vals := make([]parquet.Value, lf.Levels())
	for i := range vals {
		vals[i] = lf.Value(i, column)
	}
	return vals
}

// A line the fast path gives up on half-way (a bad value after good ones,
// in a nested list) leaves the rows before it exactly as they were.
func TestRejectedLineLeavesRowsAsTheyWere(t *testing.T) {
	_, want := parsedRows(t, nestedLines)
	_, l, p := nestedParser(t)
	got := NewRows(l)
	for _, line := range nestedLines {
		if err := p.AppendLine(got, []byte(line)); err != nil {
			t.Fatal(err)
		}
		bad := `{"id":9,"name":"zzz","addr":{"city":"c","geo":[1,2],"tags":["t"]},"events":[{"n":[1,"x"]}]}`
		if err := p.AppendLine(got, []byte(bad)); err == nil {
			t.Fatalf("%s: accepted", bad)
		}
	}
	sameRows(t, "after rejects", want, got)
	for i := range want.Leaves {
		if w, g := len(want.Leaves[i].Bytes), len(got.Leaves[i].Bytes); w != g {
			t.Fatalf("leaf %d: %d bytes kept, want %d", i, g, w)
		}
	}
}

// Rows own their bytes: changing the lines after parsing them changes no
// value.
func TestRowsCopyTheirBytes(t *testing.T) {
	_, l, p := nestedParser(t)
	r := NewRows(l)
	line := []byte(`{"id":1,"name":"abc","addr":{"city":"x","tags":["t"]}}`)
	if err := p.AppendLine(r, line); err != nil {
		t.Fatal(err)
	}
	want := make([][]parquet.Value, len(r.Leaves))
	for i := range r.Leaves {
		want[i] = r.LeafValues(i)
		for j, v := range want[i] {
			want[i][j] = v.Clone()
		}
	}
	for i := range line {
		line[i] = '#'
	}
	for i := range r.Leaves {
		for j, v := range r.LeafValues(i) {
			if !parquet.Equal(v, want[i][j]) {
				t.Fatalf("leaf %d value %d: %v after the line changed, want %v", i, j, v, want[i][j])
			}
		}
	}
}

// Reset lets go of a byte buffer that a long string grew, and keeps a
// small one.
func TestResetLetsLongStringsGo(t *testing.T) {
	_, l, p := nestedParser(t)
	r := NewRows(l)
	long := `{"id":1,"name":"` + strings.Repeat("x", 2*keepBytes) + `"}`
	if err := p.AppendLine(r, []byte(long)); err != nil {
		t.Fatal(err)
	}
	name, _ := l.Parquet.Lookup("name")
	if c := cap(r.Leaves[name.ColumnIndex].Bytes); c < 2*keepBytes {
		t.Fatalf("the long name took %d bytes of buffer", c)
	}
	r.Reset()
	if c := cap(r.Leaves[name.ColumnIndex].Bytes); c > keepBytes {
		t.Fatalf("after Reset the name's buffer keeps %d bytes, want at most %d", c, keepBytes)
	}
	if err := p.AppendLine(r, []byte(`{"id":2,"name":"short"}`)); err != nil {
		t.Fatal(err)
	}
	c := cap(r.Leaves[name.ColumnIndex].Bytes)
	r.Reset()
	if got := cap(r.Leaves[name.ColumnIndex].Bytes); got != c {
		t.Fatalf("after Reset a small buffer went from %d to %d bytes", c, got)
	}
}
