package workflows

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/metrics"
)

// The run's numbers go to the worker's metrics handler as each stage ends.
// workflow.GetMetricsHandler records nothing while a history is replayed, so
// a run counts once however often its history is replayed; a workflow task
// that fails after recording and is run again counts twice (rare; the
// run's result stays the exact account).

func (w *feedWorkflow) metrics(ctx workflow.Context) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"pipeline": w.in.Pipeline.Name})
}

// count adds n to a counter of the run's pipeline.
func (w *feedWorkflow) count(ctx workflow.Context, name string, n int64) {
	if n > 0 {
		w.metrics(ctx).Counter(name).Inc(n)
	}
}

// countPut records what PutToKinesis did, also when it failed part way.
func (w *feedWorkflow) countPut(ctx workflow.Context, put activities.PutResult) {
	w.count(ctx, metrics.RecordsRead, put.Read)
	w.count(ctx, metrics.RecordsRejected, put.Rejected)
	w.count(ctx, metrics.RecordsPut, put.Put)
	w.count(ctx, metrics.Resends, put.Resends)
}

// observeStage records a stage's duration by outcome.
func (w *feedWorkflow) observeStage(ctx workflow.Context, stage string, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case temporal.IsCanceledError(err):
		outcome = "canceled"
	case err != nil:
		outcome = "failed"
	}
	w.metrics(ctx).WithTags(map[string]string{"stage": stage, "outcome": outcome}).Timer(metrics.StageDuration).Record(d)
}

// observeEnd records how the run ended, and its duplicates (known only once
// Convert has counted what it read).
func (w *feedWorkflow) observeEnd(ctx workflow.Context, err error) {
	w.count(ctx, metrics.Duplicates, w.result.Duplicates)
	outcome, typ := "done", ""
	switch {
	case temporal.IsCanceledError(err):
		outcome = "canceled"
	case err != nil:
		outcome, typ = "failed", ErrorType(err)
	}
	w.metrics(ctx).WithTags(map[string]string{"outcome": outcome, "error_type": typ}).Counter(metrics.FeedsFinished).Inc(1)
}
