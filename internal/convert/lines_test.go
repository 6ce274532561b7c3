package convert

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// chunkReader returns its input in pieces of random size.
type chunkReader struct {
	b []byte
	r *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.r.IntN(3<<20))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// The block reader cuts lines exactly as splitting the whole input at "\n"
// would, whatever the read sizes and however lines straddle blocks.
func TestLineSourceCutsLikeSplit(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	tooLong := strings.Repeat("y", MaxLineBytes+1)
	short := strings.Repeat("ab\n", blockLines*3)
	inputs := map[string]string{
		"straddling":         strings.Repeat(`{"a":"`+strings.Repeat("z", 1000)+"\"}\r\n", 5000),
		"many short":         short,
		"long then short":    long + "\n" + short + "last",
		"long at the end":    short + long,
		"too long in middle": "a\n" + tooLong + "\r\nb\n",
		"too long at end":    "a\n" + tooLong,
		"bom and empty":      "\xef\xbb\xbf{}\n\n\r\n{}",
		"empty":              "",
		"only newline":       "\n",
		"exactly a block":    strings.Repeat("c", blockBytes-1) + "\n" + "d",
	}
	for name, in := range inputs {
		for seed := range uint64(3) {
			src := &lineSource{r: &chunkReader{b: []byte(in), r: rand.New(rand.NewPCG(seed, 1))}}
			var got [][]byte
			var gotLong []int64
			for {
				var ls lines
				src.fill(&ls)
				if len(ls.lines) == 0 {
					break
				}
				for i, l := range ls.lines {
					got = append(got, append([]byte(nil), l...))
					gotLong = append(gotLong, ls.long[i])
				}
			}
			want := strings.Split(in, "\n")
			if want[len(want)-1] == "" {
				want = want[:len(want)-1]
			}
			if len(got) != len(want) {
				t.Fatalf("%s seed %d: %d lines, want %d", name, seed, len(got), len(want))
			}
			for i, w := range want {
				w = strings.TrimSuffix(w, "\r")
				if i == 0 {
					w = strings.TrimPrefix(w, "\xef\xbb\xbf")
				}
				isLong := len(w) > MaxLineBytes
				if wantLong := int64(len(w)); isLong && gotLong[i] != wantLong || !isLong && gotLong[i] != 0 {
					t.Fatalf("%s seed %d line %d: long %d, want %v (%d bytes)", name, seed, i+1, gotLong[i], isLong, len(w))
				}
				if isLong {
					w = w[:1<<20]
				}
				if !bytes.Equal(got[i], []byte(w)) {
					t.Fatalf("%s seed %d line %d: %d bytes %.20q, want %d bytes %.20q", name, seed, i+1, len(got[i]), got[i], len(w), w)
				}
			}
			if src.bytes != int64(len(in)) || src.err != nil {
				t.Fatalf("%s: read %d bytes (err %v), want %d", name, src.bytes, src.err, len(in))
			}
		}
	}
}
