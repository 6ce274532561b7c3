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
	"syscall"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// startWorkerProcess runs cmd/worker (built into dir) against the stack with
// the given config, logging to dir.
func startWorkerProcess(t *testing.T, bin, cfgPath, logPath string) *exec.Cmd {
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
	return cmd
}

// The worker is killed (SIGKILL) in the middle of PutToKinesis and started
// again: the put resumes from its last checkpoint, records sent twice are
// dropped before Parquet, and the feed lands with no row lost or doubled.
func TestFeedWorkerKilledMidPutLosesAndDoublesNothing(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/worker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/worker: %v\n%s", err, out)
	}
	// Its own task queue, so that only the worker process runs this feed; its
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

	body, st := generate(t, feedgen.Options{Records: 20000, BadEvery: 5000, Seed: 9})
	key := fmt.Sprintf("customers-kill/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)

	logPath := filepath.Join(dir, "worker.log")
	w1 := startWorkerProcess(t, bin, cfgPath, logPath)
	s := &starter.Starter{Temporal: tc, S3: clients().S3, Config: &cfg, Logger: starts.Logger}
	started, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}

	// Kill the worker once the put has checkpointed part of the feed.
	var at activities.PutProgress
	for {
		desc, err := tc.DescribeWorkflowExecution(ctx, started.WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		if pa := desc.PendingActivities; len(pa) == 1 && pa[0].ActivityType.GetName() == "PutToKinesis" && pa[0].HeartbeatDetails != nil {
			if err := decodeHeartbeat(pa[0].HeartbeatDetails.Payloads[0].Data, &at); err == nil && at.Line > 0 {
				break
			}
		}
		if len(desc.PendingActivities) == 1 && desc.PendingActivities[0].ActivityType.GetName() != "PutToKinesis" {
			t.Fatalf("the put finished before the worker could be killed; make the feed larger (%d lines)", st.Lines)
		}
		if ctx.Err() != nil {
			t.Fatal("no put checkpoint seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Let it run past the recorded checkpoint (the SDK throttles heartbeats),
	// so the retry re-sends records that Kinesis already has.
	time.Sleep(300 * time.Millisecond)
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w1.Wait()
	t.Logf("killed the worker after the checkpoint at line %d of %d", at.Line, st.Lines)
	startWorkerProcess(t, bin, cfgPath, logPath)

	var res workflows.FeedResult
	if err := tc.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, &res); err != nil {
		logs, _ := os.ReadFile(logPath)
		pending := ""
		if desc, derr := tc.DescribeWorkflowExecution(context.Background(), started.WorkflowID, ""); derr == nil {
			for _, pa := range desc.PendingActivities {
				pending += fmt.Sprintf("%s attempt %d state %s last failure %v; ", pa.ActivityType.GetName(), pa.Attempt, pa.State, pa.LastFailure)
			}
		}
		t.Fatalf("run failed after the restart: %v\npending: %s\nworker log:\n%s", err, pending, tail(logs, 3000))
	}
	want := workflows.Counts{Read: int64(st.Lines), Rejected: int64(st.Bad), Put: int64(st.Good), Delivered: int64(st.Good), Converted: int64(st.Good), Loaded: int64(st.Good)}
	if res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	got := loadedRows(t, ctx, res.FeedID)
	if len(got) != st.Good {
		t.Errorf("%d distinct lines loaded, want %d", len(got), st.Good)
	}
	t.Logf("put resent %d records after the kill; %d duplicates delivered and dropped", res.Resends, res.Duplicates)
	recordHistory(t, started.WorkflowID, "retried-after-worker-kill")
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
