package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// A run cancelled while PutToKinesis runs cleans up on a disconnected
// context and ends Canceled (not Failed), its stage Canceled. (That it waits
// for the activity to stop first is the real server's part: the test
// environment does not wait; TestCancelledRunCleansUp checks it.)
func TestFeedWorkflowCancelledCleansUpAndEndsCanceled(t *testing.T) {
	env := newEnv(t)
	in := testInput(pipeline.ConvertLocal)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ activities.PutInput) (activities.PutResult, error) {
		env.CancelWorkflow() // while the put runs
		for ctx.Err() == nil {
			activity.RecordHeartbeat(ctx)
			time.Sleep(10 * time.Millisecond)
		}
		return activities.PutResult{}, ctx.Err()
	}).Once()
	var cleaned activities.CleanupInput
	env.OnActivity(acts.CleanUpCanceled, mock.Anything, mock.Anything).Return(func(_ context.Context, c activities.CleanupInput) (activities.CleanupResult, error) {
		cleaned = c
		return activities.CleanupResult{QuarantineParts: 1}, nil
	}).Once()
	env.ExecuteWorkflow(FeedWorkflowName, in)

	err := env.GetWorkflowError()
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("run ended with %v, want a cancel", err)
	}
	if cleaned.FeedID != in.Ref.ID() || cleaned.Pipeline.Name != "customers" {
		t.Errorf("cleanup input %+v, want the run's feed and pipeline", cleaned)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var prog Progress
	if err := v.Get(&prog); err != nil {
		t.Fatal(err)
	}
	if prog.Stage != StageCanceled {
		t.Errorf("stage after cancel = %s, want %s", prog.Stage, StageCanceled)
	}
}

// A run cancelled between looks (waiting on a timer in AwaitDelivery) is
// cleaned up too; the cleanup failing does not turn the cancel into a failure.
func TestFeedWorkflowCancelledWhileWaitingEndsCanceledEvenIfCleanupFails(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 10, Put: 10}, nil).Once()
	env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryState{Delivered: 3}, nil)
	env.OnActivity(acts.CleanUpCanceled, mock.Anything, mock.Anything).Return(activities.CleanupResult{}, temporal.NewNonRetryableApplicationError("denied", activities.ErrAccessDenied, nil)).Once()
	env.RegisterDelayedCallback(env.CancelWorkflow, 30*time.Second)
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	var canceled *temporal.CanceledError
	if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("run ended with %v, want a cancel", err)
	}
}
