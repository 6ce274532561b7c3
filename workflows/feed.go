// Package workflows holds FeedWorkflow: one durable run per uploaded feed
// version that drives it through Kinesis, Firehose, Parquet conversion and
// Snowflake, and proves every line arrived once or says why not.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/metrics"
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
	StageCanceled = "Canceled"
)

// RunningStages are the stages a running run can be in, in order.
func RunningStages() []string {
	return []string{StagePut, StageDelivery, StageConvert, StageConfirm}
}

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
	FeedID    string               `json:"feed_id"`
	Stage     string               `json:"stage"`
	Counts    Counts               `json:"counts"`
	GlueRunID string               `json:"glue_run_id,omitempty"`
	LastError string               `json:"last_error,omitempty"`
	FirstBad  []activities.BadLine `json:"first_bad,omitempty"`
	Durations StageDurations       `json:"durations,omitempty"`
}

// FeedResult is a run's account of the feed. A failed run carries it too,
// as its failure's details, with what the stages had counted so far.
type FeedResult struct {
	FeedID        string         `json:"feed_id"`
	Ref           feed.Ref       `json:"ref"`
	Pipeline      string         `json:"pipeline"`
	Counts        Counts         `json:"counts"`
	Duplicates    int64          `json:"duplicates"` // delivered more than once, dropped
	Resends       int64          `json:"resends"`    // PutRecords entries sent again (throttled, or re-put after a resume)
	QuarantineKey string         `json:"quarantine_key,omitempty"`
	StagingPrefix string         `json:"staging_prefix,omitempty"`
	StagingReads  int64          `json:"staging_reads"`          // GETs of staging objects and bundles by AwaitDelivery and Convert
	ParquetKeys   []string       `json:"parquet_keys,omitempty"` // the feed's Parquet files in the destination bucket
	GlueRunID     string         `json:"glue_run_id,omitempty"`
	Durations     StageDurations `json:"durations"`
	Confirmation  string         `json:"confirmation,omitempty"` // the ingestion check used
	FailedStage   string         `json:"failed_stage,omitempty"`
	// ReplacedRows counts the rows of the key's earlier uploads that this
	// run removed (on_new_version = replace).
	ReplacedRows int64 `json:"replaced_rows,omitempty"`
	// SupersededBy is the feed id of a newer upload of the key that was
	// loaded before this one: this run's own rows were then removed.
	SupersededBy string `json:"superseded_by,omitempty"`
}

// Details returns the FeedResult a failed run's error carries, if any.
func Details(err error) (FeedResult, bool) {
	var res FeedResult
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.HasDetails() && app.Details(&res) == nil && res.FeedID != "" {
		return res, true
	}
	return res, false
}

// feedWorkflow is one run's state.
type feedWorkflow struct {
	in       FeedInput
	queue    string // the run's task queue, for errors
	progress Progress
	result   FeedResult
	// cleanUpOnCancel: a cancel waits for the running activity to stop,
	// cleans up and ends the run Canceled (version clean-up-on-cancel).
	cleanUpOnCancel bool
}

// opts are o for this run: with WaitForCancellation when a cancel cleans up.
func (w *feedWorkflow) opts(o workflow.ActivityOptions) workflow.ActivityOptions {
	o.WaitForCancellation = w.cleanUpOnCancel
	return o
}

// cancelled says whether the run has been cancelled (err is what a stage
// returned): by the run's context, whatever error the activity gave.
func (w *feedWorkflow) cancelled(ctx workflow.Context, err error) bool {
	return w.cleanUpOnCancel && (temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled))
}

// FeedWorkflow moves one feed into Snowflake.
func FeedWorkflow(ctx workflow.Context, in FeedInput) (FeedResult, error) {
	w := &feedWorkflow{in: in, queue: workflow.GetInfo(ctx).TaskQueueName}
	if err := w.setup(ctx); err != nil {
		return FeedResult{}, err
	}
	res, err := w.run(ctx)
	if err != nil && w.cancelled(ctx, err) {
		return w.canceled(ctx)
	}
	w.observeEnd(ctx, err)
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
	// Runs started from here on wait for a cancelled activity to stop and
	// then clean up (canceled); earlier ones, replayed, fail as they did.
	w.cleanUpOnCancel = workflow.GetVersion(ctx, "clean-up-on-cancel", workflow.DefaultVersion, 1) == 1
	w.progress = Progress{FeedID: id, Stage: StagePut, Durations: StageDurations{}}
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

// stageOptions are the activity options of a stage's long activity: the
// stage's deadline bounds it including retries; a heartbeat timeout notices
// a dead worker; errors retrying cannot fix are not retried.
func stageOptions(deadline time.Duration, heartbeat time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    deadline,
		ScheduleToCloseTimeout: deadline,
		HeartbeatTimeout:       heartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
}

// lookOptions are the options of a short look (a Glue run's state, a load's
// status): no heartbeat, each attempt bounded by a few minutes.
func lookOptions(remaining time.Duration) workflow.ActivityOptions {
	o := stageOptions(remaining, 0)
	o.StartToCloseTimeout = min(remaining, lookTimeout)
	return o
}

// The waiting stages look, then wait on a workflow timer, so that waiting
// holds no worker slot: the first wait is pollFirst, doubling up to pollMax.
const (
	pollFirst   = time.Second
	pollMax     = 10 * time.Second
	lookTimeout = 2 * time.Minute
)

// errDeadline says a waiting stage's deadline passed between looks.
var errDeadline = errors.New("stage deadline passed")

// poll calls look until it reports done, with a timer between calls, until
// the stage's deadline (from start). look gets the remaining time.
func (w *feedWorkflow) poll(ctx workflow.Context, start time.Time, deadline time.Duration, look func(remaining time.Duration) (bool, error)) error {
	end := start.Add(deadline)
	wait := pollFirst
	for {
		remaining := end.Sub(workflow.Now(ctx))
		if remaining <= 0 {
			return errDeadline
		}
		if done, err := look(remaining); err != nil || done {
			return err
		}
		if !workflow.Now(ctx).Add(wait).Before(end) {
			return errDeadline
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, pollMax)
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
	workflow.GetLogger(ctx).Info("stage started", "feed", w.in.Ref.String(), "pipeline", w.in.Pipeline.Name, "stage", stage)
	return workflow.Now(ctx)
}

// leave records the stage's duration in the run and, with its outcome, in
// the worker's metrics.
func (w *feedWorkflow) leave(ctx workflow.Context, stage string, start time.Time, err error) {
	d := workflow.Now(ctx).Sub(start)
	w.progress.Durations[stage] = d
	w.observeStage(ctx, stage, d, err)
	if err != nil {
		workflow.GetLogger(ctx).Warn("stage ended without success", "feed", w.in.Ref.String(), "stage", stage, "duration", d.String(), "err", err)
		return
	}
	workflow.GetLogger(ctx).Info("stage done", "feed", w.in.Ref.String(), "stage", stage, "duration", d.String())
}

func (w *feedWorkflow) run(ctx workflow.Context) (FeedResult, error) {
	var a *activities.Activities
	p, id := w.in.Pipeline, w.progress.FeedID
	hb := heartbeatTimeout(p)
	c := &w.progress.Counts
	defer func() { w.result.Counts = *c }()

	// 1. Stream the file into Kinesis.
	start := w.enter(ctx, StagePut)
	var put activities.PutResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(stageOptions(p.Deadlines.Put.Std(), hb))),
		a.PutToKinesis, activities.PutInput{FeedID: id, Ref: w.in.Ref, Pipeline: p}).Get(ctx, &put)
	w.leave(ctx, StagePut, start, err)
	if err != nil {
		if putSoFar(err, &put) {
			c.Read, c.Rejected, c.Put = put.Read, put.Rejected, put.Put
			w.progress.FirstBad, w.result.QuarantineKey, w.result.Resends = put.FirstBad, put.QuarantineKey, put.Resends
			w.countPut(ctx, put)
		}
		return w.result, w.stageError(ctx, StagePut, err)
	}
	w.countPut(ctx, put)
	c.Read, c.Rejected, c.Put = put.Read, put.Rejected, put.Put
	w.progress.FirstBad = put.FirstBad
	w.result.QuarantineKey, w.result.Resends = put.QuarantineKey, put.Resends
	if put.Put == 0 {
		// An empty upload (or one of rejected lines only) is still the
		// key's newest snapshot.
		if err := w.supersede(ctx, put.SourceModified); err != nil {
			if ErrorType(err) == "NotReconciled" {
				return w.result, err
			}
			return w.result, w.stageError(ctx, StageConfirm, err)
		}
		return w.finish(ctx)
	}

	// 2. Wait until Firehose has staged every record.
	start = w.enter(ctx, StageDelivery)
	w.result.StagingPrefix = activities.FeedStagingPrefix(p, id)
	del := activities.DeliveryInput{FeedID: id, Pipeline: p, Expected: put.Put, Lines: put.Read}
	err = w.poll(ctx, start, p.Deadlines.Delivery.Std(), func(remaining time.Duration) (bool, error) {
		var st activities.DeliveryState
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(stageOptions(remaining, hb))), a.CheckDelivery, del).Get(ctx, &st)
		if err != nil {
			return false, err
		}
		del.State = st
		c.Delivered, w.result.Duplicates, w.result.StagingReads = st.Delivered, st.Duplicates, st.Reads
		return st.Done(put.Put), nil
	})
	w.leave(ctx, StageDelivery, start, err)
	w.count(ctx, metrics.RecordsDelivered, c.Delivered)
	if errors.Is(err, errDeadline) {
		err = temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"Firehose delivered %d of %d records to s3://%s/%s before the delivery deadline (%s); %d are missing. Check the delivery stream %s (its errors/ prefix, CloudWatch DeliveryToS3 metrics), then run AwaitDelivery again: %s",
			c.Delivered, put.Put, p.StagingBucket, w.result.StagingPrefix, p.Deadlines.Delivery.Std(), put.Put-c.Delivered, p.DeliveryStream, w.resetCommand(ctx)), activities.ErrDelivery, nil)
	}
	if err != nil {
		return w.result, w.stageError(ctx, StageDelivery, err)
	}

	// 3. Convert the staged records to one Parquet file.
	start = w.enter(ctx, StageConvert)
	conv, err := w.convert(ctx, start, activities.ConvertInput{FeedID: id, Pipeline: p, Expected: c.Delivered, Lines: put.Read, Delivered: del.State.Checkpoint}, hb)
	w.leave(ctx, StageConvert, start, err)
	if err != nil {
		return w.result, w.stageError(ctx, StageConvert, err)
	}
	c.Converted = conv.Rows
	w.count(ctx, metrics.RecordsConverted, conv.Rows)
	for _, f := range conv.Files {
		w.result.ParquetKeys = append(w.result.ParquetKeys, f.Key)
	}
	w.result.StagingReads += conv.Reads
	if conv.Reads > 0 {
		// Convert saw more of the staged objects than delivery, which stops
		// at the last line it needs (Convert stops at its last row too, so
		// duplicates staged after it are not counted).
		w.result.Duplicates = conv.Duplicates
	}

	// 4. Confirm Snowflake loaded it, row for row.
	start = w.enter(ctx, StageConfirm)
	if err := w.recordUpload(ctx, put.SourceModified, p.Deadlines.Ingest.Std()); err != nil {
		w.leave(ctx, StageConfirm, start, err)
		return w.result, w.stageError(ctx, StageConfirm, err)
	}
	conf := activities.ConfirmInput{FeedID: id, Pipeline: p, Files: conv.Files, Expected: conv.Rows}
	var last activities.ConfirmStatus
	err = w.poll(ctx, start, p.Deadlines.Ingest.Std(), func(remaining time.Duration) (bool, error) {
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(lookOptions(remaining))), a.CheckIngestion, conf).Get(ctx, &last)
		return last.Done, err
	})
	w.leave(ctx, StageConfirm, start, err)
	if errors.Is(err, errDeadline) {
		t := p.Snowflake.Database + "." + p.Snowflake.Schema + "." + p.Snowflake.Table
		err = temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"Snowflake has not loaded the feed's files s3://%s/%s* into %s by the ingestion deadline (%s; last status %q). Check the pipe (SYSTEM$PIPE_STATUS) and its notifications, then run ConfirmIngestion again: %s",
			p.DestBucket, activities.ParquetPrefix(p, id), t, p.Deadlines.Ingest.Std(), last.Status, w.resetCommand(ctx)), activities.ErrIngestTimeout, nil)
	}
	if err != nil {
		return w.result, w.stageError(ctx, StageConfirm, err)
	}
	c.Loaded, w.result.Confirmation = last.Result.Loaded, last.Result.Strategy
	w.count(ctx, metrics.RecordsLoaded, c.Loaded)
	if err := w.supersede(ctx, put.SourceModified); err != nil {
		if ErrorType(err) == "NotReconciled" {
			return w.result, err
		}
		return w.result, w.stageError(ctx, StageConfirm, err)
	}
	return w.finish(ctx)
}

// supersedeTimeout bounds replacing a key's earlier uploads, retries included.
const supersedeTimeout = 10 * time.Minute

// supersede, for a pipeline whose new uploads replace the earlier ones,
// records this upload and removes the rows of the key's other uploads but
// the newest. Runs started before this step existed skip it, as do append
// pipelines (and runs whose input predates the setting).
func (w *feedWorkflow) supersede(ctx workflow.Context, modified time.Time) error {
	var a *activities.Activities
	p := w.in.Pipeline
	if p.OnNewVersion != pipeline.NewVersionReplace {
		return nil
	}
	// A run that does not reconcile must not replace a good snapshot.
	if err := w.reconciled(); err != nil {
		return err
	}
	if modified.IsZero() {
		// A put by a worker from before this step says no LastModified:
		// without the upload's place among the key's uploads, replacing
		// could remove the newer one's rows. This run appends.
		workflow.GetLogger(ctx).Warn("no LastModified from the put: the key's earlier uploads are not replaced", "feed", w.in.Ref.String())
		return nil
	}
	if workflow.GetVersion(ctx, "supersede-earlier-uploads", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	var res activities.SupersedeResult
	in := activities.SupersedeInput{FeedID: w.progress.FeedID, Ref: w.in.Ref, Pipeline: p, Modified: modified}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(lookOptions(supersedeTimeout))), a.SupersedeVersions, in).Get(ctx, &res); err != nil {
		return err
	}
	w.result.ReplacedRows = res.Removed
	if res.Current != w.progress.FeedID {
		w.result.SupersededBy = res.Current
		workflow.GetLogger(ctx).Info("a newer upload of the key was loaded first: this upload's rows were removed", "feed", w.in.Ref.String(), "newer_feed_id", res.Current)
	}
	return nil
}

// recordUpload, for a pipeline whose new uploads replace the earlier ones,
// records this upload as the confirm stage begins, before it looks at the
// load: rows Snowflake loads from the files are then known to be this
// upload's, and a later upload removes them even if this run fails (a row
// count that does not match, a load after the deadline). It has the stage's
// deadline: Snowflake down past it fails the stage as a load check would.
// Runs started before this step skip it (their upload is recorded once
// confirmed, as before).
func (w *feedWorkflow) recordUpload(ctx workflow.Context, modified time.Time, deadline time.Duration) error {
	var a *activities.Activities
	if w.in.Pipeline.OnNewVersion != pipeline.NewVersionReplace || modified.IsZero() {
		return nil
	}
	if workflow.GetVersion(ctx, "record-upload-before-confirm", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	in := activities.SupersedeInput{FeedID: w.progress.FeedID, Ref: w.in.Ref, Pipeline: w.in.Pipeline, Modified: modified}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(lookOptions(deadline))), a.RecordUpload, in).Get(ctx, nil)
}

// reconciled fails the run unless read = loaded + rejected.
func (w *feedWorkflow) reconciled() error {
	c := w.progress.Counts
	w.result.Counts = c
	if c.Read != c.Loaded+c.Rejected {
		w.result.FailedStage = StageConfirm
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"feed %s does not reconcile: read %d != loaded %d + rejected %d (put %d, delivered %d, converted %d)",
			w.in.Ref, c.Read, c.Loaded, c.Rejected, c.Put, c.Delivered, c.Converted), "NotReconciled", nil, w.result)
	}
	return nil
}

// cleanupTimeout bounds CleanUpCanceled, retries included.
const cleanupTimeout = 10 * time.Minute

// canceled ends a cancelled run: on a context the cancel does not reach, it
// marks the run Canceled and removes what the run made that no finished
// stage published (activities.CleanUpCanceled), then returns the cancel, so
// the run closes as Canceled. A cleanup that fails is logged: what is left
// is a checkpoint or a quarantine part, which the buckets' lifecycle rules
// expire and a new run of the feed replaces.
func (w *feedWorkflow) canceled(ctx workflow.Context) (FeedResult, error) {
	cause := temporal.NewCanceledError()
	var a *activities.Activities
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	stage := w.progress.Stage
	w.progress.Stage, w.result.FailedStage = StageCanceled, stage
	_ = w.upsert(dctx)
	w.observeEnd(dctx, cause)
	log := workflow.GetLogger(dctx)
	log.Info("run cancelled; cleaning up", "feed", w.in.Ref.String(), "stage", stage)
	var res activities.CleanupResult
	in := activities.CleanupInput{FeedID: w.progress.FeedID, Pipeline: w.in.Pipeline}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, w.opts(lookOptions(cleanupTimeout))), a.CleanUpCanceled, in).Get(dctx, &res); err != nil {
		log.Warn("could not clean up after the cancel; the buckets' lifecycle rules expire what is left", "feed", w.in.Ref.String(), "err", err)
	}
	return w.result, cause
}

// finish checks that the run reconciles and marks it done.
func (w *feedWorkflow) finish(ctx workflow.Context) (FeedResult, error) {
	if err := w.reconciled(); err != nil {
		return w.result, err
	}
	w.progress.Stage = StageDone
	_ = w.upsert(ctx)
	return w.result, nil
}

// putSoFar fills put with what a failed PutToKinesis had done: the result
// its error carries, or its last checkpoint.
func putSoFar(err error, put *activities.PutResult) bool {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.HasDetails() && app.Details(put) == nil {
		return true
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) && timeout.HasLastHeartbeatDetails() {
		var prog activities.PutProgress
		if timeout.LastHeartbeatDetails(&prog) == nil {
			*put = activities.PutResult{Read: prog.Read, Rejected: prog.Rejected, Put: prog.Put, Resends: prog.Resends, FirstBad: prog.FirstBad}
			return true
		}
	}
	return false
}

func (w *feedWorkflow) convert(ctx workflow.Context, start time.Time, in activities.ConvertInput, hb time.Duration) (activities.ConvertResult, error) {
	var a *activities.Activities
	deadline := in.Pipeline.Deadlines.Convert.Std()
	var res activities.ConvertResult
	switch in.Pipeline.Conversion {
	case pipeline.ConvertGlue:
		var run activities.GlueRun
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(lookOptions(deadline))), a.StartGlueRun, in).Get(ctx, &run); err != nil {
			return res, err
		}
		w.progress.GlueRunID, w.result.GlueRunID = run.RunID, run.RunID
		var last activities.GlueStatus
		err := w.poll(ctx, start, deadline, func(remaining time.Duration) (bool, error) {
			err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(lookOptions(remaining))), a.CheckGlueRun, in, run).Get(ctx, &last)
			return last.Done, err
		})
		if errors.Is(err, errDeadline) {
			err = temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"Glue run %s of job %s was still %s at the convert deadline (%s); stop it or let it finish",
				run.RunID, run.JobName, last.State, deadline), activities.ErrGlueRun, nil)
		}
		return last.Result, err
	case pipeline.ConvertLocal, pipeline.ConvertFirehose:
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.opts(stageOptions(deadline, hb))), a.ConvertLocal, in).Get(ctx, &res)
		return res, err
	}
	return res, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("pipeline %s: unknown conversion %q", in.Pipeline.Name, in.Pipeline.Conversion), activities.ErrBadInput, nil)
}

// stageError is the run's failure when a stage failed: its type is the
// activity's error type (so clients and the UI see RejectThresholdExceeded,
// GlueRunFailed, …), its message names the feed, the stage and the cause,
// and its details are the run's result so far (counts, keys, durations).
func (w *feedWorkflow) stageError(ctx workflow.Context, stage string, err error) error {
	if w.cancelled(ctx, err) {
		return err // the run was cancelled: FeedWorkflow cleans up
	}
	msg := err.Error()
	typ := "StageFailed"
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		msg, typ = app.Message(), app.Type()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		typ = "StageTimeout"
		msg = fmt.Sprintf("%s timed out (%s) after its retries; its deadline is in the pipeline config", stage, timeout.TimeoutType())
		var act *temporal.ActivityError
		if errors.As(err, &act) && act.StartedEventID() == 0 && timeout.Unwrap() == nil {
			msg = fmt.Sprintf("%s never started: no worker on task queue %q took its activity before the stage deadline; check that workers are running and not saturated (worker -max-activities)",
				stage, w.queue)
		} else if cause := timeout.Unwrap(); cause != nil {
			msg += "; last failure: " + cause.Error()
		}
		msg += ". Once the cause is fixed, run the stage again: " + w.resetCommand(ctx)
	}
	if typ == activities.ErrGlueRun || typ == activities.ErrLoad || typ == activities.ErrVersions {
		// Caused outside the feed (the job's script or resources, the
		// table or the file): once fixed, the stage can run again.
		msg += ". Once the cause is fixed, run the stage again: " + w.resetCommand(ctx)
	}
	w.result.FailedStage = stage
	w.result.Counts = w.progress.Counts
	return temporal.NewNonRetryableApplicationError(failureMessage(typ, stage, w.in.Ref.String(), msg), typ, nil, w.result)
}

// failureMessage is a failed run's message: its type first (the UI shows
// the message before the type), then the stage, then the cause; the feed is
// named once, here unless the cause names it already.
func failureMessage(typ, stage, ref, cause string) string {
	if strings.Contains(cause, ref) {
		return fmt.Sprintf("%s: %s failed: %s", typ, stage, cause)
	}
	return fmt.Sprintf("%s: %s failed for feed %s: %s", typ, stage, ref, cause)
}

// ErrorType returns the Temporal application error type inside err, if any.
func ErrorType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

// resetCommand is the command that runs this run again from the stage it
// failed in, keeping the work of the stages before it (feedpipe reset), with
// the workflow id quoted for a POSIX shell.
func (w *feedWorkflow) resetCommand(ctx workflow.Context) string {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	return "feedpipe reset -workflow-id '" + strings.ReplaceAll(id, "'", `'\''`) + "'"
}
