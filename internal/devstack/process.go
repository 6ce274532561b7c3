package devstack

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one child program of the stack. It runs in its own process
// group, so that stopping it also stops what it started (MiniStack runs Glue
// scripts as children), and it is killed by the kernel if the harness dies
// first, so a crashed test leaves no orphan behind.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// StartProcess starts argv with env, its output written to logPath.
func StartProcess(name, logPath string, env []string, argv ...string) (*Process, error) {
	return startProcess(name, logPath, env, false, argv...)
}

// startProcess starts argv; its output replaces logPath, or is appended to
// it when a part starts again.
func startProcess(name, logPath string, env []string, appendLog bool, argv ...string) (*Process, error) {
	mode := os.O_TRUNC
	if appendLog {
		mode = os.O_APPEND
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|mode, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended, with how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) {
	if done, _ := p.Exited(); done {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that left the group's leader behind still belong to the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Kill ends the process group at once (SIGKILL), as a crash or an OOM kill
// does, and waits for it.
func (p *Process) Kill() {
	if done, _ := p.Exited(); done {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// RSS is the resident set size of the process and its descendants.
func (p *Process) RSS() int64 {
	if p.cmd.Process == nil {
		return 0
	}
	return treeRSS(p.cmd.Process.Pid)
}

func treeRSS(pid int) int64 {
	total := readRSS(pid)
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return total
	}
	for _, f := range strings.Fields(string(children)) {
		if c, err := strconv.Atoi(f); err == nil {
			total += treeRSS(c)
		}
	}
	return total
}

func readRSS(pid int) int64 { return readStatusKB(pid, "VmRSS:") }

func readStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// Tail returns the last n bytes of the process's log, for error messages.
func (p *Process) Tail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	k, _ := f.ReadAt(buf, off)
	return string(buf[:k])
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// PeakRSS is the process's own peak resident set size (VmHWM), in bytes.
func (p *Process) PeakRSS() int64 { return readStatusKB(p.cmd.Process.Pid, "VmHWM:") }
