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
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

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
		fmt.Printf("canceled: the run stopped and removed its checkpoints and quarantine parts\n")
		return nil
	case err == nil:
		return fmt.Errorf("%s completed before the cancel reached it", *id)
	case wctx.Err() != nil:
		return fmt.Errorf("%s has not ended after %s: its running activity stops at its next heartbeat; see feedpipe status -workflow-id '%s'", *id, *wait, *id)
	}
	return fmt.Errorf("%s ended before the cancel reached it: %w", *id, err)
}
