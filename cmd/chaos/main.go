// Command chaos injects the faults an operator meets into feedpipe running
// on the local stack (the real worker and starter binaries, the shipped
// pipelines.local.toml) and checks that every feed still lands exactly once
// or says why not. Each fault runs on a fresh stack that keeps its data
// across restarts of its parts. It prints a table and one line
//
//	CHAOS faults=F feeds=N reconciled=R lost=L duplicated=D stuck=S
//
// and exits non-zero unless nothing was lost, doubled or stuck and every
// run that should land did. A fault's directory under the run directory
// keeps only its logs once the fault passed, and everything when it did not.
//
//	go run ./cmd/chaos [-faults worker-kills,temporal-restart] [-run-dir .run/chaos]
package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/faultproxy"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/harness"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	only := flag.String("faults", "", "comma-separated faults to run (default: all); -list shows them")
	list := flag.Bool("list", false, "list the faults and exit")
	runDir := flag.String("run-dir", ".run/chaos", "directory for each fault's stack, logs and data")
	flag.Parse()
	if *list {
		for _, f := range faults {
			fmt.Printf("%-20s %s\n", f.name, f.what)
		}
		return nil
	}
	chosen := faults
	if *only != "" {
		chosen = nil
		for _, name := range strings.Split(*only, ",") {
			i := slices.IndexFunc(faults, func(f fault) bool { return f.name == name })
			if i < 0 {
				return fmt.Errorf("no fault %q; -list shows them", name)
			}
			chosen = append(chosen, faults[i])
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.FindRoot()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*runDir)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	bins, err := harness.Build(ctx, root, filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(root, "pipelines.local.toml")
	cfg, err := pipeline.Load(cfgPath)
	if err != nil {
		return err
	}
	p, err := cfg.Get("customers")
	if err != nil {
		return err
	}

	var results []outcome
	for _, f := range chosen {
		fmt.Printf("── %s: %s\n", f.name, f.what)
		o, err := runFault(ctx, f, bins, root, cfgPath, p, filepath.Join(dir, f.name))
		if err != nil {
			o.err = err
			fmt.Printf("   could not run: %v\n", err)
		}
		results = append(results, o)
		if o.passed() {
			// What the fault's stack stored is of no use once it passed, and
			// every fault's together take gigabytes: its logs are kept.
			if err := keepLogsOnly(filepath.Join(dir, f.name)); err != nil {
				fmt.Printf("   could not prune its run directory: %v\n", err)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return report(results)
}

// fault is one kind of failure, injected while a set of feeds runs.
type fault struct {
	name    string
	what    string
	feeds   int
	records int
	workers int
	// upload sends the generated feeds (e.feeds) into the pipeline; nil
	// uploads them at once, each starting its run through the event path.
	upload func(ctx context.Context, e *env) error
	// inject runs beside the feeds and returns when the fault is over.
	inject func(ctx context.Context, e *env) error
	// proxy, when set, puts a fault proxy with this setting between the
	// workers and MiniStack (their AWS_ENDPOINT_URL); nil fields of the
	// setting inject nothing until the fault sets them.
	proxy func(p *pipeline.Pipeline) faultproxy.Config
	// runs is how many runs each feed version must have had when the fault
	// is over: 1 (the default), or 2 where the fault fails a run and it is
	// run again (a reset or a start makes a new run of the same id).
	runs int
	// patience replaces stuckAfter for a fault whose runs must first fail
	// (past a shipped deadline) and then be run again.
	patience time.Duration
	// injectOutlasts says the fault goes on after the runs close (a poison
	// message on its way to the dead-letter queue): its end is waited for.
	// Otherwise a fault still waiting for its moment when every run has
	// closed missed it, and is stopped.
	injectOutlasts bool
}

// plan is how a feed's run must end.
type plan int

const (
	// land: the run completes and reconciles, every good line loaded once.
	land plan = iota
	// failClean: the run fails with its reason, and not one row of the feed
	// is loaded (its source was deleted or overwritten under it).
	failClean
	// landOrFailClean: either of the two, never anything between (the fault
	// raced the run: it may have read the whole source before it was gone).
	landOrFailClean
)

func (p plan) String() string {
	return [...]string{"land", "fail cleanly", "land or fail cleanly"}[p]
}

// outcome is what one fault did to its feeds.
type outcome struct {
	fault                     string
	feeds, completed          int
	read, loaded, rejected    int64
	lost, duplicated, stuck   int64
	recovered                 time.Duration // from the end of the fault to the last run's close
	notes                     []string
	err                       error
	reconciled                int // feeds whose runs ended as planned
	expected                  int
	injectedAt, injectionDone time.Duration
}

// passed reports whether the fault's feeds all ended as planned, none lost,
// doubled or stuck.
func (o outcome) passed() bool {
	return o.err == nil && o.reconciled == o.expected && o.lost == 0 && o.duplicated == 0 && o.stuck == 0
}

// keepLogsOnly removes every file under dir but what its processes wrote
// of themselves (*.log, and *.out: a process's own stdout and stderr, where
// a crash trace would be), and the directories left empty. A link is
// removed, never followed. It goes on past a file it cannot remove and
// returns every such error.
func keepLogsOnly(dir string) error {
	var dirs []string
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		if ext := filepath.Ext(d.Name()); ext == ".log" || ext == ".out" {
			return nil
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	errs = append(errs, err)
	for i := len(dirs) - 1; i > 0; i-- { // deepest first; dir itself stays
		_ = os.Remove(dirs[i]) // fails, as it should, when logs are left in it
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prune %s: %w", dir, err)
	}
	return nil
}

// recoveredText is the time to recover, or "-" for a fault that was still
// going on when the last run closed (it outlasts the runs by design).
func (o outcome) recoveredText() string {
	if o.recovered == 0 {
		return "-"
	}
	return o.recovered.Round(100 * time.Millisecond).String()
}

// stuckAfter is how long a fault's runs may take in all before the ones still
// open count as stuck. The shipped deadlines are longer; a run that needs
// more than this on a 2,000–20,000-line feed is stuck in practice.
const stuckAfter = 10 * time.Minute

func runFault(ctx context.Context, f fault, bins harness.Bins, root, cfgPath string, p *pipeline.Pipeline, dir string) (outcome, error) {
	o := outcome{fault: f.name}
	s, err := devstack.Start(ctx, devstack.Options{RunDir: dir, Root: root, Persist: true})
	if err != nil {
		return o, err
	}
	defer s.Stop()
	e := &env{stack: s, bins: bins, cfgPath: cfgPath, p: p, dir: dir, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	defer e.stopAll()
	if f.proxy != nil {
		target, err := url.Parse(s.AWSEndpoint)
		if err != nil {
			return o, err
		}
		proxy, proxyURL, stopProxy, err := faultproxy.Start(ctx, target, f.proxy(p))
		if err != nil {
			return o, err
		}
		defer stopProxy()
		e.proxy, e.proxyURL = proxy, proxyURL
	}
	for range max(f.workers, 1) {
		if _, err := e.startWorker(); err != nil {
			return o, err
		}
	}
	if err := e.startStarter(); err != nil {
		return o, err
	}
	e.aws = provision.NewAWSClients(s.AWSConfig(), true)
	e.s3 = e.aws.S3
	if e.tc, err = client.Dial(client.Options{HostPort: s.TemporalAddress, Namespace: s.TemporalNamespace, Logger: harness.QuietLogger{}}); err != nil {
		return o, err
	}
	defer e.tc.Close()
	if e.db, err = s.OpenSnowflake(s.Names.Snowflake.Database, s.Names.Snowflake.Schema); err != nil {
		return o, err
	}
	defer e.db.Close()

	feeds, err := harness.Generate(p, "chaos-"+f.name, f.feeds, f.records, 1000)
	if err != nil {
		return o, err
	}
	e.feeds, e.plans = feeds, make([]plan, len(feeds))
	runCtx, cancel := context.WithTimeout(ctx, cmp.Or(f.patience, stuckAfter))
	defer cancel()
	e.t0 = time.Now()
	upload := f.upload
	if upload == nil {
		upload = func(ctx context.Context, e *env) error { return harness.Upload(ctx, e.s3, e.feeds) }
	}
	if err := upload(runCtx, e); err != nil {
		return o, err
	}

	var injected time.Time
	injectErr := make(chan error, 1)
	injectCtx, stopInjecting := context.WithCancel(runCtx)
	defer stopInjecting()
	go func() {
		err := f.inject(injectCtx, e)
		injected = time.Now()
		injectErr <- err
	}()
	results := make([]workflowsResult, 0, len(e.feeds))
	var last time.Time
	follow := func(feeds []harness.Feed) {
		rs := make([]workflowsResult, len(feeds))
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(runCtx)
		for i := range feeds {
			g.Go(func() error {
				r := &rs[i]
				r.res, r.err = harness.WaitClosed(gctx, e.tc, feeds[i].Ref, nil)
				if r.err == nil || !errors.Is(r.err, context.DeadlineExceeded) && !errors.Is(r.err, context.Canceled) {
					r.closed = true
					mu.Lock()
					last = time.Now()
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		results = append(results, rs...)
	}
	follow(e.feedList())
	var ierr error
	if f.injectOutlasts {
		ierr = <-injectErr
	} else {
		stopInjecting() // every run has closed (or is stuck): a fault still waiting for its moment missed it
		ierr = <-injectErr
	}
	if err := ierr; err != nil {
		o.err = fmt.Errorf("the fault was not injected as planned: %w", err)
		o.notes = append(o.notes, o.err.Error())
	}
	// Feeds the fault uploaded itself (new versions of a key) are followed
	// once it is over; after a fault that outlasts the runs, every feed is
	// followed again, to the close of its latest run (one it reset or
	// started again).
	all, plans := e.feedList(), e.planList()
	if f.injectOutlasts {
		results = results[:0]
	}
	follow(all[len(results):])
	o.notes = append(o.notes, e.notes...)
	if !last.IsZero() && last.After(injected) {
		o.recovered = last.Sub(injected)
	}
	o.feeds = len(all)

	// The account: every closed run's counts, Snowflake's rows of each feed,
	// and how many runs each feed version had.
	replaced := supersededUploads(all, results, p)
	wantRuns := max(f.runs, 1)
	for i, f := range all {
		r, want := results[i], plans[i]
		if !r.closed {
			o.stuck++
			continue
		}
		c := r.res.Counts
		o.read, o.loaded, o.rejected = o.read+c.Read, o.loaded+c.Loaded, o.rejected+c.Rejected
		if r.err == nil {
			o.completed++
		}
		rows, lines, err := harness.Rows(ctx, e.db, p, f.Ref.ID())
		if err != nil {
			return o, err
		}
		o.duplicated += rows - lines
		runs, err := e.runsOf(ctx, f.Ref)
		if err != nil {
			return o, err
		}
		landed := r.err == nil && c.Read == int64(f.Stats.Lines) && c.Read == c.Loaded+c.Rejected && rows == c.Loaded && lines == int64(f.Stats.Good)
		if replaced[i] {
			// A newer upload of the key landed on a replace pipeline: this
			// upload's rows must be gone, whichever was confirmed first.
			landed = r.err == nil && c.Read == int64(f.Stats.Lines) && c.Read == c.Loaded+c.Rejected && rows == 0
		}
		// Failing cleanly is failing in the put (the source was deleted or
		// overwritten under it), having loaded nothing.
		failedClean := r.err != nil && rows == 0 && c.Loaded == 0 && r.res.FailedStage == workflows.StagePut &&
			workflows.ErrorType(r.err) == "NotFound"
		if want == land && !replaced[i] && lines < int64(f.Stats.Good) {
			o.lost += int64(f.Stats.Good) - lines
		}
		ok := runs == wantRuns && (want == land && landed || want == failClean && failedClean || want == landOrFailClean && (landed || failedClean))
		if ok {
			o.reconciled++
		}
		switch {
		case !ok && r.err != nil:
			o.notes = append(o.notes, fmt.Sprintf("%s@%s should %s; it failed with %d rows loaded, %d runs: %v", f.Ref.Key, f.Ref.ETag, want, rows, runs, r.err))
		case !ok:
			o.notes = append(o.notes, fmt.Sprintf("%s@%s should %s; it completed with counts %+v, %d rows of %d lines (%d good), %d runs", f.Ref.Key, f.Ref.ETag, want, c, rows, lines, f.Stats.Good, runs))
		case r.err != nil:
			o.notes = append(o.notes, fmt.Sprintf("%s@%s failed as planned, nothing loaded: %v", f.Ref.Key, f.Ref.ETag, reason(r.err)))
		case r.res.SupersededBy != "":
			o.notes = append(o.notes, fmt.Sprintf("%s@%s was confirmed after a newer upload (%s) and removed its own %d rows", f.Ref.Key, f.Ref.ETag, r.res.SupersededBy, r.res.ReplacedRows))
		case r.res.ReplacedRows > 0:
			o.notes = append(o.notes, fmt.Sprintf("%s@%s replaced %d rows of the key's earlier upload", f.Ref.Key, f.Ref.ETag, r.res.ReplacedRows))
		}
	}
	o.expected = len(all)
	if note, err := e.checkScratch(); err != nil {
		o.notes = append(o.notes, err.Error())
		o.err = errors.Join(o.err, err)
	} else if note != "" {
		o.notes = append(o.notes, note)
	}
	if o.err != nil {
		fmt.Printf("   FAULT FAILED: %v\n", o.err)
	}
	fmt.Printf("   %d/%d as planned · lost %d · duplicated %d · stuck %d · recovered %s after the fault\n",
		o.reconciled, o.feeds, o.lost, o.duplicated, o.stuck, o.recoveredText())
	for _, n := range o.notes {
		fmt.Printf("   %s\n", n)
	}
	return o, nil
}

// supersededUploads marks the feeds that a later upload of the same key
// replaced: on a replace pipeline, a newer upload (later in feeds) that
// completed removes the earlier ones' rows.
func supersededUploads(feeds []harness.Feed, results []workflowsResult, p *pipeline.Pipeline) []bool {
	out := make([]bool, len(feeds))
	if p.OnNewVersion != pipeline.NewVersionReplace {
		return out
	}
	for i := range feeds {
		for j := i + 1; j < len(feeds); j++ {
			if feeds[j].Ref.Key == feeds[i].Ref.Key && results[j].closed && results[j].err == nil {
				out[i] = true
			}
		}
	}
	return out
}

// reason is a failed run's own failure message, without the client's
// wrapping (workflow id, run id).
func reason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Error()
	}
	return err.Error()
}

type workflowsResult struct {
	res    workflows.FeedResult
	err    error
	closed bool
}

func report(results []outcome) error {
	fmt.Println()
	fmt.Printf("%-20s %5s %9s %10s %8s %8s %8s %5s %10s %6s %9s\n", "fault", "feeds", "completed", "as planned", "read", "loaded", "rejected", "lost", "duplicated", "stuck", "recovered")
	var feeds, reconciled int
	var lost, dup, stuck int64
	bad := false
	for _, o := range results {
		feeds += o.feeds
		reconciled += o.reconciled
		lost, dup, stuck = lost+o.lost, dup+o.duplicated, stuck+o.stuck
		if !o.passed() {
			bad = true
		}
		status := fmt.Sprintf("%d", o.completed)
		if o.err != nil {
			status = "error"
		}
		fmt.Printf("%-20s %5d %9s %10s %8d %8d %8d %5d %10d %6d %9s\n", o.fault, o.feeds, status, fmt.Sprintf("%d/%d", o.reconciled, o.expected), o.read, o.loaded, o.rejected,
			o.lost, o.duplicated, o.stuck, o.recoveredText())
	}
	fmt.Printf("CHAOS faults=%d feeds=%d reconciled=%d lost=%d duplicated=%d stuck=%d\n", len(results), feeds, reconciled, lost, dup, stuck)
	if bad || lost > 0 || dup > 0 || stuck > 0 {
		return errors.New("a fault lost, doubled or stranded a feed, or a run that should have landed did not")
	}
	return nil
}

// env is one fault's stack and processes.
type env struct {
	stack   *devstack.Stack
	bins    harness.Bins
	cfgPath string
	p       *pipeline.Pipeline
	dir     string
	aws     provision.AWSClients
	s3      *s3.Client
	tc      client.Client
	db      *sql.DB
	t0      time.Time
	rng     *rand.Rand

	mu       sync.Mutex
	feeds    []harness.Feed    // every feed version the fault's runs are for
	plans    []plan            // how each of feeds must end
	events   []string          // Object Created messages the fault delivers again
	proxy    *faultproxy.Proxy // between the workers and MiniStack, if the fault has one
	proxyURL string
	workers  []*devstack.Process // the live ones
	starter  *devstack.Process
	started  int
	killed   int // workers SIGKILLed
	notes    []string
}

func (e *env) note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notes = append(e.notes, fmt.Sprintf("%6.1fs ", time.Since(e.t0).Seconds())+fmt.Sprintf(format, args...))
}

// feedList is a copy of the feeds so far.
func (e *env) feedList() []harness.Feed {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.feeds)
}

func (e *env) planList() []plan {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.plans)
}

// addFeed records a feed version the fault uploaded, and how it must end.
func (e *env) addFeed(f harness.Feed, p plan) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.feeds = append(e.feeds, f)
	e.plans = append(e.plans, p)
}

// setPlan changes how feed i must end.
func (e *env) setPlan(i int, p plan) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plans[i] = p
}

// runsOf counts the runs of ref's workflow id, as visibility lists them: one
// feed version must have exactly one.
func (e *env) runsOf(ctx context.Context, ref feed.Ref) (int, error) {
	n := 0
	var token []byte
	for {
		out, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", strings.ReplaceAll(ref.WorkflowID(), "'", "\\'")), NextPageToken: token})
		if err != nil {
			return 0, fmt.Errorf("list the runs of %s: %w", ref.WorkflowID(), err)
		}
		n += len(out.Executions)
		if token = out.NextPageToken; len(token) == 0 {
			return n, nil
		}
	}
}

func (e *env) procEnv() []string {
	return append(append(os.Environ(), e.stack.Env()...), "FEEDPIPE_CONFIG="+e.cfgPath)
}

// startWorker starts one more cmd/worker with the shipped config.
func (e *env) startWorker() (*devstack.Process, error) {
	e.mu.Lock()
	e.started++
	n := e.started
	e.mu.Unlock()
	env := e.procEnv()
	if e.proxyURL != "" {
		env = append(env, "AWS_ENDPOINT_URL="+e.proxyURL) // the last value of a variable wins
	}
	w, err := devstack.StartProcess("worker", filepath.Join(e.dir, fmt.Sprintf("worker-%d.log", n)), env, e.bins.Worker,
		"-config", e.cfgPath, "-temp-dir", e.scratchParent())
	if err != nil {
		return nil, err
	}
	// A worker refuses to start when what its pipelines call does not
	// answer within its -preflight-wait: that is a finding, not a quiet
	// worker short.
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(w.Tail(1<<16), "worker starting"); {
		if exited, werr := w.Exited(); exited {
			return nil, fmt.Errorf("worker %d exited as it started (%v):\n%s", n, werr, w.Tail(4000))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("worker %d did not start within 3 minutes:\n%s", n, w.Tail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.mu.Lock()
	e.workers = append(e.workers, w)
	e.mu.Unlock()
	return w, nil
}

func (e *env) startStarter() error {
	st, err := devstack.StartProcess("starter", filepath.Join(e.dir, "starter.log"), e.procEnv(), e.bins.Starter,
		"listen", "-config", e.cfgPath, "-queue", e.stack.AWS.FeedQueueURL)
	e.starter = st
	return err
}

// killWorker SIGKILLs the oldest live worker and returns the stages the
// open runs are in.
func (e *env) killWorker(ctx context.Context) string {
	e.mu.Lock()
	if len(e.workers) == 0 {
		e.mu.Unlock()
		return ""
	}
	w := e.workers[0]
	e.workers = e.workers[1:]
	e.mu.Unlock()
	w.Kill() // first: a held write must not finish while the stages are read
	e.mu.Lock()
	e.killed++
	e.mu.Unlock()
	return e.stages(ctx)
}

func (e *env) stopAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.workers {
		w.Stop(5 * time.Second)
	}
	e.workers = nil
	if e.starter != nil {
		e.starter.Stop(5 * time.Second)
	}
}

// scratchParent is where the fault's workers keep their scratch directories
// (their -temp-dir).
func (e *env) scratchParent() string { return filepath.Join(e.dir, "worker-tmp") }

// checkScratch holds the workers to their promise about local files: once
// every worker has stopped, the directories of the killed ones are removed by
// the next worker started on the machine, and a worker that stops cleanly
// leaves nothing. It says how much the killed workers had left.
func (e *env) checkScratch() (string, error) {
	e.stopAll()
	left := func() []string {
		entries, _ := os.ReadDir(e.scratchParent())
		var names []string
		for _, d := range entries {
			names = append(names, d.Name())
		}
		return names
	}
	dead := left()
	if len(dead) == 0 {
		return "", nil
	}
	if len(dead) > e.killed {
		return "", fmt.Errorf("%d scratch directories are left in %s after %d workers were killed: a worker stopped with SIGTERM left its own", len(dead), e.scratchParent(), e.killed)
	}
	var files int
	for _, d := range dead {
		entries, _ := os.ReadDir(filepath.Join(e.scratchParent(), d))
		files += len(entries)
	}
	w, err := e.startWorker()
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(time.Minute)
	for names := left(); len(names) != 1 || slices.Contains(dead, names[0]); names = left() {
		if time.Now().After(deadline) {
			w.Stop(5 * time.Second)
			return "", fmt.Errorf("a new worker did not remove the scratch directories of the killed ones: %s hold %v", e.scratchParent(), names)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.stopAll()
	if names := left(); len(names) > 0 {
		return "", fmt.Errorf("a worker stopped with SIGTERM left its scratch directory: %v", names)
	}
	return fmt.Sprintf("killed workers left %d scratch director%s (%d part files); the next worker removed them", len(dead), map[bool]string{true: "y", false: "ies"}[len(dead) == 1], files), nil
}

// stages says which stages the open runs are in, e.g. "PutToKinesis×3 AwaitDelivery×1".
func (e *env) stages(ctx context.Context) string {
	// From the FeedStage search attribute, which Describe returns without a
	// worker (a progress query needs one, and the faults kill workers).
	count := map[string]int{}
	dc := converter.GetDefaultDataConverter()
	for _, f := range e.feedList() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		desc, err := e.tc.DescribeWorkflowExecution(ctx, f.Ref.WorkflowID(), "")
		cancel()
		if err != nil || desc.GetWorkflowExecutionInfo().GetCloseTime() != nil {
			continue
		}
		var stage string
		if p := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[searchattr.FeedStage.GetName()]; p != nil && dc.FromPayload(p, &stage) == nil {
			count[stage]++
		}
	}
	var parts []string
	for _, st := range []string{workflows.StagePut, workflows.StageDelivery, workflows.StageConvert, workflows.StageConfirm} {
		if count[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d", st, count[st]))
		}
	}
	return strings.Join(parts, " ")
}

// waitStage waits until at least one run is in one of stages.
func (e *env) waitStage(ctx context.Context, stages ...string) error {
	for {
		at := e.stages(ctx)
		for _, st := range stages {
			if strings.Contains(at, st+"×") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no run reached %s: %w", strings.Join(stages, " or "), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
