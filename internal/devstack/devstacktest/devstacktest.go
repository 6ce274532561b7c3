// Package devstacktest gives a Go test a running, provisioned local stack.
package devstacktest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// Start starts a stack for t in a temporary run directory and stops it when
// the test ends. When the test failed, it logs the end of every process's log.
func Start(t testing.TB, opt devstack.Options) *devstack.Stack {
	t.Helper()
	s, err := StartMain(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(LogTails(s.RunDir, 3000))
		}
		Stop(s)
	})
	return s
}

// StartMain starts a stack for a whole test package (from TestMain). The
// caller stops it with Stop. Unless opt.RunDir is set, logs go to a fresh
// temporary directory that Stop removes.
func StartMain(opt devstack.Options) (*devstack.Stack, error) {
	if opt.RunDir == "" {
		dir, err := os.MkdirTemp("", "feedpipe-stack-")
		if err != nil {
			return nil, err
		}
		opt.RunDir = dir
	}
	if opt.Logger == nil && os.Getenv("FEEDPIPE_STACK_VERBOSE") != "" {
		opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("start local stack (logs in %s): %w", opt.RunDir, err)
	}
	return s, nil
}

// Stop stops s and removes its run directory if it was a temporary one.
func Stop(s *devstack.Stack) {
	s.Stop()
	if filepath.Base(filepath.Dir(s.RunDir)) == filepath.Base(os.TempDir()) {
		os.RemoveAll(s.RunDir)
	}
}

// LogTails returns the last n bytes of every log in dir.
func LogTails(dir string, n int64) string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := ""
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if int64(len(b)) > n {
			b = b[int64(len(b))-n:]
		}
		out += fmt.Sprintf("==== %s (last %d bytes)\n%s\n", name, len(b), b)
	}
	return out
}
