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
	// stack, as a process (logging to logPath) or a container; it is
	// stopped and removed when t ends.
	StartWorker(t *testing.T, cfgPath, logPath string) runningWorker
	// LogTails is the end of every part's log, for a failed run.
	LogTails(n int64) string
	// Stop stops the stack and removes what it made; it is called once.
	Stop() error
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
// and skip there. A run on containers without -run fails unless each of
// these ran (a renamed test is not silently left out).
var containerTests = map[string]bool{
	"TestFeedCleanLandsIntact":                            true,
	"TestFeedBadLinesQuarantined":                         true,
	"TestFeedWorkerKilledMidPutLosesAndDoublesNothing":    true,
	"TestFeedWorkerKilledInDeliveryResumesFromCheckpoint": true,
	"TestFeedWorkerKilledInConvertResumesAfterItsParts":   true,
	"TestContainerStackRunsTheComposeFile":                true,
}

// admitted holds the names of the tests onStack let run.
var admitted sync.Map

// onStack skips t when the stack is the container stack and t is not one of
// containerTests. Every test calls it first (most through testCtx).
func onStack(t *testing.T) {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	if parts.Kind() == "containers" && !containerTests[name] {
		t.Skip("needs the process stack (FEEDPIPE_STACK=processes)")
	}
	admitted.Store(name, true)
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	began := time.Now()
	flag.Parse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// An interrupted run (Ctrl-C, or SIGTERM from CI) removes what it
	// started: during the start, by cancelling it (the start removes what
	// it made); after, by stopping the stack here.
	var (
		mu   sync.Mutex
		stop func() error
	)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		cancel()
		mu.Lock()
		stopStack := stop
		mu.Unlock()
		if stopStack != nil {
			fmt.Fprintf(os.Stderr, "integration: %v: stopping the %s stack\n", sig, parts.Kind())
			_ = stopStack()
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "integration: %v: cancelling the start\n", sig)
	}()

	var err error
	switch kind := os.Getenv("FEEDPIPE_STACK"); kind {
	case "", "processes":
		parts, err = startProcessStack()
	case "containers":
		parts, err = startContainers(ctx)
	default:
		err = fmt.Errorf("FEEDPIPE_STACK=%q: want processes (the default) or containers", kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	// The signal handler, the watchdog and the end of the run may each
	// stop the stack; it stops once, and a later caller waits for it.
	stopOnce := sync.OnceValue(parts.Stop)
	mu.Lock()
	stop = stopOnce
	mu.Unlock()
	if ctx.Err() != nil { // interrupted as the start ended
		_ = stopOnce()
		return 1
	}

	// go test's -timeout ends the process with a panic that runs no deferred
	// call (and go test kills it soon after): stop the stack 90 s before the
	// earliest of those, so that a run that hangs still removes its
	// processes, containers and network.
	if d, ok := flag.Lookup("test.timeout").Value.(flag.Getter).Get().(time.Duration); ok && d > 3*time.Minute {
		watchdog := time.AfterFunc(time.Until(began.Add(d-90*time.Second)), func() {
			fmt.Fprintf(os.Stderr, "integration: the test timeout (%s) is near: stopping the %s stack\n", d, parts.Kind())
			_ = stopOnce()
		})
		defer watchdog.Stop()
	}
	code, err := withWorker(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		code = 1
	}
	if parts.Kind() == "containers" && flag.Lookup("test.run").Value.String() == "" {
		for name := range containerTests {
			if _, ok := admitted.Load(name); !ok {
				fmt.Fprintf(os.Stderr, "integration: %s is listed in containerTests but did not run on the container stack\n", name)
				code = 1
			}
		}
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, parts.LogTails(4000))
	}
	if err := stopOnce(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: stop the stack:", err)
		code = 1
	}
	return code
}

// processStack is the stack of local processes (internal/devstack).
type processStack struct{ s *devstack.Stack }

func startProcessStack() (*processStack, error) {
	s, err := devstacktest.StartMain(devstack.Options{})
	if err != nil {
		return nil, err
	}
	stack = s
	return &processStack{s: s}, nil
}

// Kind is "processes".
func (p *processStack) Kind() string { return "processes" }

// LogTails is the end of each process's log.
func (p *processStack) LogTails(n int64) string { return devstacktest.LogTails(p.s.RunDir, n) }

// Stop stops every process and removes a temporary run directory.
func (p *processStack) Stop() error {
	devstacktest.Stop(p.s)
	return nil
}

// StartWorker builds cmd/worker and runs it against the stack.
func (p *processStack) StartWorker(t *testing.T, cfgPath, logPath string) runningWorker {
	t.Helper()
	return startWorkerProcess(t, buildCmd(t, context.Background(), "worker"), cfgPath, logPath)
}

// containers adapts the container stack to testStack.
type containers struct{ *containerStack }

func startContainers(ctx context.Context) (*containers, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	root, err := devstack.FindRoot()
	if err != nil {
		return nil, err
	}
	s, cs, err := startContainerStack(ctx, root, filepath.Join(root, ".run", "integration-containers"))
	if err != nil {
		return nil, err
	}
	stack = s
	return &containers{cs}, nil
}

// Kind is "containers".
func (c *containers) Kind() string { return "containers" }

// StartWorker starts a worker container; the log path is unused (Log reads
// the container's output).
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
