package integration

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// `make stack` runs cmd/devstack: it prints every endpoint, serves the
// Temporal UI, and on Ctrl-C stops every process it started.
func TestStackCommandServesUIAndStopsCleanly(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildCmd(t, ctx, "devstack")
	runDir := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "-run-dir", runDir, "-temporal-port", "0", "-ui-port", "0", "-aws-port", "0", "-snowflake-port", "0")
	cmd.Dir = root
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl-C stops everything.") {
			break
		}
	}
	text := out.String()
	for _, want := range []string{"Temporal UI", "AWS (MiniStack)", "Snowflake", "export TEMPORAL_ADDRESS=", "export AWS_ENDPOINT_URL=", "export SNOWFLAKE_DSN=", "Payload codec", "export FEEDPIPE_CODEC_KEYS_FILE="} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	ui := regexp.MustCompile(`Temporal UI\s+(http://\S+)`).FindStringSubmatch(text)
	if ui == nil {
		t.Fatalf("no UI URL in output:\n%s", text)
	}
	if page := httpGet(t, ctx, ui[1]); !strings.Contains(page, "<html") {
		t.Errorf("GET %s is not the UI page: %.200s", ui[1], page)
	}
	var pids []int
	for _, m := range regexp.MustCompile(`process \S+\s+pid (\d+)`).FindAllStringSubmatch(text, -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	if len(pids) != 3 {
		t.Fatalf("want 3 process pids in output, got %v:\n%s", pids, text)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("devstack exited with %v after Ctrl-C, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not exit within 30s of Ctrl-C")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after the stack stopped (kill 0: %v)", pid, err)
		}
	}
}
