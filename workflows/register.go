package workflows

import (
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/feedpipe/feedpipe/activities"
)

// Register registers FeedWorkflow and the activities of acts on w.
func Register(w worker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(FeedWorkflow, workflowRegisterOptions())
	w.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}

func workflowRegisterOptions() workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: FeedWorkflowName}
}

// WorkerOptions are the worker settings feedpipe ships (cmd/worker's flag
// defaults); tests that run a worker in process use them too.
//
// Heartbeats: the SDK holds a heartbeat back for up to 80 % of the heartbeat
// timeout (at most 60 s) unless told otherwise; a checkpoint that lags that
// much makes a retried stage redo seconds of work. One second keeps every
// checkpoint within about a second of the work it covers, at one small RPC
// per running activity per second.
func WorkerOptions() worker.Options {
	return worker.Options{
		MaxConcurrentActivityExecutionSize:     8,
		MaxConcurrentWorkflowTaskExecutionSize: 16,
		WorkerStopTimeout:                      30 * time.Second,
		MaxHeartbeatThrottleInterval:           time.Second,
		Interceptors:                           []interceptor.WorkerInterceptor{activities.CauseInterceptor()},
	}
}
