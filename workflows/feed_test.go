package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
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
	env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).
		Return(activities.DeliveryState{Delivered: 9, Duplicates: 2, Reads: 11}, nil).Once()
	env.OnActivity(acts.CheckIngestion, mock.Anything, mock.Anything).
		Return(activities.ConfirmStatus{Done: true, Status: "LOADED", Result: activities.ConfirmResult{Loaded: 9, Strategy: "load_history"}}, nil).Once()
}

func TestFeedWorkflowLocalReconciles(t *testing.T) {
	env := newEnv(t)
	happyPath(env)
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.MatchedBy(func(in activities.ConvertInput) bool {
		return in.Expected == 9 && in.Lines == 10 && in.FeedID == testInput("").Ref.ID()
	})).Return(activities.ConvertResult{Rows: 9, Files: []activities.ParquetFile{{Key: "p/k", Rows: 9}}}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res FeedResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := Counts{Read: 10, Rejected: 1, Put: 9, Delivered: 9, Converted: 9, Loaded: 9}
	if res.Counts != want || fmt.Sprint(res.ParquetKeys) != "[p/k]" || res.QuarantineKey != "q/k" || res.StagingPrefix != "feed="+res.FeedID+"/" || res.Duplicates != 2 || res.StagingReads != 11 {
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
	env.OnActivity(acts.CheckGlueRun, mock.Anything, mock.Anything, activities.GlueRun{JobName: "job", RunID: "jr_1"}).
		Return(activities.GlueStatus{State: "RUNNING"}, nil).Twice()
	env.OnActivity(acts.CheckGlueRun, mock.Anything, mock.Anything, activities.GlueRun{JobName: "job", RunID: "jr_1"}).
		Return(activities.GlueStatus{State: "SUCCEEDED", Done: true, Result: activities.ConvertResult{Rows: 9, Files: []activities.ParquetFile{{Key: "p/k", Rows: 9}}}}, nil).Once()
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
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).Return(activities.ConvertResult{Rows: 9, Files: []activities.ParquetFile{{Key: "p/k", Rows: 9}}}, nil).Once()
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
			env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).
				Return(activities.DeliveryState{}, temporal.NewNonRetryableApplicationError("it broke", typ, nil)).Once()
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
	env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryState{Delivered: 3}, nil).Once()
	in := testInput(pipeline.ConvertLocal)
	in.Pipeline.Deadlines.Convert = pipeline.Duration(2 * time.Second)
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).
		Return(activities.ConvertResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil))
	// A key with a quote: the reset command quotes the id for a shell.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "feed/src/customers/it's.ndjson@e1"})
	env.ExecuteWorkflow(FeedWorkflowName, in)
	err := env.GetWorkflowError()
	if ErrorType(err) != "StageTimeout" {
		t.Errorf("error %v (type %q), want StageTimeout", err, ErrorType(err))
	}
	if want := `run the stage again: feedpipe reset -workflow-id 'feed/src/customers/it'\''s.ndjson@e1'`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to end with %q", err, want)
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
	env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryState{Delivered: 10}, nil).Once()
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).Return(activities.ConvertResult{Rows: 10, Files: []activities.ParquetFile{{Key: "p", Rows: 10}}}, nil).Once()
	env.OnActivity(acts.CheckIngestion, mock.Anything, mock.Anything).Return(activities.ConfirmStatus{Done: true, Result: activities.ConfirmResult{Loaded: 9}}, nil).Once()
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

// Delivery is looked at in passes with timers between them: each pass starts
// from the state the previous one returned, and the stage ends when every
// record is there.
func TestFeedWorkflowDeliveryPassesCarryTheirState(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 10, Put: 10}, nil).Once()
	var passes []activities.DeliveryState
	env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeliveryInput) (activities.DeliveryState, error) {
			passes = append(passes, in.State)
			st := in.State
			st.Delivered, st.Reads, st.Passes, st.Checkpoint = st.Delivered+4, st.Reads+4, st.Passes+1, fmt.Sprintf("cp-%d", st.Passes+1)
			return st, nil
		}).Times(3)
	var conv activities.ConvertInput
	env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ConvertInput) (activities.ConvertResult, error) {
			conv = in
			return activities.ConvertResult{Rows: 10, Files: []activities.ParquetFile{{Key: "p", Rows: 10}}, Reads: 12}, nil
		}).Once()
	env.OnActivity(acts.CheckIngestion, mock.Anything, mock.Anything).Return(activities.ConfirmStatus{Status: ""}, nil).Once()
	env.OnActivity(acts.CheckIngestion, mock.Anything, mock.Anything).Return(activities.ConfirmStatus{Done: true, Result: activities.ConfirmResult{Loaded: 10}}, nil).Once()
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	var res FeedResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(passes) != 3 || passes[0].Checkpoint != "" || passes[1].Checkpoint != "cp-1" || passes[2].Delivered != 8 {
		t.Errorf("passes started from %+v", passes)
	}
	// Convert reads the bundles the last pass's checkpoint lists.
	if conv.Delivered != "cp-3" || conv.Expected != 12 {
		t.Errorf("Convert started with %+v, want the last pass's checkpoint cp-3", conv)
	}
	if res.Counts.Delivered != 12 || res.StagingReads != 24 {
		t.Errorf("result %+v, want delivered 12 and 12+12 staging reads", res)
	}
	// Waiting was timers: 1 s after the first pass, 2 s after the second, then 1 s for Snowflake.
	if d := res.Durations[StageDelivery]; d < 3*time.Second || d > 4*time.Second {
		t.Errorf("delivery took %s of workflow time, want the 1 s + 2 s timers", d)
	}
}

// A waiting stage that runs out of time fails with what it saw, and the
// failure carries the run's counts so far.
func TestFeedWorkflowDeliveryDeadlineCarriesCounts(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{Read: 10, Rejected: 1, Put: 9, Resends: 3}, nil).Once()
	env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryState{Delivered: 7, Reads: 7}, nil)
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	err := env.GetWorkflowError()
	if ErrorType(err) != activities.ErrDelivery || !strings.Contains(err.Error(), "delivered 7 of 9 records") || !strings.Contains(err.Error(), "2 are missing") {
		t.Fatalf("error %v, want DeliveryIncomplete naming 7 of 9", err)
	}
	if want := "run AwaitDelivery again: feedpipe reset -workflow-id 'default-test-workflow-id'"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to say %q", err, want)
	}
	res, ok := Details(err)
	want := Counts{Read: 10, Rejected: 1, Put: 9, Delivered: 7}
	if !ok || res.Counts != want || res.Resends != 3 || res.FailedStage != StageDelivery || res.StagingReads != 7 {
		t.Errorf("failure details %+v (%v), want counts %+v", res, ok, want)
	}
}

// A put killed by its heartbeat timeout on its last attempt still reports
// the lines its last checkpoint covered.
func TestFeedWorkflowTimedOutPutReportsItsCheckpoint(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{},
		temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil, activities.PutProgress{Line: 500, Read: 500, Put: 498, Rejected: 2}))
	env.ExecuteWorkflow(FeedWorkflowName, testInput(pipeline.ConvertLocal))
	err := env.GetWorkflowError()
	res, ok := Details(err)
	if ErrorType(err) != "StageTimeout" || !ok || res.Counts.Read != 500 || res.Counts.Put != 498 {
		t.Errorf("error %v, details %+v", err, res)
	}
}

// A replace pipeline, once the upload is confirmed, records it and removes
// the key's earlier uploads' rows, with the source's LastModified that the
// put read; the result says how many rows went, and names a newer upload
// that had been loaded first. An empty upload replaces too; an append
// pipeline, or a run whose input predates the setting, does neither.
func TestFeedWorkflowReplacesEarlierUploadsOfTheKey(t *testing.T) {
	modified := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, mode string
		empty      bool
		current    string
		supersede  bool
	}{
		{"replace", pipeline.NewVersionReplace, false, "", true},
		{"replace, a newer upload loaded first", pipeline.NewVersionReplace, false, "newer", true},
		{"replace, empty upload", pipeline.NewVersionReplace, true, "", true},
		{"append", pipeline.NewVersionAppend, false, "", false},
		{"input before the setting", "", false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			in := testInput(pipeline.ConvertLocal)
			in.Pipeline.OnNewVersion = tc.mode
			// The upload is recorded before the load is checked (an append
			// pipeline, or an input from before the setting, never records:
			// the real RecordUpload, with no Snowflake, would fail).
			var recorded, recordedFirst bool
			if tc.empty {
				env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).Return(activities.PutResult{SourceModified: modified}, nil).Once()
			} else {
				env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).
					Return(activities.PutResult{Read: 10, Rejected: 1, Put: 9, SourceModified: modified}, nil).Once()
				env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryState{Delivered: 9}, nil).Once()
				if tc.supersede {
					env.OnActivity(acts.RecordUpload, mock.Anything, mock.MatchedBy(func(s activities.SupersedeInput) bool {
						return s.FeedID == in.Ref.ID() && s.Ref == in.Ref && s.Modified.Equal(modified)
					})).Run(func(mock.Arguments) { recorded = true }).Return(nil).Once()
				}
				env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).
					Return(activities.ConvertResult{Rows: 9, Files: []activities.ParquetFile{{Key: "p", Rows: 9}}}, nil).Once()
				env.OnActivity(acts.CheckIngestion, mock.Anything, mock.Anything).Run(func(mock.Arguments) { recordedFirst = recorded }).
					Return(activities.ConfirmStatus{Done: true, Result: activities.ConfirmResult{Loaded: 9}}, nil).Once()
			}
			current := tc.current
			if current == "" {
				current = in.Ref.ID()
			}
			if tc.supersede {
				env.OnActivity(acts.SupersedeVersions, mock.Anything, mock.MatchedBy(func(s activities.SupersedeInput) bool {
					return s.FeedID == in.Ref.ID() && s.Ref == in.Ref && s.Modified.Equal(modified)
				})).Return(activities.SupersedeResult{Removed: 7, Current: current}, nil).Once()
			}
			env.ExecuteWorkflow(FeedWorkflowName, in)
			var res FeedResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			wantRemoved, wantBy := int64(0), ""
			if tc.supersede {
				wantRemoved = 7
				if tc.current != "" {
					wantBy = tc.current
				}
			}
			if res.ReplacedRows != wantRemoved || res.SupersededBy != wantBy {
				t.Errorf("replaced %d rows, superseded by %q; want %d and %q", res.ReplacedRows, res.SupersededBy, wantRemoved, wantBy)
			}
			if tc.supersede && !tc.empty && !recordedFirst {
				t.Error("the load was checked before the upload was recorded")
			}
		})
	}
}

// A replace run that does not reconcile, or whose put could not say the
// source's LastModified (a put by an older worker), removes nothing of the
// key's earlier uploads: the good snapshot stays.
func TestFeedWorkflowReplacesNothingWhenUnsure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loaded   int64
		modified time.Time
		wantErr  string
	}{
		{"does not reconcile", 8, time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), "NotReconciled"},
		{"no LastModified", 9, time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			in := testInput(pipeline.ConvertLocal)
			in.Pipeline.OnNewVersion = pipeline.NewVersionReplace
			env.OnActivity(acts.PutToKinesis, mock.Anything, mock.Anything).
				Return(activities.PutResult{Read: 10, Rejected: 1, Put: 9, SourceModified: tc.modified}, nil).Once()
			env.OnActivity(acts.CheckDelivery, mock.Anything, mock.Anything).Return(activities.DeliveryState{Delivered: 9}, nil).Once()
			if !tc.modified.IsZero() {
				env.OnActivity(acts.RecordUpload, mock.Anything, mock.Anything).Return(nil).Once()
			}
			env.OnActivity(acts.ConvertLocal, mock.Anything, mock.Anything).Return(activities.ConvertResult{Rows: 9, Files: []activities.ParquetFile{{Key: "p", Rows: 9}}}, nil).Once()
			env.OnActivity(acts.CheckIngestion, mock.Anything, mock.Anything).Return(activities.ConfirmStatus{Done: true, Result: activities.ConfirmResult{Loaded: tc.loaded}}, nil).Once()
			// SupersedeVersions is not mocked: the real one, with no
			// Snowflake, would fail the run.
			env.ExecuteWorkflow(FeedWorkflowName, in)
			err := env.GetWorkflowError()
			if got := ErrorType(err); got != tc.wantErr {
				t.Fatalf("error %v (type %q), want type %q", err, got, tc.wantErr)
			}
		})
	}
}
