package devstack

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Part names: the programs of the stack.
const (
	PartTemporal  = "temporal"
	PartMiniStack = "ministack"
	PartFakesnow  = "fakesnow"
)

// part is one program of the stack, with what it takes to start it again on
// the same ports and data: a part can be stopped, started, frozen and thawed
// while the others go on (chaos tests, and a supervisor that restarts a part
// that exited).
type part struct {
	name  string
	argv  []string
	env   []string
	log   string
	ready func(ctx context.Context, p *Process) error

	mu   sync.Mutex
	proc *Process
	held bool // stopped on purpose: the supervisor leaves it down
}

func (p *part) current() *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc
}

func (s *Stack) part(name string) (*part, error) {
	for _, p := range s.parts {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("devstack: no part %q (parts: %s, %s, %s)", name, PartTemporal, PartMiniStack, PartFakesnow)
}

// start starts the part; its log is appended to after the first start.
func (p *part) start(appendLog bool) error {
	proc, err := startProcess(p.name, p.log, p.env, appendLog, p.argv...)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.proc, p.held = proc, false
	p.mu.Unlock()
	return nil
}

// StopPart stops one part (SIGTERM, then SIGKILL after 10 s) and leaves the
// others running. MiniStack saves its state on SIGTERM when the stack
// persists (Options.Persist).
func (s *Stack) StopPart(name string) error {
	p, err := s.part(name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
	proc := p.current()
	_ = syscall.Kill(-proc.PID(), syscall.SIGCONT) // a frozen part cannot stop
	proc.Stop(10 * time.Second)
	return nil
}

// StartPart starts a stopped (or exited) part again, on the same port with
// the same data directory, and waits until it answers. When MiniStack or
// fakesnow comes back, the resources are provisioned again (a no-op for
// those that it kept).
func (s *Stack) StartPart(ctx context.Context, name string) error {
	p, err := s.part(name)
	if err != nil {
		return err
	}
	if done, _ := p.current().Exited(); !done {
		return fmt.Errorf("devstack: %s is running (pid %d)", name, p.current().PID())
	}
	if err := p.start(true); err != nil {
		return err
	}
	if err := p.ready(ctx, p.current()); err != nil {
		return err
	}
	if name == PartTemporal {
		return nil
	}
	return s.provision(ctx)
}

// RestartPart stops one part and starts it again.
func (s *Stack) RestartPart(ctx context.Context, name string) error {
	if err := s.StopPart(name); err != nil {
		return err
	}
	return s.StartPart(ctx, name)
}

// Freeze stops a part's processes (SIGSTOP) without ending them: it holds its
// connections and answers nothing, as a hung server does, until Thaw.
func (s *Stack) Freeze(name string) error { return s.signalPart(name, syscall.SIGSTOP) }

// Thaw lets a frozen part go on (SIGCONT).
func (s *Stack) Thaw(name string) error { return s.signalPart(name, syscall.SIGCONT) }

func (s *Stack) signalPart(name string, sig syscall.Signal) error {
	p, err := s.part(name)
	if err != nil {
		return err
	}
	pid := p.current().PID()
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("devstack: signal %s (pid %d): %w", name, pid, err)
	}
	return nil
}

// Supervise restarts any part that exits, until ctx ends, so that one part
// going down does not take the stack with it; with Options.Persist the part
// comes back with its data. It reports each restart (or failure to restart)
// to report.
func (s *Stack) Supervise(ctx context.Context, every time.Duration, report func(part string, exitErr, restartErr error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range s.parts {
			p.mu.Lock()
			held := p.held
			p.mu.Unlock()
			done, exitErr := p.current().Exited()
			if !done || held {
				continue
			}
			err := s.StartPart(ctx, p.name)
			if ctx.Err() != nil {
				return
			}
			report(p.name, exitErr, err)
		}
	}
}
