// Package scratch gives each worker process a directory of its own for the
// local files a stage writes (the converter's Parquet parts), and removes the
// directories of workers that died without cleaning up after themselves.
//
// A directory is owned through an advisory lock (flock) held on the directory
// for the life of the process. The kernel drops the lock when the process
// dies, SIGKILL included, so a directory whose lock can be taken belongs to no
// live worker and can be removed, even when several workers share one parent
// directory.
package scratch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Prefix starts the name of every scratch directory under the parent.
const Prefix = "feedpipe-scratch-"

// creatingPrefix names a directory not yet locked; it is renamed to Prefix…
// once its lock is held, so a sweep never sees an unlocked live directory.
const creatingPrefix = ".feedpipe-scratch-creating-"

// staleCreating is how old an unlocked half-created directory must be before
// a sweep removes it (its creator died between mkdir and lock).
const staleCreating = time.Minute

// Dir is one process's scratch directory, locked until Close.
type Dir struct {
	// Path is the directory; the caller writes its files here.
	Path string
	lock *os.File
}

// Removed is a dead process's scratch directory that a sweep removed.
type Removed struct {
	Path  string
	Files int
	Bytes int64
}

// Open removes the scratch directories under parent that no live process
// holds, then creates and locks a new one for this process.
func Open(parent string) (*Dir, []Removed, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, nil, fmt.Errorf("scratch: create %s: %w", parent, err)
	}
	removed, err := Sweep(parent)
	if err != nil {
		return nil, removed, err
	}
	tmp, err := os.MkdirTemp(parent, creatingPrefix+"*")
	if err != nil {
		return nil, removed, fmt.Errorf("scratch: create a directory in %s (is it writable?): %w", parent, err)
	}
	f, err := lockDir(tmp, true)
	if err != nil {
		os.Remove(tmp)
		return nil, removed, fmt.Errorf("scratch: lock %s: %w", tmp, err)
	}
	final := filepath.Join(parent, Prefix+strings.TrimPrefix(filepath.Base(tmp), creatingPrefix))
	if err := os.Rename(tmp, final); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, removed, fmt.Errorf("scratch: name %s: %w", final, err)
	}
	return &Dir{Path: final, lock: f}, removed, nil
}

// Close removes the directory and its files and releases the lock.
func (d *Dir) Close() error {
	err := os.RemoveAll(d.Path)
	if cerr := d.lock.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("scratch: remove %s: %w", d.Path, err)
	}
	return nil
}

// Sweep removes the scratch directories under parent whose owner is gone and
// says what each held. Directories of live processes are left alone.
func Sweep(parent string) ([]Removed, error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("scratch: read %s: %w", parent, err)
	}
	var removed []Removed
	var errs []error
	for _, e := range entries {
		name := e.Name()
		creating := strings.HasPrefix(name, creatingPrefix)
		if !e.IsDir() || !creating && !strings.HasPrefix(name, Prefix) {
			continue
		}
		path := filepath.Join(parent, name)
		if creating {
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < staleCreating {
				continue
			}
		}
		f, err := lockDir(path, false)
		if errors.Is(err, errLocked) || errors.Is(err, fs.ErrNotExist) {
			continue // a live owner, or another sweep got there first
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("scratch: lock %s: %w", path, err))
			continue
		}
		r := Removed{Path: path}
		_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					r.Files++
					r.Bytes += info.Size()
				}
			}
			return nil
		})
		err = os.RemoveAll(path)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("scratch: remove %s: %w", path, err))
			continue
		}
		removed = append(removed, r)
	}
	return removed, errors.Join(errs...)
}
