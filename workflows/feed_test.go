package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

var acts *activities.Activities

func testInput(conversion string) FeedInput {
	min := pipeline.Duration(time.Minute)
	return FeedInput{
		Ref: feed.Ref{Bucket: "src", Key: "customers/a.ndjson", ETag: "e1", Size: 10},
		Pipeline: pipeline.Pipeline{
			Name: "customers", Conversion: conversion, GlueJob: "job",
			Deadlines: pipeline.Deadlines{Put: min, Delivery: min, Convert: min, Ingest: min},
			Schema:    schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}}},
		},
	}
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(FeedWorkflow, workflowRegisterOptions())
	env.RegisterActivity(acts)
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

func happyPath(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).
		Return(activities.PutResult{Read: 10, Rejected: 1, Put: 9, QuarantineKey: "q/k"}, nil).Once()
	env.OnActivity(acts.AwaitDelivery, mock.Anything, mock.Anything).
		Return(activities.DeliveryResult{Delivered: 9, Duplicates: 2, ManifestKey: "m/k"}, nil).Once()
	env.OnActivity(acts.ConfirmIngestion, mock.Anything, mock.Anything).
		Return(activities.ConfirmResult{Loaded: 9, Strategy: "load_history"}, nil).Once()
}

func TestFeedWorkflowLocalReconciles(t *testing.T) {
	env := newEnv(t)
	happyPath(env)
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.MatchedBy(func(in activities.ConvertInput) bool {
		return in.ManifestKey == "m/k" && in.Expected == 9 && in.Lines == 10 && in.FeedID == testInput("").Ref.ID()
	})).Return(activities.ConvertResult{Rows: 9, ParquetKey: "p/k"}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res FeedResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := Counts{Read: 10, Rejected: 1, Put: 9, Delivered: 9, Converted: 9, Loaded: 9}
	if res.Counts != want || res.ParquetKey != "p/k" || res.QuarantineKey != "q/k" || res.ManifestKey != "m/k" || res.Duplicates != 2 {
		t.Errorf("result %+v", res)
	}
	for _, st := range []string{StagePut, StageDelivery, StageConvert, StageConfirm} {
		if _, ok := res.Durations[st]; !ok {
			t.Errorf("no duration for stage %s", st)
		}
	}
}

func TestFeedWorkflowGlueUsesOneRunAndReportsIt(t *testing.T) {
	env := newEnv(t)
	happyPath(env)
	env.OnActivity(acts.StartGlueRun, mock.Anything, mock.Anything).After(time.Second).Return(activities.GlueRun{JobName: "job", RunID: "jr_1"}, nil).Once()
	env.OnActivity(acts.AwaitGlueRun, mock.Anything, mock.Anything, activities.GlueRun{JobName: "job", RunID: "jr_1"}).
		Return(activities.ConvertResult{Rows: 9, ParquetKey: "p/k"}, nil).Once()
	var during Progress
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ProgressQuery)
		if err != nil {
			t.Error(err)
			return
		}
		_ = v.Get(&during)
	}, 500*time.Millisecond)
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertGlue))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res FeedResult
	_ = env.GetWorkflowResult(&res)
	if res.GlueRunID != "jr_1" {
		t.Errorf("glue run id %q", res.GlueRunID)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var prog Progress
	if err := v.Get(&prog); err != nil {
		t.Fatal(err)
	}
	if prog.Stage != StageDone || prog.GlueRunID != "jr_1" || prog.Counts.Loaded != 9 {
		t.Errorf("final progress %+v", prog)
	}
	if during.Stage != StageConvert || during.Counts.Put != 9 || during.Counts.Loaded != 0 {
		t.Errorf("progress during Convert = %+v", during)
	}
}

func TestFeedWorkflowRetriesARetryableFailure(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).
		Return(activities.PutResult{}, errors.New("ProvisionedThroughputExceededException")).Once()
	happyPath(env)
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).Return(activities.ConvertResult{Rows: 9, ParquetKey: "p/k"}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("a throttled put should be retried: %v", err)
	}
}

func TestFeedWorkflowDoesNotRetryNonRetryableErrors(t *testing.T) {
	for _, typ := range activities.NonRetryable {
		t.Run(typ, func(t *testing.T) {
			env := newEnv(t)
			env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 3, Put: 3}, nil).Once()
			env.OnActivity(acts.AwaitDelivery, mock.Anything, mock.Anything).
				Return(activities.DeliveryResult{}, temporal.NewNonRetryableApplicationError("it broke", typ, nil)).Once()
			env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
			err := env.GetWorkflowError()
			if ErrorType(err) != typ {
				t.Errorf("error %v has type %q, want %q", err, ErrorType(err), typ)
			}
		})
	}
}

func TestFeedWorkflowRejectThresholdReportsCountsAndLines(t *testing.T) {
	env := newEnv(t)
	details := activities.PutResult{Read: 100, Rejected: 10, Put: 90, QuarantineKey: "q/k", FirstBad: []activities.BadLine{{Line: 10, Reason: "invalid JSON"}}}
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).
		Return(activities.PutResult{}, temporal.NewNonRetryableApplicationError("too many", activities.ErrRejectThreshold, nil, details)).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	if ErrorType(env.GetWorkflowError()) != activities.ErrRejectThreshold {
		t.Fatalf("error %v", env.GetWorkflowError())
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var prog Progress
	_ = v.Get(&prog)
	if prog.Stage != StageFailed || prog.Counts.Rejected != 10 || len(prog.FirstBad) != 1 || prog.FirstBad[0].Line != 10 || prog.LastError == "" {
		t.Errorf("progress %+v", prog)
	}
}

func TestFeedWorkflowStageTimeout(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 3, Put: 3}, nil).Once()
	env.OnActivity(acts.AwaitDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryResult{Delivered: 3, ManifestKey: "m"}, nil).Once()
	in := testInput(pipeline.ConvertLocal)
	in.Pipeline.Deadlines.Convert = pipeline.Duration(2 * time.Second)
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).
		Return(activities.ConvertResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil))
	env.ExecuteWorkflow(FeedWorkflowName, in)
	err := env.GetWorkflowError()
	if ErrorType(err) != "StageTimeout" {
		t.Errorf("error %v (type %q), want StageTimeout", err, ErrorType(err))
	}
}

func TestFeedWorkflowEmptyFeedSkipsLaterStages(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
}

func TestFeedWorkflowAllRejectedUnderThresholdReconciles(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 2, Rejected: 2}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	var res FeedResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Counts.Read != 2 || res.Counts.Rejected != 2 {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestFeedWorkflowRefusesToReportAnUnreconciledLoad(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 10, Put: 10}, nil).Once()
	env.OnActivity(acts.AwaitDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryResult{Delivered: 10, ManifestKey: "m"}, nil).Once()
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).Return(activities.ConvertResult{Rows: 10, ParquetKey: "p"}, nil).Once()
	env.OnActivity(acts.ConfirmIngestion, mock.Anything, mock.Anything).Return(activities.ConfirmResult{Loaded: 9}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	if ErrorType(env.GetWorkflowError()) != "NotReconciled" {
		t.Fatalf("error %v, want NotReconciled", env.GetWorkflowError())
	}
}

func TestFeedWorkflowRejectsARefWithoutVersion(t *testing.T) {
	env := newEnv(t)
	in := testInput(pipeline.ConvertLocal)
	in.Ref.ETag = ""
	env.ExecuteWorkflow(FeedWorkflowName, in)
	if ErrorType(env.GetWorkflowError()) != activities.ErrBadInput {
		t.Fatalf("error %v, want BadInput", env.GetWorkflowError())
	}
}
