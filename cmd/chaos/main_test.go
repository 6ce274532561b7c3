package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestKeepLogsOnlyKeepsLogsAndTheirDirectories(t *testing.T) {
	dir := t.TempDir()
	files := map[string]bool{ // path: kept
		"worker-1.log":              true,
		"devtemporal.out":           true,
		"temporal.log":              true,
		"temporal.db":               false,
		"ministack/data/s3/obj.bin": false,
		"ministack/ministack.log":   true,
		"feeds/customers.ndjson":    false,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link to a directory outside: unlinked, its target untouched.
	outside := t.TempDir()
	kept := filepath.Join(outside, "keep.bin")
	if err := os.WriteFile(kept, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "ministack", "link")); err != nil {
		t.Fatal(err)
	}
	if err := keepLogsOnly(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the link's target was touched: %v", err)
	}
	var left []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		left = append(left, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "devtemporal.out", "ministack", "ministack/ministack.log", "temporal.log", "worker-1.log"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %q, want %q", left, want)
	}
}

func TestOutcomePassed(t *testing.T) {
	for _, c := range []struct {
		o    outcome
		want bool
	}{
		{outcome{reconciled: 3, expected: 3}, true},
		{outcome{reconciled: 2, expected: 3}, false},
		{outcome{reconciled: 3, expected: 3, lost: 1}, false},
		{outcome{reconciled: 3, expected: 3, duplicated: 1}, false},
		{outcome{reconciled: 3, expected: 3, stuck: 1}, false},
		{outcome{reconciled: 3, expected: 3, err: os.ErrNotExist}, false},
	} {
		if got := c.o.passed(); got != c.want {
			t.Errorf("%+v: passed %v, want %v", c.o, got, c.want)
		}
	}
}
