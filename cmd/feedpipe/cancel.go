package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/workflows"
)

// runCancel asks a running run to stop: it stops its running activity,
// removes what it made (activities.CleanUpCanceled) and ends Canceled.
func runCancel(args []string) error {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	id := fs.String("workflow-id", "", "the run's workflow id (feed/<bucket>/<key>@<etag or version>)")
	reason := fs.String("reason", "", "why, for the run's history")
	wait := fs.Duration("wait", 2*time.Minute, "wait this long for the run to end (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" || fs.NArg() != 0 {
		return errors.New("usage: feedpipe cancel -workflow-id ID [-reason TEXT] [-wait 2m]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, opts, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WorkflowService().RequestCancelWorkflowExecution(ctx, &workflowservice.RequestCancelWorkflowExecutionRequest{
		Namespace:         opts.Namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: *id},
		Identity:          "feedpipe cancel",
		Reason:            *reason,
	}); err != nil {
		return fmt.Errorf("cancel %s: %w", *id, err)
	}
	fmt.Printf("cancel requested: %s\n", *id)
	if *wait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	var res workflows.FeedResult
	err = c.GetWorkflow(wctx, *id, "").Get(wctx, &res)
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &canceled):
		res, found, herr := cleanupResult(ctx, c, opts.DataConverter, *id)
		switch {
		case herr != nil:
			return fmt.Errorf("%s is canceled; reading what its cleanup did: %w", *id, herr)
		case !found:
			fmt.Println("canceled, but its cleanup did not complete (see the worker's log): the buckets' lifecycle rules expire the checkpoints and quarantine parts left")
		default:
			fmt.Printf("canceled: removed %d quarantine parts and %d checkpoint objects\n", res.QuarantineParts, res.Checkpoints)
		}
		return nil
	case err == nil:
		return fmt.Errorf("%s completed before the cancel reached it", *id)
	case wctx.Err() != nil:
		return fmt.Errorf("%s has not ended after %s: its running activity stops at its next heartbeat; see feedpipe status -workflow-id '%s'", *id, *wait, *id)
	}
	return fmt.Errorf("%s ended before the cancel reached it: %w", *id, err)
}

// cleanupResult is what the run's CleanUpCanceled activity reported, read
// from its history (found false when it did not complete).
func cleanupResult(ctx context.Context, c client.Client, dc converter.DataConverter, id string) (activities.CleanupResult, bool, error) {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	var res activities.CleanupResult
	scheduled := map[int64]bool{}
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return res, false, err
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "CleanUpCanceled" {
			scheduled[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] {
			if err := dc.FromPayloads(a.GetResult(), &res); err != nil {
				return res, false, fmt.Errorf("decode the cleanup's result: %w", err)
			}
			return res, true, nil
		}
	}
	return res, false, nil
}
