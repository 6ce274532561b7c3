//go:build unix

package scratch

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play a worker: with FEEDPIPE_SCRATCH_CHILD
// set it opens a scratch directory there, writes a part file, prints the
// directory and waits to be killed.
func TestMain(m *testing.M) {
	if parent := os.Getenv("FEEDPIPE_SCRATCH_CHILD"); parent != "" {
		d, _, err := Open(parent)
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		if err := os.WriteFile(filepath.Join(d.Path, "feed-part-00001.parquet"), make([]byte, 4096), 0o644); err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString(d.Path + "\n")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// child starts a process that holds a scratch directory under parent.
func child(t *testing.T, parent string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FEEDPIPE_SCRATCH_CHILD="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

func TestSweepRemovesOnlyDeadWorkersDirectories(t *testing.T) {
	parent := t.TempDir()
	killed, deadDir := child(t, parent)
	_, liveDir := child(t, parent)
	if err := killed.Process.Kill(); err != nil { // SIGKILL: no chance to clean up
		t.Fatal(err)
	}
	killed.Wait()
	other := filepath.Join(parent, "someone-elses-file")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	d, removed, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Path != deadDir || removed[0].Files != 1 || removed[0].Bytes != 4096 {
		t.Fatalf("removed %+v, want only the killed worker's %s with its one 4096-byte file", removed, deadDir)
	}
	for _, p := range []string{liveDir, other, d.Path} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is gone: %v", p, err)
		}
	}
	if _, err := os.Stat(deadDir); !os.IsNotExist(err) {
		t.Errorf("the killed worker's %s is still there", deadDir)
	}
	// This process's own directory is held too, by another open file.
	if again, err := Sweep(parent); err != nil || len(again) != 0 {
		t.Fatalf("second sweep removed %+v (%v), want nothing", again, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
		t.Errorf("Close left %s", d.Path)
	}
}

func TestSweepWaitsForAHalfCreatedDirectory(t *testing.T) {
	parent := t.TempDir()
	fresh := filepath.Join(parent, creatingPrefix+"1")
	stale := filepath.Join(parent, creatingPrefix+"2")
	for _, p := range []string{fresh, stale} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleCreating)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	removed, err := Sweep(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Path != stale {
		t.Fatalf("removed %+v, want only %s", removed, stale)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a directory being created was removed: %v", err)
	}
}

func TestOpenNamesAnUnwritableParent(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(parent, 0o755)
	if _, _, err := Open(parent); err == nil || !strings.Contains(err.Error(), parent) {
		t.Fatalf("err = %v, want one naming %s", err, parent)
	}
}
