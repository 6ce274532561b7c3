package runs

import (
	"context"
	"fmt"
	"sort"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/feedpipe/feedpipe/internal/searchattr"
)

// Run is one row of `feedpipe runs`: a run as visibility knows it, with
// the search attributes FeedWorkflow keeps up to date.
type Run struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Status     string    `json:"status"` // Running, Completed, Failed, …
	Bucket     string    `json:"bucket,omitempty"`
	Key        string    `json:"key,omitempty"`
	Pipeline   string    `json:"pipeline,omitempty"`
	Stage      string    `json:"stage,omitempty"`
	Read       int64     `json:"records_read"`
	Rejected   int64     `json:"records_rejected"`
	Loaded     int64     `json:"records_loaded"`
	Start      time.Time `json:"start_time"`
	Close      time.Time `json:"close_time,omitzero"`
	// Duration is from start to close, or to now for a running run.
	Duration Duration `json:"duration"`
}

// Lister is the part of the Temporal client that List uses
// (client.Client has it).
type Lister interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// List returns at most limit runs that match f, newest start first.
func List(ctx context.Context, c Lister, namespace string, f Filter, limit int, now time.Time) ([]Run, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("-limit %d: give a positive number of runs, such as -limit 50", limit)
	}
	q, err := f.Query()
	if err != nil {
		return nil, err
	}
	var out []Run
	var token []byte
	for len(out) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: q, PageSize: int32(min(limit-len(out), 1000)), NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list runs in Temporal namespace %s (query %s): %w", namespace, q, err)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, runOf(e, now))
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out, nil
}

func runOf(e *workflowpb.WorkflowExecutionInfo, now time.Time) Run {
	r := Run{
		WorkflowID: e.GetExecution().GetWorkflowId(),
		RunID:      e.GetExecution().GetRunId(),
		Status:     StatusName(e.GetStatus()),
		Start:      e.GetStartTime().AsTime(),
	}
	if e.GetCloseTime() != nil && e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		r.Close = e.GetCloseTime().AsTime()
		r.Duration = Duration(r.Close.Sub(r.Start))
	} else {
		r.Duration = Duration(now.Sub(r.Start))
	}
	sa := e.GetSearchAttributes()
	r.Bucket = keyword(sa, searchattr.FeedBucket.GetName())
	r.Key = keyword(sa, searchattr.FeedKey.GetName())
	r.Pipeline = keyword(sa, searchattr.FeedPipeline.GetName())
	r.Stage = keyword(sa, searchattr.FeedStage.GetName())
	r.Read = integer(sa, searchattr.FeedRecordsRead.GetName())
	r.Rejected = integer(sa, searchattr.FeedRecordsBad.GetName())
	r.Loaded = integer(sa, searchattr.FeedRecordsLoad.GetName())
	return r
}

// StatusName is a workflow status as the Temporal UI names it: Running,
// Completed, Failed, Canceled, Terminated, ContinuedAsNew, TimedOut.
func StatusName(s enumspb.WorkflowExecutionStatus) string {
	if s == enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED {
		return "Unknown"
	}
	return s.String()
}

func keyword(sa *commonpb.SearchAttributes, name string) string {
	var s string
	if p := sa.GetIndexedFields()[name]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	}
	return s
}

func integer(sa *commonpb.SearchAttributes, name string) int64 {
	var n int64
	if p := sa.GetIndexedFields()[name]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &n)
	}
	return n
}

// Duration is a time.Duration that is written for people, in JSON too:
// "1m32s", never an integer of nanoseconds.
type Duration time.Duration

// String rounds d to what a person reads: tenths of a second under a minute,
// whole seconds above.
func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t < time.Second:
		return t.Round(time.Millisecond).String()
	case t < time.Minute:
		return t.Round(100 * time.Millisecond).String()
	default:
		return t.Round(time.Second).String()
	}
}

// MarshalJSON writes d as its String.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads a duration string such as "1m32s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("duration %s: want a string such as \"1m32s\"", b)
	}
	t, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return fmt.Errorf("duration %s: %w", b, err)
	}
	*d = Duration(t)
	return nil
}
