// Package reset replays a failed FeedWorkflow run from the stage it failed
// in (or an earlier one), as the Temporal UI's Reset does: the new run keeps
// the history of the stages before, so their work is not done again, and
// runs the stage afresh with a fresh deadline.
package reset

import (
	"context"
	"errors"
	"fmt"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/workflows"
)

// Stages are the stages a run can be reset to, in order.
var Stages = []string{workflows.StagePut, workflows.StageDelivery, workflows.StageConvert, workflows.StageConfirm}

// Points are where a run's history can be reset to enter each stage again.
type Points struct {
	// Entered maps a stage to the WorkflowTaskCompleted event of the
	// workflow task that entered it (set FeedStage and scheduled its first
	// activity). Resetting to that event runs that task, and the stage,
	// again.
	Entered map[string]int64
	// Last is the last stage the run entered: the one it failed in.
	Last string
}

// Find reads a run's history for the points its stages were entered at,
// from the FeedStage search attribute each stage sets as it starts.
func Find(events []*historypb.HistoryEvent) (Points, error) {
	p := Points{Entered: map[string]int64{}}
	var lastTask int64
	dc := converter.GetDefaultDataConverter()
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			lastTask = e.GetEventId()
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			payload := e.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()[searchattr.FeedStage.GetName()]
			if payload == nil {
				continue
			}
			var stage string
			if err := dc.FromPayload(payload, &stage); err != nil {
				return p, fmt.Errorf("event %d: read FeedStage: %w", e.GetEventId(), err)
			}
			if !slices.Contains(Stages, stage) || lastTask == 0 {
				continue
			}
			if _, seen := p.Entered[stage]; !seen {
				p.Entered[stage] = lastTask
			}
			p.Last = stage
		}
	}
	if p.Last == "" {
		return p, errors.New("the run never entered a stage: start it again instead (feedpipe starter start)")
	}
	return p, nil
}

// Result says what Run did.
type Result struct {
	Stage    string // the stage the new run starts at
	EventID  int64  // the WorkflowTaskCompleted event it was reset to
	OldRunID string
	NewRunID string
}

// Run resets the latest run of workflowID in namespace to stage ("" for the
// stage it failed in). Only a run that has closed without completing (failed,
// terminated, timed out, canceled) is reset: a running one may still
// finish, and a completed one has loaded its feed.
func Run(ctx context.Context, c client.Client, namespace, workflowID, stage, reason string) (Result, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return Result{}, fmt.Errorf("reset %s: describe: %w", workflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	runID := info.GetExecution().GetRunId()
	switch st := info.GetStatus(); st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return Result{}, fmt.Errorf("reset %s: run %s is still running; wait until it fails (the progress query shows its stage) or terminate it first", workflowID, runID)
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return Result{}, fmt.Errorf("reset %s: run %s completed and its feed is loaded; there is nothing to reset (a new upload of the file is a new run)", workflowID, runID)
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return Result{}, fmt.Errorf("reset %s: run %s continued as new; reset the newest run", workflowID, runID)
	}
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return Result{}, fmt.Errorf("reset %s: read the history of run %s: %w", workflowID, runID, err)
		}
		events = append(events, e)
	}
	points, err := Find(events)
	if err != nil {
		return Result{}, fmt.Errorf("reset %s: %w", workflowID, err)
	}
	if stage == "" {
		stage = points.Last
	}
	id, ok := points.Entered[stage]
	if !ok {
		return Result{}, fmt.Errorf("reset %s: run %s never entered stage %q (it entered %s); reset it to one of those", workflowID, runID, stage, entered(points))
	}
	if reason == "" {
		reason = "feedpipe reset to " + stage
	}
	out, err := c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 namespace,
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID},
		Reason:                    reason,
		WorkflowTaskFinishEventId: id,
	})
	if err != nil {
		return Result{}, fmt.Errorf("reset %s run %s to %s (event %d): %w", workflowID, runID, stage, id, err)
	}
	return Result{Stage: stage, EventID: id, OldRunID: runID, NewRunID: out.GetRunId()}, nil
}

func entered(p Points) string {
	var s []string
	for _, st := range Stages {
		if _, ok := p.Entered[st]; ok {
			s = append(s, st)
		}
	}
	return fmt.Sprint(s)
}
