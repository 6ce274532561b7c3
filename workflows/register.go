package workflows

import (
	"go.temporal.io/sdk/activity"
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
