package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// atomicFile is a file written under a temporary name in its final
// directory and renamed to its final name once complete (after fsync), so
// the final name holds either nothing new or the whole file.
type atomicFile struct {
	f     *os.File
	final string
	done  bool
	// written counts the bytes written through Write; started is how far
	// writeback was asked for; flushing is set while a request runs.
	written, started int64
	flushing         atomic.Bool
	flushed          sync.WaitGroup
}

// writebackBytes is how much Write lets pile up before it asks the system
// to start writing the file out (where it can; see startWriteback).
// Without it nothing of a fresh file reaches the disk before commit's
// fsync, which then waited for all of it: 70 ms of a 2.6 s conversion of
// 1 GiB, with both cores idle.
const writebackBytes = 8 << 20

// Write writes p to the file, starting the writeback of what was written
// before each time writebackBytes more have been.
func (a *atomicFile) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	a.written += int64(n)
	if a.written-a.started >= writebackBytes && a.flushing.CompareAndSwap(false, true) {
		// On a goroutine of its own: the request may wait for the
		// device, and the writer is the pipeline's one serial part.
		from, to := a.started, a.written
		a.started = to
		a.flushed.Go(func() {
			defer a.flushing.Store(false)
			startWriteback(a.f, from, to-from)
		})
	}
	return n, err
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
	a.flushed.Wait()
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
		a.flushed.Wait()
		a.f.Close()
		os.Remove(a.f.Name())
	}
}

// outputFile checks path, an output named by what (OUT, -rejects), before
// anything is read, and returns the file to write: the absolute path of
// the file the system would open for path, its directory's and its own
// symbolic links followed (a link to a file not there yet names the file
// it would create, as os.Create would write through it). An existing file
// that is a directory or not a regular file (a named pipe, a device), a
// path ending in a separator, and a path whose directory does not exist or
// is no directory are refused, each saying so.
func outputFile(what, path string) (string, error) {
	example := "out.parquet"
	if what != "OUT" {
		example = "rejects.ndjson"
	}
	if strings.HasSuffix(path, string(filepath.Separator)) {
		return "", fmt.Errorf("convert: %s %s ends in %s: give a file name, e.g. %s", what, path, string(filepath.Separator), filepath.Join(path, example))
	}
	target, err := resolveFile(path)
	if err != nil {
		return "", fmt.Errorf("convert: %s %s: %w", what, path, err)
	}
	if fi, err := os.Stat(target); err == nil {
		switch {
		case fi.IsDir():
			return "", fmt.Errorf("convert: %s %s is a directory; give a file name, e.g. %s", what, path, filepath.Join(path, example))
		case !fi.Mode().IsRegular():
			kind := "a special file"
			switch {
			case fi.Mode()&os.ModeNamedPipe != 0:
				kind = "a named pipe"
			case fi.Mode()&os.ModeDevice != 0:
				kind = "a device"
			case fi.Mode()&os.ModeSocket != 0:
				kind = "a socket"
			}
			return "", fmt.Errorf("convert: %s %s is %s, not a regular file: the output is written beside it and renamed over it; give a file path", what, path, kind)
		}
	}
	return target, nil
}

// resolveFile is the absolute path of the file path names, with the
// symbolic links of its directory resolved as the system does (a link
// then "..", not ".." removed as text) and, when path itself is a link,
// those of its target, however many (at most 40, as Linux allows).
func resolveFile(path string) (string, error) {
	for range 40 {
		dir, base := filepath.Split(path) // not cleaned: "lnk/../x" keeps its ".."
		if dir == "" {
			dir = "."
		}
		rdir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			named := filepath.Clean(dir) // for messages; Stat of it follows links as the system would
			fi, serr := os.Stat(named)
			switch {
			case errors.Is(serr, os.ErrNotExist):
				return "", fmt.Errorf("its directory %s does not exist; create it or give another path", named)
			case serr == nil && !fi.IsDir():
				return "", fmt.Errorf("%s is not a directory; give another path", named)
			}
			return "", fmt.Errorf("its directory %s: %w", named, err)
		}
		if fi, err := os.Stat(rdir); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory; give another path", filepath.Clean(dir))
		}
		if rdir, err = filepath.Abs(rdir); err != nil {
			return "", err
		}
		full := filepath.Join(rdir, base)
		fi, err := os.Lstat(full)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return full, nil
		}
		link, err := os.Readlink(full)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = rdir + string(filepath.Separator) + link // not Join: it would clean the link's ".." as text
		}
		path = link
	}
	return "", errors.New("too many symbolic links")
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
