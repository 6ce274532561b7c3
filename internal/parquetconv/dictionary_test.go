package parquetconv

import (
	"fmt"
	"testing"
)

// The dictionary gives each distinct value one index, in the order first
// seen, whatever its length (the short values' hash and maphash's), across
// the table's growth and after a reset.
func TestDictionaryIndexesDistinctValues(t *testing.T) {
	d := newDictionary()
	for round := 0; round < 2; round++ {
		var want []string
		seen := map[string]int32{}
		for i := 0; i < 20000; i++ {
			// Lengths 0 to 40; values that differ in one byte only.
			v := fmt.Sprintf("%0*d", i%41, i%7919)
			if i%41 == 0 {
				v = ""
			}
			got := d.index([]byte(v))
			if k, ok := seen[v]; ok {
				if got != k {
					t.Fatalf("round %d: %q indexed %d, earlier %d", round, v, got, k)
				}
				continue
			}
			if int(got) != len(want) {
				t.Fatalf("round %d: new value %q indexed %d, want %d", round, v, got, len(want))
			}
			seen[v] = got
			want = append(want, v)
		}
		if d.len() != len(want) {
			t.Fatalf("round %d: %d values, want %d", round, d.len(), len(want))
		}
		var size int64
		for i, v := range want {
			if string(d.value(int32(i))) != v {
				t.Fatalf("round %d: value %d is %q, want %q", round, i, d.value(int32(i)), v)
			}
			size += int64(4 + len(v))
		}
		if d.size() != size {
			t.Errorf("round %d: size %d, want %d (a PLAIN page's)", round, d.size(), size)
		}
		d.reset()
	}
}

// Values of up to 16 bytes are told apart by their keys alone: every
// string of up to 3 bytes over a few bytes, and strings of 4 to 16 bytes
// that differ in one byte anywhere, each get an index of their own.
func TestDictionaryShortKeysTellValuesApart(t *testing.T) {
	d := newDictionary()
	alphabet := []byte{0, 'a', 'b', 0xff}
	var vals [][]byte
	vals = append(vals, []byte{})
	for _, x := range alphabet {
		vals = append(vals, []byte{x})
		for _, y := range alphabet {
			vals = append(vals, []byte{x, y})
			for _, z := range alphabet {
				vals = append(vals, []byte{x, y, z})
			}
		}
	}
	for n := 4; n <= 16; n++ {
		for i := 0; i < n; i++ {
			v := []byte(fmt.Sprintf("%0*d", n, 0))
			v[i] = 'x'
			vals = append(vals, v)
		}
	}
	for i, v := range vals {
		if got := d.index(v); int(got) != i {
			t.Fatalf("value %q (%d bytes) indexed %d, want %d", v, len(v), got, i)
		}
	}
	for i, v := range vals {
		if got := d.index(v); int(got) != i {
			t.Fatalf("value %q again: indexed %d, want %d", v, got, i)
		}
	}
}
