package integration

import (
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

// Snowflake down past the ingestion deadline fails the run in
// ConfirmIngestion, and its failure names the command that runs it again.
// Once Snowflake is back, exactly that command (the README's) resets the run
// to ConfirmIngestion: it completes with every row once, and nothing before
// the stage (the put, delivery, conversion) runs again.
func TestFailedRunResetToItsFailedStageLandsOnce(t *testing.T) {
	ctx := testCtx(t, 6*time.Minute)
	bin := buildCmd(t, ctx, "feedpipe")

	// The shipped pipeline with a 20 s ingestion deadline (shipped: 10 min),
	// so that the outage outlasts it; its feeds come from a prefix of the
	// quarantine bucket, which sends no events to the shared listener.
	p, err := config.Get("customers")
	if err != nil {
		t.Fatal(err)
	}
	rp := *p
	rp.SourceBucket, rp.SourcePrefix = stack.Names.QuarantineBucket, "customers-reset/"
	rp.Deadlines.Ingest = pipeline.Duration(20 * time.Second)
	cfg := *config
	cfg.Pipelines = []pipeline.Pipeline{rp}
	s := &starter.Starter{Temporal: tc, S3: clients().S3, Config: &cfg, Logger: starts.Logger}

	body, st := generate(t, feedgen.Options{Records: 300, BadEvery: 100, Seed: 31})
	key := fmt.Sprintf("customers-reset/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)
	if err := stack.Freeze(devstack.PartFakesnow); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := stack.Thaw(devstack.PartFakesnow); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer thaw()
	started, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.FeedResult
	err = tc.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, &res)
	if err == nil {
		t.Fatal("the run completed with Snowflake frozen")
	}
	command := "feedpipe reset -workflow-id '" + started.WorkflowID + "'"
	if d, _ := workflows.Details(err); d.FailedStage != workflows.StageConfirm || !strings.Contains(err.Error(), command) {
		t.Fatalf("run failed in %q with %v; want ConfirmIngestion, naming %q", d.FailedStage, err, command)
	}
	thaw()

	cmd := exec.CommandContext(ctx, bin, "reset", "-workflow-id", started.WorkflowID)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+stack.TemporalAddress, "TEMPORAL_NAMESPACE="+stack.TemporalNamespace)
	out, err := cmd.CombinedOutput()
	if err != nil {
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
	// only ConfirmIngestion's activities (its looks, and the replacement of
	// the key's earlier uploads), none of an earlier stage.
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
	earlier := again["PutToKinesis"] + again["CheckDelivery"] + again["ConvertLocal"]
	if !afterReset || again["CheckIngestion"] == 0 || earlier != 0 {
		t.Errorf("after the reset the run scheduled %v (reset found: %v); want CheckIngestion and no activity of an earlier stage", again, afterReset)
	}
}
