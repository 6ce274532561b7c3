package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// atomicFile is a file written under a temporary name in its final
// directory and renamed to its final name once complete (after fsync), so
// the final name holds either nothing new or the whole file.
type atomicFile struct {
	f     *os.File
	final string
	done  bool
}

// createTemp creates the temporary file of final, beside it. Its mode is
// what os.Create would leave final with: final's own mode when it exists,
// else 0666 less the umask; not os.CreateTemp's 0600, which the rename
// would keep, so that a loader running as another user could not read it.
func createTemp(final string) (*atomicFile, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	var err error
	for range 100 {
		name := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d", base, rand.Uint32()))
		var f *os.File
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			if fi, serr := os.Stat(final); serr == nil && fi.Mode().IsRegular() {
				if err := f.Chmod(fi.Mode().Perm()); err != nil {
					f.Close()
					os.Remove(name)
					return nil, fmt.Errorf("create %s: keep the mode of the file it replaces: %w", final, err)
				}
			}
			return &atomicFile{f: f, final: final}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	return nil, fmt.Errorf("create %s: %w", final, err)
}

// commit syncs, closes and renames the file to its final name.
func (a *atomicFile) commit() error {
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", a.final, err)
	}
	if err := a.f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", a.final, err)
	}
	if err := os.Rename(a.f.Name(), a.final); err != nil {
		return fmt.Errorf("write %s: %w", a.final, err)
	}
	a.done = true
	return nil
}

// discard removes the temporary file unless it was committed.
func (a *atomicFile) discard() {
	if !a.done {
		a.f.Close()
		os.Remove(a.f.Name())
	}
}

// outputFile checks path, an output named by what (OUT, -rejects), before
// anything is read, and returns the file to write: path, or the file a
// symbolic link at path names (written as os.Create would write through
// the link). An existing path that is a directory or not a regular file
// (a named pipe, a device), a path ending in a separator, and a path whose
// directory does not exist or is no directory are refused, each saying so.
func outputFile(what, path string) (string, error) {
	if strings.HasSuffix(path, string(filepath.Separator)) {
		return "", fmt.Errorf("convert: %s %s ends in %s: give a file name, e.g. %s", what, path, string(filepath.Separator), filepath.Join(path, "out.parquet"))
	}
	target := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		resolved, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "", fmt.Errorf("convert: %s %s is a symbolic link to a file that does not exist or cannot be reached (%v); give the file's own path", what, path, err)
		}
		target = resolved
	}
	if fi, err := os.Stat(target); err == nil {
		switch {
		case fi.IsDir():
			return "", fmt.Errorf("convert: %s %s is a directory; give a file name, e.g. %s", what, path, filepath.Join(path, "out.parquet"))
		case !fi.Mode().IsRegular():
			return "", fmt.Errorf("convert: %s %s is not a regular file (%v): the output is written beside it and renamed over it; give a file path", what, path, fi.Mode().Type())
		}
	}
	dir := filepath.Dir(target)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return "", fmt.Errorf("convert: %s %s: its directory %s does not exist; create it or give another path", what, path, dir)
	case !fi.IsDir():
		return "", fmt.Errorf("convert: %s %s: %s is not a directory; give another path", what, path, dir)
	}
	return target, nil
}

// notSameFile refuses to write out over in (the same path, or another name
// of the same file): the input would be gone before it was read.
func notSameFile(in, out string) error {
	if in == "-" {
		return nil
	}
	fi, err := os.Stat(in)
	if err != nil {
		return nil // the input's own open reports it
	}
	fo, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && os.SameFile(fi, fo) {
		return fmt.Errorf("convert: %s is the input file %s: it would be replaced before it is read; give another output path", out, in)
	}
	return nil
}

// sameTarget reports whether paths a and b name one file: the same path
// once cleaned and made absolute (with symbolic links in its directory
// resolved), a symbolic link to the other, or (both existing) the same
// file under two names.
func sameTarget(a, b string) bool {
	if resolved(a) == resolved(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// resolved is path absolute and clean, through symbolic links where they
// exist (the file itself, or else its directory).
func resolved(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	} else if dir, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		path = filepath.Join(dir, filepath.Base(path))
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}
