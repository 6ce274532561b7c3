package runs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/workflows"
)

// Status is one run as `feedpipe status` shows it.
type Status struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Status     string `json:"status"` // Running, Completed, Failed, …
	Pipeline   string `json:"pipeline,omitempty"`
	Feed       string `json:"feed,omitempty"` // s3://bucket/key@version
	FeedID     string `json:"feed_id,omitempty"`
	FeedBytes  int64  `json:"feed_bytes,omitempty"`
	Stage      string `json:"stage,omitempty"`        // FeedStage: the stage now, Done or Failed
	FailedIn   string `json:"failed_stage,omitempty"` // the stage a failed run failed in
	// Counts are the run's records at each stage: its result once it has
	// ended; while it runs, the workflow's counts raised to what the running
	// activity's heartbeat says.
	Counts Counts    `json:"counts"`
	Start  time.Time `json:"start_time"`
	Close  time.Time `json:"close_time,omitzero"`
	// Elapsed is from start to close, or to now while the run runs.
	Elapsed   Duration            `json:"elapsed"`
	Durations map[string]Duration `json:"durations,omitempty"` // per finished stage
	Error     *Failure            `json:"error,omitempty"`     // why a run that did not complete ended
	// QuarantineKey is the object of rejected lines in QuarantineBucket.
	QuarantineBucket string   `json:"quarantine_bucket,omitempty"`
	QuarantineKey    string   `json:"quarantine_key,omitempty"`
	ParquetKeys      []string `json:"parquet_keys,omitempty"`
	Duplicates       int64    `json:"duplicates,omitempty"`
	Resends          int64    `json:"resends,omitempty"`
	GlueRunID        string   `json:"glue_run_id,omitempty"`
	Confirmation     string   `json:"confirmation,omitempty"`
	// Activities are the run's pending activities with their live progress.
	Activities []Activity `json:"activities,omitempty"`
	// Waiting says what a running run with no pending activity waits on.
	Waiting string `json:"waiting,omitempty"`
	// Progress is the workflow's own view (its progress query).
	Progress      *Progress `json:"progress,omitempty"`
	ProgressError string    `json:"progress_error,omitempty"`
	// InputError says why the run's input (feed, pipeline) could not be read.
	InputError string `json:"input_error,omitempty"`
}

// Running reports whether the run has not ended.
func (s Status) Running() bool {
	return s.Status == StatusName(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING)
}

// Counts are workflows.Counts (records at each stage).
type Counts = workflows.Counts

// Failure is an error as Temporal carries it: its type first, then its message.
type Failure struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// String is "Type: message", or the message alone when there is no type.
func (f *Failure) String() string {
	if f == nil {
		return ""
	}
	if f.Type == "" || strings.HasPrefix(f.Message, f.Type+": ") {
		return f.Message // (some messages already start with their type)
	}
	return f.Type + ": " + f.Message
}

// Progress is the workflow's progress query answer, with durations written
// for people.
type Progress struct {
	Stage     string               `json:"stage"`
	Counts    Counts               `json:"counts"`
	GlueRunID string               `json:"glue_run_id,omitempty"`
	LastError string               `json:"last_error,omitempty"`
	FirstBad  []activities.BadLine `json:"first_bad,omitempty"`
	Durations map[string]Duration  `json:"durations,omitempty"`
}

// Activity is a pending activity of the run and how far it has got.
type Activity struct {
	Type          string    `json:"type"`
	ID            string    `json:"id"`
	State         string    `json:"state"` // Scheduled, Started, CancelRequested
	Attempt       int32     `json:"attempt"`
	Started       time.Time `json:"started,omitzero"`        // this attempt
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"` // the details' time
	HeartbeatAge  *Duration `json:"heartbeat_age,omitempty"` // since LastHeartbeat, at Observed
	Observed      time.Time `json:"observed"`                // when this was read
	LastFailure   *Failure  `json:"last_failure,omitempty"`  // the previous attempt's
	NextAttempt   time.Time `json:"next_attempt,omitzero"`   // when a failed attempt is retried
	Measure
	Rate     float64   `json:"rate_per_second,omitempty"`
	RateFrom string    `json:"rate_from,omitempty"` // "heartbeats" (two samples) or "attempt start"
	ETA      *Duration `json:"eta,omitempty"`       // nil: unknown
	ETAText  string    `json:"eta_text"`            // "1m2s", or "unknown" and why
}

// Describer describes runs; it keeps the last progress sample of each
// activity type it has seen, so that a second Describe of the same run
// has a rate from two heartbeats. Use one per run watched.
type Describer struct {
	Client    client.Client
	Namespace string
	// DataConverter decodes the run's input and heartbeat details: the
	// client's (client.Options.DataConverter; nil: the default).
	DataConverter converter.DataConverter
	// FailureConverter decodes an attempt's last failure when the payload
	// codec encrypted its message (client.Options.FailureConverter; nil:
	// shown as stored).
	FailureConverter converter.FailureConverter
	// QueryTimeout bounds the progress query (a closed run is answered
	// only by a worker replaying it). Default 5 s.
	QueryTimeout time.Duration
	// Now is the clock (default time.Now).
	Now  func() time.Time
	last map[string]Sample
}

func (d *Describer) dc() converter.DataConverter {
	if d.DataConverter != nil {
		return d.DataConverter
	}
	return converter.GetDefaultDataConverter()
}

func (d *Describer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Describe reads the run workflowID (its latest run): Temporal's
// description and pending activities, its input, its result or failure,
// and its progress query.
func (d *Describer) Describe(ctx context.Context, workflowID string) (Status, error) {
	desc, err := d.Client.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return Status{}, fmt.Errorf("describe run %s: %w", workflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	now := d.now()
	st := Status{
		WorkflowID: workflowID,
		RunID:      info.GetExecution().GetRunId(),
		Status:     StatusName(info.GetStatus()),
		Start:      info.GetStartTime().AsTime(),
	}
	sa := info.GetSearchAttributes()
	st.Pipeline = keyword(sa, searchattr.FeedPipeline.GetName())
	st.Stage = keyword(sa, searchattr.FeedStage.GetName())
	st.Counts.Read = integer(sa, searchattr.FeedRecordsRead.GetName())
	st.Counts.Rejected = integer(sa, searchattr.FeedRecordsBad.GetName())
	st.Counts.Loaded = integer(sa, searchattr.FeedRecordsLoad.GetName())
	if st.Running() {
		st.Elapsed = Duration(now.Sub(st.Start))
	} else {
		st.Close = info.GetCloseTime().AsTime()
		st.Elapsed = Duration(st.Close.Sub(st.Start))
	}

	in, err := d.input(ctx, workflowID, st.RunID)
	if err != nil {
		// The rest is still worth showing (a run of another shape, a
		// history page the server would not give).
		st.InputError = err.Error()
	}
	st.Feed, st.FeedID, st.FeedBytes = in.Ref.String(), in.Ref.ID(), in.Ref.Size
	if st.Pipeline == "" {
		st.Pipeline = in.Pipeline.Name
	}
	st.QuarantineBucket = in.Pipeline.QuarantineBucket

	d.query(ctx, &st)
	if st.Progress != nil {
		st.Counts = st.Progress.Counts
		st.Durations = st.Progress.Durations
	}
	if !st.Running() {
		d.outcome(ctx, &st)
	} else if st.Counts.Rejected > 0 && in.Pipeline.Name != "" {
		st.QuarantineKey = activities.QuarantineKey(in.Pipeline, st.FeedID)
	}

	totals := Totals{SourceBytes: in.Ref.Size, Gzip: strings.HasSuffix(in.Ref.Key, ".gz"), Put: st.Counts.Put, Delivered: st.Counts.Delivered}
	// A closed run's description may still list the activities that were
	// pending when it ended: they are not running.
	for _, pa := range desc.GetPendingActivities() {
		if !st.Running() {
			break
		}
		a, err := d.activity(pa, totals, now)
		if err != nil {
			return Status{}, fmt.Errorf("run %s: %w", workflowID, err)
		}
		st.Activities = append(st.Activities, a)
		liveCounts(&st.Counts, a.Details)
	}
	if st.Running() && len(st.Activities) == 0 {
		st.Waiting = "no activity running: the stage is waiting on a workflow timer between looks, or a workflow task is being processed"
	}
	return st, nil
}

// input is the run's FeedInput, from its first history event.
func (d *Describer) input(ctx context.Context, workflowID, runID string) (workflows.FeedInput, error) {
	var in workflows.FeedInput
	resp, err := d.Client.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace: d.Namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID}, MaximumPageSize: 1})
	if err != nil {
		return in, fmt.Errorf("read the start of run %s: %w", workflowID, err)
	}
	for _, e := range resp.GetHistory().GetEvents() {
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			if err := d.dc().FromPayloads(a.GetInput(), &in); err != nil {
				return in, fmt.Errorf("run %s: decode its input as FeedInput: %w", workflowID, err)
			}
		}
	}
	return in, nil
}

// query asks the run for its own view of its progress.
func (d *Describer) query(ctx context.Context, st *Status) {
	timeout := d.QueryTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := d.Client.QueryWorkflow(qctx, st.WorkflowID, st.RunID, workflows.ProgressQuery)
	var p workflows.Progress
	if err == nil {
		err = v.Get(&p)
	}
	if err != nil {
		if errors.Is(qctx.Err(), context.DeadlineExceeded) {
			st.ProgressError = fmt.Sprintf("the progress query had no answer within %s (is a worker polling the task queue?)", timeout)
		} else {
			st.ProgressError = "progress query: " + err.Error()
		}
		return
	}
	st.Progress = &Progress{Stage: p.Stage, Counts: p.Counts, GlueRunID: p.GlueRunID, LastError: p.LastError, FirstBad: p.FirstBad, Durations: durations(p.Durations)}
}

// outcome fills in what a closed run returned, or why it failed.
func (d *Describer) outcome(ctx context.Context, st *Status) {
	var res workflows.FeedResult
	err := d.Client.GetWorkflow(ctx, st.WorkflowID, st.RunID).Get(ctx, &res)
	if err != nil {
		st.Error = failureOf(err, st.Status)
		var ok bool
		if res, ok = workflows.Details(err); !ok {
			return
		}
	}
	st.Counts = res.Counts
	st.Durations = durations(res.Durations)
	st.FailedIn = res.FailedStage
	st.QuarantineKey, st.ParquetKeys = res.QuarantineKey, res.ParquetKeys
	st.Duplicates, st.Resends, st.GlueRunID, st.Confirmation = res.Duplicates, res.Resends, res.GlueRunID, res.Confirmation
}

// failureOf is a run's end error: the application error's type and
// message, or the run's status (Terminated, TimedOut, Canceled) and what
// the client says.
func failureOf(err error, status string) *Failure {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return &Failure{Type: app.Type(), Message: app.Message()}
	}
	var term *temporal.TerminatedError
	if errors.As(err, &term) {
		return &Failure{Type: "Terminated", Message: term.Error()}
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return &Failure{Type: "TimedOut", Message: to.Error()}
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return &Failure{Type: "Canceled", Message: canceled.Error()}
	}
	return &Failure{Type: status, Message: err.Error()}
}

func durations(m map[string]time.Duration) map[string]Duration {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]Duration, len(m))
	for k, v := range m {
		out[k] = Duration(v)
	}
	return out
}

// activity turns a pending activity into its progress, with a rate from
// the last sample of the same activity type, or else from the attempt's
// start.
func (d *Describer) activity(pa *workflowpb.PendingActivityInfo, t Totals, now time.Time) (Activity, error) {
	a := Activity{
		Type:     pa.GetActivityType().GetName(),
		ID:       pa.GetActivityId(),
		State:    strings.TrimPrefix(pa.GetState().String(), "PENDING_ACTIVITY_STATE_"),
		Attempt:  pa.GetAttempt(),
		Observed: now,
	}
	if ts := pa.GetLastStartedTime(); ts != nil && pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_SCHEDULED {
		a.Started = ts.AsTime()
	}
	if ts := pa.GetLastHeartbeatTime(); ts != nil {
		a.LastHeartbeat = ts.AsTime()
		age := Duration(now.Sub(a.LastHeartbeat))
		a.HeartbeatAge = &age
	}
	if ts := pa.GetNextAttemptScheduleTime(); ts != nil {
		a.NextAttempt = ts.AsTime()
	}
	a.LastFailure = d.failure(pa.GetLastFailure())
	m, err := DecodeHeartbeat(d.dc(), a.Type, pa.GetHeartbeatDetails(), t)
	if err != nil {
		return a, err
	}
	a.Measure = m
	if m.Unit == "" {
		a.ETAText = "unknown: this activity does not report progress"
		return a, nil
	}
	cur := Sample{At: a.LastHeartbeat, Done: m.Done}
	if d.last == nil {
		d.last = map[string]Sample{}
	}
	prev, seen := d.last[a.Type]
	if rate, ok := Rate(prev, cur); seen && ok {
		a.Rate, a.RateFrom = rate, "heartbeats"
	} else if put, ok := m.Details.(activities.PutProgress); ok && !put.StartedAt.IsZero() && m.Unit != "" {
		// The put records when its first attempt began, with nothing done.
		if rate, ok := Rate(Sample{At: put.StartedAt}, cur); ok {
			a.Rate, a.RateFrom = rate, "put start"
		}
	}
	if !seen || cur.At.After(prev.At) || cur.Done < prev.Done {
		d.last[a.Type] = cur
	}
	switch eta, ok := ETA(m.Done, m.Total, a.Rate); {
	case ok:
		e := Duration(eta)
		a.ETA, a.ETAText = &e, e.String()
	case m.Total <= 0:
		a.ETAText = "unknown: the total is not known"
	case a.RateFrom != "":
		a.ETAText = "unknown: no progress between the two samples"
	default:
		a.ETAText = "unknown: no rate yet (needs two heartbeats that differ)"
	}
	return a, nil
}

// liveCounts raises the counts of a running run to what its running
// activity's heartbeat says: the workflow counts a stage's records only when
// the stage ends. (Progress keeps the workflow's own numbers.)
func liveCounts(c *Counts, details any) {
	switch d := details.(type) {
	case activities.PutProgress:
		c.Read, c.Rejected, c.Put = max(c.Read, d.Read), max(c.Rejected, d.Rejected), max(c.Put, d.Put)
	case activities.DeliveryState:
		c.Delivered = max(c.Delivered, d.Delivered)
	case activities.ConvertProgress:
		var rows int64
		for _, p := range d.Parts {
			rows += p.Rows
		}
		c.Converted = max(c.Converted, rows)
	}
}

// HasRate reports whether every pending activity that reports progress has
// a non-zero rate from two heartbeats (so that another sample would add
// nothing). Stages that checkpoint every few seconds (delivery, convert)
// may show the same count in two close samples.
func (s Status) HasRate() bool {
	for _, a := range s.Activities {
		if a.Unit != "" && (a.RateFrom != "heartbeats" || a.Rate <= 0) {
			return false
		}
	}
	return true
}

// failure is an attempt's last failure, its message decoded when the
// payload codec encrypted it.
func (d *Describer) failure(f *failurepb.Failure) *Failure {
	out := failureOfProto(f)
	if out == nil || f.GetEncodedAttributes() == nil || d.FailureConverter == nil {
		return out
	}
	err := d.FailureConverter.FailureToError(f)
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		out.Message = app.Message()
	} else if err != nil {
		out.Message = err.Error()
	}
	return out
}

func failureOfProto(f *failurepb.Failure) *Failure {
	if f == nil {
		return nil
	}
	typ := f.GetApplicationFailureInfo().GetType()
	if typ == "" && f.GetTimeoutFailureInfo() != nil {
		typ = "Timeout " + strings.TrimPrefix(f.GetTimeoutFailureInfo().GetTimeoutType().String(), "TIMEOUT_TYPE_")
	}
	return &Failure{Type: typ, Message: f.GetMessage()}
}
