package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// A worker sent SIGTERM as soon as it has made its scratch directory (still
// starting up) stops in order and removes the directory. make chaos found
// one that did not: the signal arrived before the worker listened for it.
func TestWorkerStoppedWhileStartingLeavesNoScratch(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildCmd(t, ctx, "worker")
	for i := range 3 {
		tmp := t.TempDir()
		cmd := exec.Command(bin, "-config", filepath.Join(root, "pipelines.local.toml"), "-temp-dir", tmp)
		cmd.Env = append(os.Environ(), stack.Env()...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for {
			if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
				break
			}
			if ctx.Err() != nil {
				cmd.Process.Kill()
				t.Fatal("the worker made no scratch directory")
			}
			time.Sleep(time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the worker did not stop within 30 s of SIGTERM")
		}
		if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
			t.Fatalf("try %d: the worker stopped with SIGTERM during startup and left %s", i+1, entries[0].Name())
		}
	}
}
