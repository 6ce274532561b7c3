//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
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

// An OUT that is a named pipe is refused before anything is read (it
// would be replaced by a regular file); an OUT that is a symbolic link is
// written through it, as os.Create would: the link stays, its file holds
// the Parquet file.
func TestConvertOutputNotRegularOrLink(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	writeFile(t, in, `{"a":1}`+"\n")
	fifo := filepath.Join(dir, "fifo.parquet")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"convert", in, fifo}); err == nil || !strings.Contains(err.Error(), "is a named pipe, not a regular file") {
		t.Errorf("OUT a named pipe: %v", err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the named pipe is gone: %v %v", fi, err)
	}
	target := filepath.Join(dir, "data", "real.parquet")
	if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, target, "old")
	link := filepath.Join(dir, "link.parquet")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"convert", in, link}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	if b, err := os.ReadFile(target); err != nil || !strings.HasPrefix(string(b), "PAR1") {
		t.Errorf("the link's file does not hold the Parquet file (%d bytes, %v)", len(b), err)
	}
}

// Outputs are compared as the system resolves them: a -rejects path that
// reaches OUT through a link and ".." is refused (it used to pass as
// another file, and a clean run then removed OUT as an earlier run's
// rejects). A -rejects link is written through and, on a clean run, its
// file is removed, not the link; a dangling link is written through, as
// os.Create would.
func TestConvertOutputsResolvedAsTheSystemDoes(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean.ndjson")
	writeFile(t, clean, `{"a":1}`+"\n")
	bad := filepath.Join(dir, "bad.ndjson")
	writeFile(t, bad, `{"a":1}`+"\n"+`{"a":"x"}`+"\n")
	if err := os.MkdirAll(filepath.Join(dir, "deep", "er"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("deep", "er"), filepath.Join(dir, "lnk")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "deep", "o5.parquet")
	through := dir + "/lnk/../o5.parquet" // deep/er/.. is deep (not filepath.Join: it would drop lnk/..)
	if err := run([]string{"convert", "-rejects", through, clean, out}); err == nil || !strings.Contains(err.Error(), "is the output file") {
		t.Errorf("-rejects %s for OUT %s: %v", through, out, err)
	}

	rtarget := filepath.Join(dir, "rtarget.ndjson")
	rlink := filepath.Join(dir, "rlink.ndjson")
	if err := os.Symlink("rtarget.ndjson", rlink); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "o.parquet")
	if err := run([]string{"convert", "-infer", "1", "-rejects", rlink, bad, out}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(rtarget); err != nil || !strings.Contains(string(b), `"line":2`) {
		t.Fatalf("rejects through the link: %q %v", b, err)
	}
	if err := run([]string{"convert", "-rejects", rlink, clean, out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rtarget); !os.IsNotExist(err) {
		t.Errorf("a clean run kept the link's stale rejects file: %v", err)
	}
	if fi, err := os.Lstat(rlink); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("a clean run removed the link: %v", err)
	}
	if err := run([]string{"convert", "-infer", "1", "-rejects", rlink, bad, out}); err != nil {
		t.Fatalf("rejects through a dangling link: %v", err)
	}
	if _, err := os.Stat(rtarget); err != nil {
		t.Errorf("the dangling link's file was not created: %v", err)
	}
}
