package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// processWorker is cmd/worker run as a local process.
type processWorker struct {
	cmd     *exec.Cmd
	logPath string
}

// Kill sends SIGKILL and waits for the process to exit.
func (w *processWorker) Kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait()
}

// Log is what the worker wrote to its log file.
func (w *processWorker) Log() []byte {
	b, _ := os.ReadFile(w.logPath)
	return b
}

// startWorkerProcess runs the cmd/worker binary bin against the stack with
// the given config, logging to logPath.
func startWorkerProcess(t *testing.T, bin, cfgPath, logPath string) *processWorker {
	t.Helper()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd := exec.Command(bin, "-config", cfgPath, "-stop-timeout", "1s")
	cmd.Env = append(os.Environ(), stack.Env()...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &processWorker{cmd: cmd, logPath: logPath}
}

// The worker is killed (SIGKILL) in the middle of PutToKinesis and started
// again: the put resumes from its last checkpoint, records sent twice are
// counted as re-sent and dropped before Parquet, and the feed lands with no
// row lost or doubled.
func TestFeedWorkerKilledMidPutLosesAndDoublesNothing(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	k := newKillSetup(t, ctx)
	id, st, w := k.start(t, ctx, feedgen.Options{Records: 20000, BadEvery: 5000, Seed: 9})
	var at activities.PutProgress
	// Let it run past the recorded checkpoint, so that the retry re-sends
	// records Kinesis already has.
	k.killAt(t, ctx, id, w, "PutToKinesis", &at, func() bool { return at.Line > 0 }, 300*time.Millisecond)
	t.Logf("killed the worker after the checkpoint at line %d of %d", at.Line, st.Lines)

	res := k.wait(t, ctx, id)
	want := workflows.Counts{Read: int64(st.Lines), Rejected: int64(st.Bad), Put: int64(st.Good), Delivered: int64(st.Good), Converted: int64(st.Good), Loaded: int64(st.Good)}
	if res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	if got := loadedRows(t, ctx, res.FeedID); len(got) != st.Good {
		t.Errorf("%d distinct lines loaded, want %d", len(got), st.Good)
	}
	if res.Resends == 0 || res.Duplicates == 0 {
		t.Errorf("resends %d, duplicates %d: the records put again after the kill must be counted as re-sent and dropped as duplicates", res.Resends, res.Duplicates)
	}
	t.Logf("put resent %d records after the kill; %d duplicates delivered and dropped", res.Resends, res.Duplicates)
	recordHistory(t, id, "retried-after-worker-kill")
}

// The worker is killed while AwaitDelivery reads the staging objects, after
// a checkpoint: the retried pass resumes from that checkpoint (it says so,
// its count goes on from there, and nothing is counted twice), and the feed lands.
func TestFeedWorkerKilledInDeliveryResumesFromCheckpoint(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	k := newKillSetup(t, ctx)
	id, st, w := k.start(t, ctx, feedgen.Options{Records: 20000, Seed: 11})
	var at activities.DeliveryState
	k.killAt(t, ctx, id, w, "CheckDelivery", &at, func() bool {
		return at.Checkpoint != "" && at.Reads >= 2000 && !at.Done(int64(st.Good))
	}, 0)
	t.Logf("killed the worker in AwaitDelivery at its checkpoint: %d of %d delivered, %d staging objects read", at.Delivered, st.Good, at.Reads)
	res := k.wait(t, ctx, id)
	if res.Counts.Loaded != int64(st.Good) || len(loadedRows(t, ctx, res.FeedID)) != st.Good {
		t.Errorf("counts %+v, want %d loaded", res.Counts, st.Good)
	}
	var resumed []activities.DeliveryState
	for _, r := range activityResults(t, ctx, id, "CheckDelivery") {
		var d activities.DeliveryState
		if err := decodeHeartbeat(r, &d); err != nil {
			t.Fatal(err)
		}
		if d.Resumed {
			resumed = append(resumed, d)
		}
	}
	if len(resumed) != 1 {
		t.Fatalf("%d delivery passes resumed from a checkpoint, want 1", len(resumed))
	}
	// Every record was put once, so a line seen twice could only be one
	// counted before the kill and again after: the resumed pass must have
	// taken the checkpoint's set of objects read and lines seen.
	if r := resumed[0]; r.Reads < at.Reads || r.Duplicates != 0 || r.Delivered != int64(st.Good) {
		t.Errorf("resumed pass ended at %+v; want it to go on from %d objects read, with no line counted twice", r, at.Reads)
	}
}

// The worker is killed while Convert writes its parts, after at least one
// part was checkpointed: the retry goes on after the parts it has (it says
// where it resumed), keeps them, and the feed lands with every line once.
//
// Convert reads the bundles AwaitDelivery left, which on the local stack
// takes well under one part's worth of work (partEvery). So that it writes
// several parts with the shipped part size, the test removes the bundles as
// they are written (as an operator or a lifecycle rule could): Convert then
// reads the 30,000 staging objects they name, the slow path.
func TestFeedWorkerKilledInConvertResumesAfterItsParts(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	k := newKillSetup(t, ctx)
	id, st, w := k.start(t, ctx, feedgen.Options{Records: 30000, Seed: 12})
	removed := removeBundles(t, ctx, id)
	var at activities.ConvertProgress
	k.killAt(t, ctx, id, w, "ConvertLocal", &at, func() bool { return len(at.Parts) > 0 && at.Published == 0 }, 0)
	done := int64(0)
	for _, p := range at.Parts {
		done += p.Rows
	}
	t.Logf("killed the worker in Convert after %d parts (%d of %d rows, %d staging objects read)", len(at.Parts), done, st.Good, at.Reads)
	res := k.wait(t, ctx, id)
	if res.Counts.Loaded != int64(st.Good) || len(loadedRows(t, ctx, res.FeedID)) != st.Good {
		t.Errorf("counts %+v, want %d loaded once each", res.Counts, st.Good)
	}
	results := activityResults(t, ctx, id, "ConvertLocal")
	if len(results) != 1 {
		t.Fatalf("%d ConvertLocal results, want 1", len(results))
	}
	var conv activities.ConvertResult
	if err := decodeHeartbeat(results[0], &conv); err != nil {
		t.Fatal(err)
	}
	// The retry started right after the parts of the checkpoint the server
	// held when the worker died.
	if conv.ResumedAtPart != len(at.Parts)+1 {
		t.Errorf("Convert resumed at part %d, want %d (the checkpoint had %d parts)", conv.ResumedAtPart, len(at.Parts)+1, len(at.Parts))
	}
	for i, p := range at.Parts {
		if conv.Files[i].Rows != p.Rows {
			t.Errorf("part %d holds %d rows after the retry, %d before: a finished part was converted again", i+1, conv.Files[i].Rows, p.Rows)
		}
	}
	t.Logf("resumed at part %d; %d files; %d staging objects read in all; %d bundles removed", conv.ResumedAtPart, len(conv.Files), conv.Reads, removed())
}

// removeBundles deletes the delivery bundles of the run's feed as they are
// written, until the test ends; the count says how many it removed.
func removeBundles(t *testing.T, ctx context.Context, workflowID string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var n atomic.Int64
	go func() {
		defer close(done)
		s3c := clients().S3
		prefix := ""
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			if prefix == "" {
				v, err := tc.QueryWorkflow(ctx, workflowID, "", workflows.ProgressQuery)
				var pr workflows.Progress
				if err != nil || v.Get(&pr) != nil || pr.FeedID == "" {
					continue
				}
				prefix = "checkpoints/customers/" + pr.FeedID + "/delivery/bundle-"
			}
			out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &stack.Names.StagingBucket, Prefix: &prefix})
			if err != nil {
				continue
			}
			for _, o := range out.Contents {
				if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &stack.Names.StagingBucket, Key: o.Key}); err == nil {
					n.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() int { return int(n.Load()) }
}

// start uploads a generated feed to the kill pipeline's source and starts its
// run on a new worker (a process or a container); it returns the run's workflow id, the feed's
// stats and the worker.
func (k *killSetup) start(t *testing.T, ctx context.Context, o feedgen.Options) (string, feedgen.Stats, runningWorker) {
	t.Helper()
	body, st := generate(t, o)
	key := fmt.Sprintf("customers-kill/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)
	w := k.startWorker(t)
	s := &starter.Starter{Temporal: tc, S3: clients().S3, Config: k.cfg, Logger: starts.Logger}
	started, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return started.WorkflowID, st, w
}

// killAt waits until the run's pending activity is activityType with
// heartbeat details (decoded into details) that ready accepts, waits linger,
// SIGKILLs the worker, decodes into details the heartbeat the server holds
// once the worker is dead (the checkpoint the retry resumes from), and
// starts another worker. The test fails if the run gets past
// that activity first: then the feed was too small to catch it.
func (k *killSetup) killAt(t *testing.T, ctx context.Context, workflowID string, w runningWorker, activityType string, details any, ready func() bool, linger time.Duration) {
	t.Helper()
	seen := false
	for {
		desc, err := tc.DescribeWorkflowExecution(ctx, workflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		pa := desc.PendingActivities
		if len(pa) == 1 && pa[0].ActivityType.GetName() == activityType {
			seen = true
			if pa[0].HeartbeatDetails != nil && decodeHeartbeat(pa[0].HeartbeatDetails.Payloads[0].Data, details) == nil && ready() {
				break
			}
		}
		if desc.WorkflowExecutionInfo.CloseTime != nil || (seen && len(pa) == 1 && pa[0].ActivityType.GetName() != activityType) {
			t.Fatalf("the run got past %s before the worker could be killed in it; make the feed larger", activityType)
		}
		if ctx.Err() != nil {
			t.Fatalf("no checkpoint of %s seen", activityType)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(linger)
	w.Kill(t)
	// The retry resumes from the last heartbeat the server recorded before
	// the worker died, which may be later than the one seen above (a
	// heartbeat can land between that look and the kill, or leave the dead
	// worker's socket just after it). Read it again, once the dead worker's
	// last bytes have arrived and before a new worker can start the retry.
	time.Sleep(time.Second)
	desc, err := tc.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if pa := desc.PendingActivities; len(pa) == 1 && pa[0].ActivityType.GetName() == activityType && pa[0].HeartbeatDetails != nil {
		if err := decodeHeartbeat(pa[0].HeartbeatDetails.Payloads[0].Data, details); err != nil {
			t.Fatal(err)
		}
	}
	k.startWorker(t)
}

// startWorker starts a worker on the kill pipeline's task queue, a process
// or a container as the stack is.
func (k *killSetup) startWorker(t *testing.T) runningWorker {
	t.Helper()
	w := parts.StartWorker(t, k.cfgPath, k.logPath)
	k.workers = append(k.workers, w)
	return w
}

// killSetup runs cmd/worker (a process or a container) on a task queue of
// its own, for feeds in the quarantine bucket (which sends no events): only
// that worker runs them, so killing it stops their work.
type killSetup struct {
	cfgPath, logPath string
	cfg              *pipeline.Config
	workers          []runningWorker // started, in order
}

func newKillSetup(t *testing.T, ctx context.Context) *killSetup {
	t.Helper()
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Its own task queue, so that only the test's worker runs this feed; its
	// feeds come from the quarantine bucket, which sends no events.
	src, err := os.ReadFile(filepath.Join(root, "pipelines.local.toml"))
	if err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("feedpipe-kill-%d", time.Now().UnixNano())
	cfgText := strings.Replace(string(src), `task_queue = "feedpipe"`, `task_queue = "`+queue+`"`, 1)
	cfgText = strings.Replace(cfgText, `source_bucket      = "feedpipe-source"
source_prefix      = "customers/"`, `source_bucket      = "feedpipe-quarantine"
source_prefix      = "customers-kill/"`, 1)
	cfgPath := filepath.Join(dir, "pipelines.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := *config
	cfg.TaskQueue = queue
	p, _ := cfg.Get("customers")
	killCfg := *p
	killCfg.SourceBucket, killCfg.SourcePrefix = stack.Names.QuarantineBucket, "customers-kill/"
	cfg.Pipelines = append([]pipeline.Pipeline{killCfg}, cfg.Pipelines[1:]...)
	return &killSetup{cfgPath: cfgPath, logPath: filepath.Join(dir, "worker.log"), cfg: &cfg}
}

// wait returns the run's result, or fails the test with the pending
// activities and the worker's log.
func (k *killSetup) wait(t *testing.T, ctx context.Context, workflowID string) workflows.FeedResult {
	t.Helper()
	var res workflows.FeedResult
	if err := tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &res); err != nil {
		var logs []byte
		for _, w := range k.workers {
			logs = append(logs, w.Log()...)
		}
		pending := ""
		if desc, derr := tc.DescribeWorkflowExecution(context.Background(), workflowID, ""); derr == nil {
			for _, pa := range desc.PendingActivities {
				pending += fmt.Sprintf("%s attempt %d state %s last failure %v; ", pa.ActivityType.GetName(), pa.Attempt, pa.State, pa.LastFailure)
			}
		}
		t.Fatalf("run failed after the restart: %v\npending: %s\nworker log:\n%s", err, pending, tail(logs, 3000))
	}
	return res
}

// activityResults returns the JSON results of the completed activities of
// the given type in the run's history, in order.
func activityResults(t *testing.T, ctx context.Context, workflowID, activityType string) [][]byte {
	t.Helper()
	scheduled := map[int64]string{}
	var out [][]byte
	it := tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.EventId] = a.ActivityType.GetName()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.ScheduledEventId] == activityType {
			out = append(out, a.Result.Payloads[0].Data)
		}
	}
	return out
}

func decodeHeartbeat(data []byte, v any) error {
	return json.NewDecoder(bytes.NewReader(data)).Decode(v)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
