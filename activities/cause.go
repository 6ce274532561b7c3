package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// CauseInterceptor names in the worker's log why an activity's context
// ended: the run cancelled, the attempt
// timed out on the server (heartbeat or start-to-close timeout), the
// attempt's own deadline, the worker stopping. Without it the log says only
// "context canceled".
func CauseInterceptor() interceptor.WorkerInterceptor { return &causeInterceptor{} }

type causeInterceptor struct {
	interceptor.WorkerInterceptorBase
}

func (*causeInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &causeActivity{}
	a.Next = next
	return a
}

type causeActivity struct {
	interceptor.ActivityInboundInterceptorBase
}

func (c *causeActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := c.Next.ExecuteActivity(ctx, in)
	if err == nil || ctx.Err() == nil {
		return res, err
	}
	// The error is returned as is: the SDK reads its type (a cancel, an
	// application error's retry policy) from the error itself, and the
	// server records a timeout as the attempt's failure on its own.
	activity.GetLogger(ctx).Warn("activity attempt stopped: "+StopCause(ctx), "err", err)
	return res, err
}

// StopCause says, for an activity context that has ended, why.
func StopCause(ctx context.Context) string {
	cause := context.Cause(ctx)
	var canceled *temporal.CanceledError
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(cause, &canceled):
		return "the run was cancelled (or this activity was), and the activity learned it from its heartbeat"
	case errors.As(cause, &notFound):
		return "Temporal no longer has this attempt: its heartbeat timeout or start-to-close timeout passed on the server (a stalled worker, a long pause, lost heartbeats), and the stage is retried as its policy says"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		info := activity.GetInfo(ctx)
		return fmt.Sprintf("the attempt's deadline passed (start-to-close %s, the stage's deadline)", info.Deadline.Sub(info.StartedTime).Round(1e9))
	case cause != nil && !errors.Is(cause, context.Canceled):
		return "stopped: " + cause.Error()
	}
	return "the worker is stopping (its -stop-timeout passed with the activity still running)"
}
