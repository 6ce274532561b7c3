package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// A part down past a stage's deadline fails the run in that stage, and its
// failure names the command that runs it again. Once the part is back,
// exactly that command (the README's) resets the run to the stage: it
// completes with every row once, and no activity of an earlier stage runs
// again. Snowflake (fakesnow) frozen through ConfirmIngestion; AWS
// (MiniStack, Firehose with it) frozen through AwaitDelivery.
func TestFailedRunResetToItsFailedStageLandsOnce(t *testing.T) {
	bin := buildCmd(t, testCtx(t, time.Minute), "feedpipe")
	for _, tc := range []struct {
		stage, part string
		earlier     []string // activities of the stages before
		shorten     func(*pipeline.Deadlines)
	}{
		{workflows.StageConfirm, devstack.PartFakesnow, []string{"PutToKinesis", "CheckDelivery", "ConvertLocal"},
			func(d *pipeline.Deadlines) { d.Ingest = pipeline.Duration(20 * time.Second) }},
		{workflows.StageDelivery, devstack.PartMiniStack, []string{"PutToKinesis"},
			func(d *pipeline.Deadlines) { d.Delivery = pipeline.Duration(20 * time.Second) }},
	} {
		t.Run(tc.stage, func(t *testing.T) { resetAfterOutage(t, bin, tc.stage, tc.part, tc.earlier, tc.shorten) })
	}
}

func resetAfterOutage(t *testing.T, bin, stage, part string, earlier []string, shorten func(*pipeline.Deadlines)) {
	ctx := testCtx(t, 6*time.Minute)
	// The shipped pipeline with a 20 s deadline for the stage (shipped:
	// 10 or 20 min), so that the outage outlasts it; its feeds come from a
	// prefix of the quarantine bucket, which sends no events to the shared
	// listener.
	p, err := config.Get("customers")
	if err != nil {
		t.Fatal(err)
	}
	rp := *p
	rp.SourceBucket, rp.SourcePrefix = stack.Names.QuarantineBucket, "customers-reset/"
	shorten(&rp.Deadlines)
	cfg := *config
	cfg.Pipelines = []pipeline.Pipeline{rp}
	s := &starter.Starter{Temporal: tc, S3: clients().S3, Config: &cfg, Logger: starts.Logger}

	body, st := generate(t, feedgen.Options{Records: 300, BadEvery: 100, Seed: uint64(time.Now().UnixNano())})
	key := fmt.Sprintf("customers-reset/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)
	started, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	// Down from the moment the run enters the stage (ConfirmIngestion's part
	// is down from the start: nothing before it needs Snowflake).
	if stage == workflows.StageDelivery {
		waitForStage(t, ctx, started.WorkflowID, stage)
	}
	if err := stack.Freeze(part); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := stack.Thaw(part); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer thaw()
	var res workflows.FeedResult
	err = tc.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, &res)
	if err == nil {
		t.Fatalf("the run completed with %s frozen", part)
	}
	command := "feedpipe reset -workflow-id '" + started.WorkflowID + "'"
	if d, _ := workflows.Details(err); d.FailedStage != stage || !strings.Contains(err.Error(), command) {
		t.Fatalf("run failed in %q with %v; want %s, naming %q", d.FailedStage, err, stage, command)
	}
	thaw()

	cmd := exec.CommandContext(ctx, bin, "reset", "-workflow-id", started.WorkflowID)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+stack.TemporalAddress, "TEMPORAL_NAMESPACE="+stack.TemporalNamespace)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "to "+stage) {
		t.Fatalf("feedpipe reset: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if err := tc.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, &res); err != nil {
		t.Fatalf("the reset run failed: %v", err)
	}
	if res.Counts.Read != int64(st.Lines) || res.Counts.Loaded != int64(st.Good) || res.Counts.Rejected != int64(st.Bad) {
		t.Errorf("counts %+v, want read %d = loaded %d + rejected %d", res.Counts, st.Lines, st.Good, st.Bad)
	}
	if rows := loadedRows(t, ctx, res.FeedID); len(rows) != st.Good {
		t.Errorf("%d distinct lines in Snowflake, want %d", len(rows), st.Good)
	}
	var n int64
	if err := openSnowflake(t).QueryRowContext(ctx, "SELECT COUNT(*) FROM "+rp.Snowflake.Table+" WHERE _FEED_ID = ?", res.FeedID).Scan(&n); err != nil || n != int64(st.Good) {
		t.Errorf("%d rows in Snowflake (%v), want %d: none doubled", n, err, st.Good)
	}

	// The new run's own events, after the point it was reset to, schedule
	// no activity of an earlier stage.
	it := tc.GetWorkflowHistory(ctx, started.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	afterReset, again := false, map[string]int{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetWorkflowTaskFailedEventAttributes().GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW {
			afterReset = true
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); afterReset && a != nil {
			again[a.GetActivityType().GetName()]++
		}
	}
	redone := 0
	for _, a := range earlier {
		redone += again[a]
	}
	if !afterReset || len(again) == 0 || redone != 0 {
		t.Errorf("after the reset the run scheduled %v (reset found: %v); want the stage's activities, none of %v", again, afterReset, earlier)
	}
}

// waitForStage waits until the run's progress query reports stage.
func waitForStage(t *testing.T, ctx context.Context, workflowID, stage string) {
	t.Helper()
	for {
		v, err := tc.QueryWorkflow(ctx, workflowID, "", workflows.ProgressQuery)
		var prog workflows.Progress
		if err == nil && v.Get(&prog) == nil && prog.Stage == stage {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run %s never reached %s (last: %+v, %v)", workflowID, stage, prog, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A replace pipeline whose versions table is missing fails its run at once,
// not after ten minutes of retries, saying which table to create and the
// command that runs the stage again once it exists.
func TestReplaceWithoutVersionsTableSaysWhatToCreate(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	p, err := config.Get("customers")
	if err != nil {
		t.Fatal(err)
	}
	vp := *p
	vp.SourceBucket, vp.SourcePrefix, vp.VersionsTable = stack.Names.QuarantineBucket, "customers-noversions/", "NO_SUCH_VERSIONS"
	cfg := *config
	cfg.Pipelines = []pipeline.Pipeline{vp}
	s := &starter.Starter{Temporal: tc, S3: clients().S3, Config: &cfg, Logger: starts.Logger}
	body, _ := generate(t, feedgen.Options{Records: 20, Seed: uint64(time.Now().UnixNano())})
	key := fmt.Sprintf("customers-noversions/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)
	started, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	err = tc.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, nil)
	for _, want := range []string{"VersionsTableUnusable", "CREATE TABLE IF NOT EXISTS FEEDPIPE.RAW.NO_SUCH_VERSIONS", "feedpipe reset -workflow-id '" + started.WorkflowID + "'"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run ended with %v, want it to say %q", err, want)
		}
	}
	if d := time.Since(begun); d > 2*time.Minute {
		t.Errorf("the run took %s to fail: it retried what no retry fixes", d)
	}
}
