// Package workflows holds FeedWorkflow: one durable run per uploaded feed
// version that drives it through Kinesis, Firehose, Parquet conversion and
// Snowflake, and proves every line arrived once or says why not.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/searchattr"
)

// FeedWorkflowName is the registered name of FeedWorkflow.
const FeedWorkflowName = "FeedWorkflow"

// ProgressQuery is the name of the query that returns a run's Progress.
const ProgressQuery = "progress"

// Stage names, as shown in the progress query and the FeedStage search attribute.
const (
	StagePut      = "PutToKinesis"
	StageDelivery = "AwaitDelivery"
	StageConvert  = "Convert"
	StageConfirm  = "ConfirmIngestion"
	StageDone     = "Done"
	StageFailed   = "Failed"
)

// FeedInput starts a run: the feed object and the pipeline it belongs to,
// as configured when the run started (later config changes do not affect it).
type FeedInput struct {
	Ref      feed.Ref          `json:"ref"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
}

// Counts are the records seen at each stage.
type Counts struct {
	Read      int64 `json:"read"`
	Rejected  int64 `json:"rejected"`
	Put       int64 `json:"put"`
	Delivered int64 `json:"delivered"`
	Converted int64 `json:"converted"`
	Loaded    int64 `json:"loaded"`
}

// Progress is what the progress query returns.
type Progress struct {
	FeedID    string                   `json:"feed_id"`
	Stage     string                   `json:"stage"`
	Counts    Counts                   `json:"counts"`
	GlueRunID string                   `json:"glue_run_id,omitempty"`
	LastError string                   `json:"last_error,omitempty"`
	FirstBad  []activities.BadLine     `json:"first_bad,omitempty"`
	Durations map[string]time.Duration `json:"durations,omitempty"`
}

// FeedResult is a finished run's account of the feed.
type FeedResult struct {
	FeedID        string                   `json:"feed_id"`
	Ref           feed.Ref                 `json:"ref"`
	Pipeline      string                   `json:"pipeline"`
	Counts        Counts                   `json:"counts"`
	Duplicates    int64                    `json:"duplicates"` // delivered more than once, dropped
	Resends       int64                    `json:"resends"`    // PutRecords entries sent again
	QuarantineKey string                   `json:"quarantine_key,omitempty"`
	ManifestKey   string                   `json:"manifest_key,omitempty"`
	ParquetKey    string                   `json:"parquet_key,omitempty"`
	GlueRunID     string                   `json:"glue_run_id,omitempty"`
	Durations     map[string]time.Duration `json:"durations"`
	Confirmation  string                   `json:"confirmation,omitempty"` // the ingestion check used
}

// feedWorkflow is one run's state.
type feedWorkflow struct {
	in       FeedInput
	progress Progress
	result   FeedResult
}

// FeedWorkflow moves one feed into Snowflake.
func FeedWorkflow(ctx workflow.Context, in FeedInput) (FeedResult, error) {
	w := &feedWorkflow{in: in}
	if err := w.setup(ctx); err != nil {
		return FeedResult{}, err
	}
	res, err := w.run(ctx)
	if err != nil {
		w.progress.Stage, w.progress.LastError = StageFailed, err.Error()
		_ = w.upsert(ctx)
		return res, err
	}
	return res, nil
}

func (w *feedWorkflow) setup(ctx workflow.Context) error {
	if err := w.in.Ref.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrBadInput, nil)
	}
	id := w.in.Ref.ID()
	w.progress = Progress{FeedID: id, Stage: StagePut, Durations: map[string]time.Duration{}}
	w.result = FeedResult{FeedID: id, Ref: w.in.Ref, Pipeline: w.in.Pipeline.Name, Durations: w.progress.Durations}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return w.progress, nil }); err != nil {
		return fmt.Errorf("register progress query: %w", err)
	}
	return w.upsert(ctx)
}

func (w *feedWorkflow) upsert(ctx workflow.Context) error {
	c := w.progress.Counts
	return workflow.UpsertTypedSearchAttributes(ctx,
		searchattr.FeedBucket.ValueSet(w.in.Ref.Bucket),
		searchattr.FeedKey.ValueSet(w.in.Ref.Key),
		searchattr.FeedPipeline.ValueSet(w.in.Pipeline.Name),
		searchattr.FeedStage.ValueSet(w.progress.Stage),
		searchattr.FeedRecordsRead.ValueSet(c.Read),
		searchattr.FeedRecordsBad.ValueSet(c.Rejected),
		searchattr.FeedRecordsLoad.ValueSet(c.Loaded),
	)
}

// stageOptions are the activity options of a stage: its deadline bounds the
// whole stage including retries; a heartbeat timeout notices a dead worker;
// errors retrying cannot fix are not retried.
func stageOptions(deadline pipeline.Duration, heartbeat time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    deadline.Std(),
		ScheduleToCloseTimeout: deadline.Std(),
		HeartbeatTimeout:       heartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
}

// heartbeatTimeout is how long a stage may go without a heartbeat before
// Temporal retries it on another worker.
func heartbeatTimeout(p pipeline.Pipeline) time.Duration {
	if p.HeartbeatTimeout > 0 {
		return p.HeartbeatTimeout.Std()
	}
	return 30 * time.Second
}

func (w *feedWorkflow) enter(ctx workflow.Context, stage string) time.Time {
	w.progress.Stage = stage
	_ = w.upsert(ctx)
	return workflow.Now(ctx)
}

func (w *feedWorkflow) leave(ctx workflow.Context, stage string, start time.Time) {
	w.progress.Durations[stage] = workflow.Now(ctx).Sub(start)
}

func (w *feedWorkflow) run(ctx workflow.Context) (FeedResult, error) {
	var a *activities.Activities
	p, id := w.in.Pipeline, w.progress.FeedID
	hb := heartbeatTimeout(p)
	c := &w.progress.Counts

	// 1. Stream the file into Kinesis.
	start := w.enter(ctx, StagePut)
	var put activities.PutResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, stageOptions(p.Deadlines.Put, hb)),
		a.PutToKinesis, activities.PutInput{FeedID: id, Ref: w.in.Ref, Pipeline: p}).Get(ctx, &put)
	w.leave(ctx, StagePut, start)
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.HasDetails() && app.Details(&put) == nil {
			c.Read, c.Rejected, c.Put = put.Read, put.Rejected, put.Put
			w.progress.FirstBad, w.result.QuarantineKey = put.FirstBad, put.QuarantineKey
			w.result.Counts = *c
		}
		return w.result, w.stageError(StagePut, err)
	}
	c.Read, c.Rejected, c.Put = put.Read, put.Rejected, put.Put
	w.progress.FirstBad = put.FirstBad
	w.result.QuarantineKey, w.result.Resends = put.QuarantineKey, put.Resends

	if put.Put > 0 {
		// 2. Wait until Firehose has staged every record.
		start = w.enter(ctx, StageDelivery)
		var del activities.DeliveryResult
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, stageOptions(p.Deadlines.Delivery, hb)),
			a.AwaitDelivery, activities.DeliveryInput{FeedID: id, Pipeline: p, Expected: put.Put, Lines: put.Read, Since: put.StartedAt}).Get(ctx, &del)
		w.leave(ctx, StageDelivery, start)
		if err != nil {
			return w.result, w.stageError(StageDelivery, err)
		}
		c.Delivered, w.result.Duplicates, w.result.ManifestKey = del.Delivered, del.Duplicates, del.ManifestKey

		// 3. Convert the staged records to one Parquet file.
		start = w.enter(ctx, StageConvert)
		conv, err := w.convert(ctx, activities.ConvertInput{FeedID: id, Pipeline: p, ManifestKey: del.ManifestKey, Expected: del.Delivered, Lines: put.Read}, hb)
		w.leave(ctx, StageConvert, start)
		if err != nil {
			return w.result, w.stageError(StageConvert, err)
		}
		c.Converted, w.result.ParquetKey = conv.Rows, conv.ParquetKey

		// 4. Confirm Snowflake loaded it, row for row.
		start = w.enter(ctx, StageConfirm)
		var conf activities.ConfirmResult
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, stageOptions(p.Deadlines.Ingest, hb)),
			a.ConfirmIngestion, activities.ConfirmInput{FeedID: id, Pipeline: p, ParquetKey: conv.ParquetKey, Expected: conv.Rows}).Get(ctx, &conf)
		w.leave(ctx, StageConfirm, start)
		if err != nil {
			return w.result, w.stageError(StageConfirm, err)
		}
		c.Loaded, w.result.Confirmation = conf.Loaded, conf.Strategy
	}

	w.result.Counts = *c
	if c.Read != c.Loaded+c.Rejected {
		return w.result, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"feed %s does not reconcile: read %d != loaded %d + rejected %d (put %d, delivered %d, converted %d)",
			w.in.Ref, c.Read, c.Loaded, c.Rejected, c.Put, c.Delivered, c.Converted), "NotReconciled", nil)
	}
	w.progress.Stage = StageDone
	_ = w.upsert(ctx)
	return w.result, nil
}

func (w *feedWorkflow) convert(ctx workflow.Context, in activities.ConvertInput, hb time.Duration) (activities.ConvertResult, error) {
	var a *activities.Activities
	opts := stageOptions(in.Pipeline.Deadlines.Convert, hb)
	actx := workflow.WithActivityOptions(ctx, opts)
	var res activities.ConvertResult
	switch in.Pipeline.Conversion {
	case pipeline.ConvertGlue:
		var run activities.GlueRun
		start := opts
		start.StartToCloseTimeout, start.HeartbeatTimeout = time.Minute, 0
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, start), a.StartGlueRun, in).Get(ctx, &run); err != nil {
			return res, err
		}
		w.progress.GlueRunID, w.result.GlueRunID = run.RunID, run.RunID
		err := workflow.ExecuteActivity(actx, a.AwaitGlueRun, in, run).Get(ctx, &res)
		return res, err
	case pipeline.ConvertLocal, pipeline.ConvertFirehose:
		err := workflow.ExecuteActivity(actx, a.ConvertLocal, in).Get(ctx, &res)
		return res, err
	}
	return res, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("pipeline %s: unknown conversion %q", in.Pipeline.Name, in.Pipeline.Conversion), activities.ErrBadInput, nil)
}

// stageError is the run's failure when a stage failed: its type is the
// activity's error type (so clients and the UI see RejectThresholdExceeded,
// GlueRunFailed, …), its message names the feed, the stage and the cause.
func (w *feedWorkflow) stageError(stage string, err error) error {
	msg := err.Error()
	typ := "StageFailed"
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		msg, typ = app.Message(), app.Type()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		msg, typ = fmt.Sprintf("%s timed out (%s) after its retries; its deadline is in the pipeline config", stage, timeout.TimeoutType()), "StageTimeout"
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("feed %s: %s failed: %s", w.in.Ref, stage, msg), typ, nil)
}

// ErrorType returns the Temporal application error type inside err, if any.
func ErrorType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}
