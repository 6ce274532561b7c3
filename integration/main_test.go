// Package integration holds end-to-end tests against the local stack: a real
// Temporal server, MiniStack and fakesnow run as local processes (see
// internal/devstack), or, with FEEDPIPE_STACK=containers, as the containers
// of docker-compose.yml started by testcontainers-go (containers_test.go).
// The compatibility tests here are the evidence of what each emulator does
// for the calls feedpipe makes; the feed tests drive the product through its
// real event path (upload → EventBridge → SQS → starter → worker → Snowflake).
package integration

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/devstack/devstacktest"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// The package's tests share one stack, one worker and one listener on the
// feed queue; each test uses its own keys, queues or tables. On the process
// stack the worker and the listener run in the test process; on the
// container stack they are its worker and starter containers.
var (
	stack  *devstack.Stack
	parts  testStack
	tc     client.Client
	config *pipeline.Config
	starts *starter.Starter
)

// testStack is what differs between the two stacks the tests run against:
// FEEDPIPE_STACK=processes (the default) or containers.
type testStack interface {
	// Kind is "processes" or "containers".
	Kind() string
	// StartWorker starts cmd/worker with the pipelines file against the
	// stack, as a process (logging to logPath) or a container.
	StartWorker(t *testing.T, cfgPath, logPath string) runningWorker
	// LogTails is the end of every part's log, for a failed run.
	LogTails(n int64) string
	// Stop stops the stack and removes what it made.
	Stop()
}

// runningWorker is a worker started by a test.
type runningWorker interface {
	// Kill stops the worker with SIGKILL and waits until it is gone.
	Kill(t *testing.T)
	// Log is the worker's output.
	Log() []byte
}

// containerTests run on the container stack too; the others need parts of
// the process stack (stopping a part, the codec, the UI, a second server)
// and skip there.
var containerTests = map[string]bool{
	"TestFeedCleanLandsIntact":                            true,
	"TestFeedBadLinesQuarantined":                         true,
	"TestFeedWorkerKilledMidPutLosesAndDoublesNothing":    true,
	"TestFeedWorkerKilledInDeliveryResumesFromCheckpoint": true,
	"TestFeedWorkerKilledInConvertResumesAfterItsParts":   true,
	"TestContainerStackLeavesOnlyWhatItRuns":              true,
}

// onStack skips t when the stack is the container stack and t is not one of
// containerTests.
func onStack(t *testing.T) {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	if parts.Kind() == "containers" && !containerTests[name] {
		t.Skip("needs the process stack (FEEDPIPE_STACK=processes)")
	}
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	switch kind := os.Getenv("FEEDPIPE_STACK"); kind {
	case "", "processes":
		parts, err = startProcessStack()
	case "containers":
		parts, err = startContainers()
	default:
		err = fmt.Errorf("FEEDPIPE_STACK=%q: want processes (the default) or containers", kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	// A test run interrupted (Ctrl-C, or killed by a CI timeout with SIGTERM)
	// still removes what it started.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "integration: %v: stopping the %s stack\n", sig, parts.Kind())
		parts.Stop()
		os.Exit(1)
	}()
	defer parts.Stop()
	// go test's -timeout ends the process with a panic that runs no deferred
	// call: stop the stack a minute before it, so that a run that hangs
	// still removes its processes, containers and network.
	flag.Parse()
	if d, ok := flag.Lookup("test.timeout").Value.(flag.Getter).Get().(time.Duration); ok && d > 2*time.Minute {
		watchdog := time.AfterFunc(d-time.Minute, func() {
			fmt.Fprintf(os.Stderr, "integration: the test timeout (%s) is a minute away: stopping the %s stack\n", d, parts.Kind())
			parts.Stop()
		})
		defer watchdog.Stop()
	}
	code, err := withWorker(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, parts.LogTails(4000))
	}
	return code
}

// processStack is the stack of local processes (internal/devstack).
type processStack struct {
	s *devstack.Stack

	once      sync.Once
	workerBin string
	buildErr  error
}

func startProcessStack() (*processStack, error) {
	s, err := devstacktest.StartMain(devstack.Options{})
	if err != nil {
		return nil, err
	}
	stack = s
	return &processStack{s: s}, nil
}

func (p *processStack) Kind() string            { return "processes" }
func (p *processStack) LogTails(n int64) string { return devstacktest.LogTails(p.s.RunDir, n) }
func (p *processStack) Stop()                   { devstacktest.Stop(p.s) }

// StartWorker builds cmd/worker once and runs it against the stack.
func (p *processStack) StartWorker(t *testing.T, cfgPath, logPath string) runningWorker {
	t.Helper()
	p.once.Do(func() {
		p.workerBin = filepath.Join(p.s.RunDir, "bin", "worker")
		root, err := devstack.FindRoot()
		if err != nil {
			p.buildErr = err
			return
		}
		build := exec.Command("go", "build", "-o", p.workerBin, "./cmd/worker")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			p.buildErr = fmt.Errorf("go build ./cmd/worker: %v\n%s", err, out)
		}
	})
	if p.buildErr != nil {
		t.Fatal(p.buildErr)
	}
	return startWorkerProcess(t, p.workerBin, cfgPath, logPath)
}

// containers adapts the container stack to testStack.
type containers struct{ *containerStack }

func startContainers() (*containers, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := devstack.FindRoot()
	if err != nil {
		return nil, err
	}
	s, cs, err := startContainerStack(ctx, filepath.Join(root, ".run", "integration-containers"))
	if err != nil {
		return nil, err
	}
	stack = s
	return &containers{cs}, nil
}

func (c *containers) Kind() string { return "containers" }
func (c *containers) StartWorker(t *testing.T, cfgPath, _ string) runningWorker {
	return c.startWorkerContainer(t, cfgPath)
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
	if parts.Kind() == "containers" {
		// The worker and starter containers run the feeds; a starter here
		// only starts runs that tests ask for.
		starts = &starter.Starter{Temporal: tc, S3: c.S3, SQS: c.SQS, Config: config, Logger: logger}
		return m.Run(), nil
	}
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
