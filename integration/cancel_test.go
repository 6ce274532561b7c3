package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/workflows"
)

// A run cancelled (with feedpipe cancel) while PutToKinesis is writing waits until the activity has
// stopped, then removes what the run made (quarantine parts, checkpoints),
// and closes as Canceled with its stage Canceled.
func TestCancelledRunCleansUp(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	cli := buildCmd(t, ctx, "feedpipe")
	body, _ := generate(t, feedgen.Options{Records: 60000, BadEvery: 40, Seed: 11})
	ref := upload(t, ctx, fmt.Sprintf("customers/cancel-%d.ndjson", time.Now().UnixNano()), body)
	id := ref.WorkflowID()
	// Cancel once the put has recorded a checkpoint.
	for {
		desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err == nil && desc.WorkflowExecutionInfo.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("the run ended (%s) before it could be cancelled: make the feed larger", desc.WorkflowExecutionInfo.GetStatus())
		}
		started := false
		for _, pa := range desc.GetPendingActivities() {
			started = started || (pa.ActivityType.GetName() == "PutToKinesis" && pa.HeartbeatDetails != nil)
		}
		if started {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("PutToKinesis never heartbeated")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancelCmd := exec.CommandContext(ctx, cli, "cancel", "-workflow-id", id, "-reason", "operator test")
	cancelCmd.Env = append(os.Environ(), stack.Env()...)
	if out, err := cancelCmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "cancel requested") || !strings.Contains(string(out), "canceled: removed ") {
		t.Fatalf("feedpipe cancel: %v\n%s", err, out)
	}
	err := tc.GetWorkflow(ctx, id, "").Get(ctx, nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("run ended with %v, want Canceled", err)
	}
	desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.WorkflowExecutionInfo.GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Errorf("status %s, want Canceled", st)
	}

	// The history: the put's cancel was acknowledged before the cleanup was
	// scheduled, and the cleanup completed.
	var putCanceledAt, cleanupAt, cleanupDone int64
	scheduled := map[int64]string{}
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.EventId] = a.ActivityType.GetName()
			if a.ActivityType.GetName() == "CleanUpCanceled" {
				cleanupAt = ev.EventId
			}
		}
		if a := ev.GetWorkflowExecutionCancelRequestedEventAttributes(); a != nil && a.Cause != "operator test" {
			t.Errorf("cancel requested with reason %q, want the one given to feedpipe cancel", a.Cause)
		}
		if a := ev.GetActivityTaskCanceledEventAttributes(); a != nil && scheduled[a.ScheduledEventId] == "PutToKinesis" {
			putCanceledAt = ev.EventId
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.ScheduledEventId] == "CleanUpCanceled" {
			cleanupDone = ev.EventId
		}
	}
	if putCanceledAt == 0 || cleanupAt == 0 || putCanceledAt > cleanupAt || cleanupDone == 0 {
		t.Errorf("history: PutToKinesis canceled at event %d, CleanUpCanceled scheduled at %d and completed at %d; want the put's cancel acknowledged before the cleanup, and the cleanup done", putCanceledAt, cleanupAt, cleanupDone)
	}

	// Nothing the run made is left but what finished stages published.
	p, err := config.Get("customers")
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range []struct{ bucket, prefix string }{
		{p.QuarantineBucket, "quarantine/" + p.Name + "/" + ref.ID() + ".parts/"}, // the put's quarantine parts
		{p.StagingBucket, activities.DeliveryCheckpointPrefix(*p, ref.ID())},
		{p.StagingBucket, activities.ConvertCheckpointPrefix(*p, ref.ID())},
	} {
		out, err := clients().S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &where.bucket, Prefix: &where.prefix})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) > 0 {
			t.Errorf("s3://%s/%s holds %d objects after the cancel, want none", where.bucket, where.prefix, len(out.Contents))
		}
	}
	var prog workflows.Progress
	if v, err := tc.QueryWorkflow(ctx, id, "", workflows.ProgressQuery); err != nil {
		t.Errorf("progress query of the cancelled run: %v", err)
	} else if err := v.Get(&prog); err != nil || prog.Stage != workflows.StageCanceled {
		t.Errorf("progress stage %q (%v), want %s", prog.Stage, err, workflows.StageCanceled)
	}
	recordHistory(t, id, "canceled")
	// The put had checkpointed, with rejects: there was something to remove.
	var removed activities.CleanupResult
	if rs := activityResults(t, ctx, id, "CleanUpCanceled"); len(rs) != 1 || json.Unmarshal(rs[0], &removed) != nil || removed.QuarantineParts+removed.Checkpoints == 0 {
		t.Errorf("CleanUpCanceled results %q: want one that removed something", rs)
	}
}
