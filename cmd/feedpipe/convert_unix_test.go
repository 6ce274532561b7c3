//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// OUT and its rejects file have the mode os.Create would leave them with:
// 0666 less the umask for a new file, as any file the user writes (not a
// temporary file's 0600), and an existing file's own mode when it is
// replaced (not widened).
func TestConvertOutputMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	writeFile(t, in, `{"a":1}`+"\n"+`{"a":"x"}`+"\n")
	out := filepath.Join(dir, "out.parquet")
	files := []string{out, out + ".rejects.ndjson"}
	check := func(want os.FileMode) {
		t.Helper()
		if err := run([]string{"convert", "-infer", "1", in, out}); err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			fi, err := os.Stat(name)
			if err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode().Perm(), err, want)
			}
		}
	}
	check(0o644)
	for _, name := range files {
		if err := os.Chmod(name, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check(0o600)
}
