package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"go.temporal.io/sdk/activity"
)

// GlueRun identifies one run of the pipeline's Glue job.
type GlueRun struct {
	JobName string `json:"job_name"`
	RunID   string `json:"run_id"`
	Reused  bool   `json:"reused,omitempty"` // found, not started, by this call
}

// Glue job arguments. The job script reads them as --NAME value (Glue) or
// as environment variables (MiniStack).
const (
	glueArgManifest   = "--MANIFEST"
	glueArgTarget     = "--TARGET"
	glueArgFeedID     = "--FEED_ID"
	glueArgWorkflowID = "--WORKFLOW_ID"
	glueArgColumns    = "--COLUMNS"
)

// StartGlueRun starts the pipeline's Glue job on the feed's manifest, unless
// a run for this feed is already running or succeeded: then it returns that
// one, so a retried or reset workflow never starts a second conversion.
func (a *Activities) StartGlueRun(ctx context.Context, in ConvertInput) (GlueRun, error) {
	p := in.Pipeline
	wfID := activity.GetInfo(ctx).WorkflowExecution.ID
	if run, ok, err := a.findGlueRun(ctx, p.GlueJob, in.FeedID); err != nil {
		return GlueRun{}, err
	} else if ok {
		return run, nil
	}
	columns, err := json.Marshal(p.Schema.Columns)
	if err != nil {
		return GlueRun{}, err
	}
	out, err := a.Glue.StartJobRun(ctx, &glue.StartJobRunInput{
		JobName: &p.GlueJob,
		Arguments: map[string]string{
			glueArgColumns:    string(columns),
			glueArgManifest:   "s3://" + p.StagingBucket + "/" + in.ManifestKey,
			glueArgTarget:     "s3://" + p.DestBucket + "/" + ParquetKey(p, in.FeedID),
			glueArgFeedID:     in.FeedID,
			glueArgWorkflowID: wfID,
		},
	})
	if err != nil {
		return GlueRun{}, classifyAWS(err, fmt.Sprintf("convert feed %s: start Glue job %s", in.FeedID, p.GlueJob))
	}
	return GlueRun{JobName: p.GlueJob, RunID: aws.ToString(out.JobRunId)}, nil
}

// findGlueRun looks for a run of job for feedID that is running or succeeded.
func (a *Activities) findGlueRun(ctx context.Context, job, feedID string) (GlueRun, bool, error) {
	var token *string
	for {
		out, err := a.Glue.GetJobRuns(ctx, &glue.GetJobRunsInput{JobName: &job, NextToken: token})
		if err != nil {
			return GlueRun{}, false, classifyAWS(err, fmt.Sprintf("list runs of Glue job %s", job))
		}
		for _, r := range out.JobRuns {
			if r.Arguments[glueArgFeedID] != feedID {
				continue
			}
			switch r.JobRunState {
			case gluetypes.JobRunStateStarting, gluetypes.JobRunStateRunning, gluetypes.JobRunStateWaiting,
				gluetypes.JobRunStateSucceeded:
				return GlueRun{JobName: job, RunID: aws.ToString(r.Id), Reused: true}, true, nil
			}
		}
		if out.NextToken == nil {
			return GlueRun{}, false, nil
		}
		token = out.NextToken
	}
}

// AwaitGlueRun polls the run to a terminal state. A failed, stopped or timed
// out run fails the stage with Glue's own message; a succeeded one is checked
// by reading the row count of the Parquet it wrote.
func (a *Activities) AwaitGlueRun(ctx context.Context, in ConvertInput, run GlueRun) (ConvertResult, error) {
	p := in.Pipeline
	wait := a.pollInterval()
	for {
		out, err := a.Glue.GetJobRun(ctx, &glue.GetJobRunInput{JobName: &run.JobName, RunId: &run.RunID})
		if err != nil {
			return ConvertResult{}, classifyAWS(err, fmt.Sprintf("convert feed %s: Glue run %s of job %s", in.FeedID, run.RunID, run.JobName))
		}
		r := out.JobRun
		activity.RecordHeartbeat(ctx, string(r.JobRunState))
		switch r.JobRunState {
		case gluetypes.JobRunStateSucceeded:
			key := ParquetKey(p, in.FeedID)
			rows, ok, err := a.existingParquet(ctx, p.DestBucket, key, in.FeedID)
			if err != nil {
				return ConvertResult{}, err
			}
			if !ok {
				return ConvertResult{}, nonRetryable(ErrGlueRun, "convert feed %s: Glue run %s succeeded but wrote no s3://%s/%s", in.FeedID, run.RunID, p.DestBucket, key)
			}
			if rows != in.Expected {
				return ConvertResult{}, nonRetryable(ErrRowCount, "convert feed %s: Glue run %s wrote %d rows, want %d", in.FeedID, run.RunID, rows, in.Expected)
			}
			return ConvertResult{Rows: rows, ParquetKey: key}, nil
		case gluetypes.JobRunStateFailed, gluetypes.JobRunStateTimeout, gluetypes.JobRunStateStopped,
			gluetypes.JobRunStateError, gluetypes.JobRunStateExpired:
			return ConvertResult{}, nonRetryable(ErrGlueRun, "convert feed %s: Glue run %s of job %s ended %s: %s. Fix the cause, then reset the workflow to the Convert stage (a new run is started)",
				in.FeedID, run.RunID, run.JobName, r.JobRunState, aws.ToString(r.ErrorMessage))
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return ConvertResult{}, err
		}
		wait = min(wait*2, 10*a.pollInterval(), 30*time.Second)
	}
}
