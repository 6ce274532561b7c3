// Package integration holds end-to-end tests against the local stack: a real
// Temporal server, MiniStack and fakesnow run as local processes (see
// internal/devstack). The compatibility tests here are the evidence of what
// each emulator does for the calls feedpipe makes; the feed tests drive the
// product through its real event path (upload → EventBridge → SQS → starter
// → worker → Snowflake).
package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/devstack/devstacktest"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// The package's tests share one stack, one in-process worker and one
// listener on the feed queue; each test uses its own keys, queues or tables.
var (
	stack  *devstack.Stack
	tc     client.Client
	config *pipeline.Config
	starts *starter.Starter
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	s, err := devstacktest.StartMain(devstack.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	stack = s
	defer devstacktest.Stop(s)
	code, err := withWorker(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, devstacktest.LogTails(s.RunDir, 4000))
	}
	return code
}

func withWorker(m *testing.M) (int, error) {
	root, err := devstack.FindRoot()
	if err != nil {
		return 1, err
	}
	if config, err = pipeline.Load(filepath.Join(root, "pipelines.local.toml")); err != nil {
		return 1, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if tc, err = client.Dial(client.Options{HostPort: stack.TemporalAddress, Namespace: stack.TemporalNamespace}); err != nil {
		return 1, err
	}
	defer tc.Close()
	sf, err := stack.OpenSnowflake(stack.Names.Snowflake.Database, stack.Names.Snowflake.Schema)
	if err != nil {
		return 1, err
	}
	defer sf.Close()
	c := clients()
	// The shipped worker settings and activity defaults: nothing here waits,
	// polls or heartbeats faster than what users run.
	w := worker.New(tc, config.TaskQueue, workflows.WorkerOptions())
	workflows.Register(w, &activities.Activities{S3: c.S3, Kinesis: c.Kinesis, Glue: c.Glue, Snowflake: sf, Logger: logger})
	if err := w.Start(); err != nil {
		return 1, err
	}
	defer w.Stop()

	starts = &starter.Starter{Temporal: tc, S3: c.S3, SQS: c.SQS, Config: config, Logger: logger}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = starts.Listen(ctx, stack.AWS.FeedQueueURL)
	}()
	defer func() { cancel(); <-done }()
	return m.Run(), nil
}
