// Package integration holds end-to-end tests against the local stack: a real
// Temporal server, MiniStack and fakesnow run as local processes (see
// internal/devstack). The compatibility tests here are the evidence of what
// each emulator does for the calls feedpipe makes; where one cannot, the test
// skips with the gap named.
package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/devstack/devstacktest"
)

// stack is shared by the package's tests; each test uses its own keys,
// queues or tables so they do not see each other's data.
var stack *devstack.Stack

func TestMain(m *testing.M) {
	s, err := devstacktest.StartMain(devstack.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	stack = s
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, devstacktest.LogTails(s.RunDir, 4000))
	}
	devstacktest.Stop(s)
	os.Exit(code)
}
