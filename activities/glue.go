package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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
	glueArgStaging    = "--STAGING"
	glueArgLines      = "--LINES"
	glueArgTarget     = "--TARGET"
	glueArgFeedID     = "--FEED_ID"
	glueArgWorkflowID = "--WORKFLOW_ID"
	glueArgColumns    = "--COLUMNS"
)

// StartGlueRun starts the pipeline's Glue job on the feed's staging prefix, unless
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
			glueArgStaging:    "s3://" + p.StagingBucket + "/" + FeedStagingPrefix(p, in.FeedID),
			glueArgLines:      strconv.FormatInt(in.Lines, 10),
			glueArgTarget:     "s3://" + p.DestBucket + "/" + parquetPartKey(p, in.FeedID, 1),
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

// GlueStatus is what one look at a Glue run found.
type GlueStatus struct {
	State  string        `json:"state"`
	Done   bool          `json:"done"`
	Result ConvertResult `json:"result"` // when Done
}

// CheckGlueRun looks at the run once. A failed, stopped or timed out run
// fails the stage with Glue's own message; a succeeded one is checked by
// reading the row count of the Parquet it wrote. The workflow calls it again
// after a timer while the run is going, so waiting holds no worker slot.
func (a *Activities) CheckGlueRun(ctx context.Context, in ConvertInput, run GlueRun) (GlueStatus, error) {
	p := in.Pipeline
	out, err := a.Glue.GetJobRun(ctx, &glue.GetJobRunInput{JobName: &run.JobName, RunId: &run.RunID})
	if err != nil {
		return GlueStatus{}, classifyAWS(err, fmt.Sprintf("convert feed %s: Glue run %s of job %s", in.FeedID, run.RunID, run.JobName))
	}
	r := out.JobRun
	st := GlueStatus{State: string(r.JobRunState)}
	switch r.JobRunState {
	case gluetypes.JobRunStateSucceeded:
		key := parquetPartKey(p, in.FeedID, 1) // the job writes one file
		rows, ok, err := a.existingParquet(ctx, p.DestBucket, key, in.FeedID)
		if err != nil {
			return st, err
		}
		if !ok {
			return st, nonRetryable(ErrGlueRun, "convert feed %s: Glue run %s succeeded but wrote no s3://%s/%s", in.FeedID, run.RunID, p.DestBucket, key)
		}
		if rows != in.Expected {
			return st, nonRetryable(ErrRowCount, "convert feed %s: Glue run %s wrote %d rows, want %d", in.FeedID, run.RunID, rows, in.Expected)
		}
		st.Done, st.Result = true, ConvertResult{Rows: rows, Files: []ParquetFile{{Key: key, Rows: rows}}}
		return st, nil
	case gluetypes.JobRunStateFailed, gluetypes.JobRunStateTimeout, gluetypes.JobRunStateStopped,
		gluetypes.JobRunStateError, gluetypes.JobRunStateExpired:
		return st, nonRetryable(ErrGlueRun, "convert feed %s: Glue run %s of job %s ended %s: %s (running Convert again starts a new job run)",
			in.FeedID, run.RunID, run.JobName, r.JobRunState, aws.ToString(r.ErrorMessage))
	}
	return st, nil
}
