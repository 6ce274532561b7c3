package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Bytes written through an atomicFile, past several writeback requests,
// are the committed file's, in order; a discarded one leaves no file. (That
// the system starts writing early is not seen from here: strace -T shows
// the final fsync's time.)
func TestAtomicFileWritesThroughWriteback(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 5*writebackBytes+12345)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	for _, keep := range []bool{true, false} {
		final := filepath.Join(dir, "out.parquet")
		os.Remove(final)
		a, err := createTemp(final)
		if err != nil {
			t.Fatal(err)
		}
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(3<<20))
			if k, err := a.Write(rest[:n]); err != nil || k != n {
				t.Fatalf("write: %d of %d bytes, %v", k, n, err)
			}
			rest = rest[n:]
		}
		if a.started == 0 {
			t.Fatalf("no writeback was started in %d bytes", len(want))
		}
		if keep {
			if err := a.commit(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(final)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("committed file differs from what was written (%d bytes, want %d)", len(got), len(want))
			}
			continue
		}
		a.discard()
		if left, _ := filepath.Glob(filepath.Join(dir, ".out.parquet.tmp-*")); len(left) > 0 {
			t.Fatalf("discard left %v", left)
		}
		if _, err := os.Stat(final); !os.IsNotExist(err) {
			t.Fatalf("discard made %s (%v)", final, err)
		}
	}
}
