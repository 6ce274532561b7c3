package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// A Glue-mode feed: the Glue job really converts it (MiniStack runs the
// Python-shell script), and it lands like a local-mode one.
func TestFeedGlueModeLands(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	body, st := generate(t, feedgen.Options{Records: 250, BadEvery: 125, Seed: 7})
	ref := upload(t, ctx, fmt.Sprintf("customers-glue/ok-%d.ndjson", time.Now().UnixNano()), body)
	res, err := waitRun(t, ctx, ref)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if res.GlueRunID == "" || fmt.Sprint(res.ParquetKeys) != "[customers-glue/"+ref.ID()+"/part-00001.parquet]" {
		t.Errorf("glue run %q, parquet %q", res.GlueRunID, res.ParquetKeys)
	}
	if res.Counts.Loaded != int64(st.Good) || res.Counts.Rejected != int64(st.Bad) {
		t.Errorf("counts %+v, want loaded %d rejected %d", res.Counts, st.Good, st.Bad)
	}
	checkValues(t, body, loadedRows(t, ctx, ref.ID()))
	recordHistory(t, ref.WorkflowID(), "success-glue")
}

// A Glue-mode feed whose job run fails ends with Glue's own error message,
// and nothing is loaded.
func TestFeedGlueJobFailureEndsWithGluesError(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	c := clients()
	job := fmt.Sprintf("feedpipe-broken-%d", time.Now().UnixNano())
	scriptKey := "_glue/" + job + ".py"
	putObject(t, ctx, stack.Names.StagingBucket, scriptKey,
		[]byte("import sys\nsys.exit('disk quota exceeded while writing parquet')\n"))
	if _, err := c.Glue.CreateJob(ctx, &glue.CreateJobInput{Name: &job, Role: aws.String(stack.Names.GlueRoleARN),
		Command: &gluetypes.JobCommand{Name: aws.String("pythonshell"), ScriptLocation: aws.String("s3://" + stack.Names.StagingBucket + "/" + scriptKey)}}); err != nil {
		t.Fatal(err)
	}
	// A pipeline like customers-glue but on the broken job, started directly:
	// the event path is the same as in the other tests.
	p, err := config.Get("customers-glue")
	if err != nil {
		t.Fatal(err)
	}
	broken := *p
	// Its feeds come from the quarantine bucket, which sends no events.
	broken.Name, broken.SourceBucket, broken.SourcePrefix, broken.GlueJob = "customers-broken", stack.Names.QuarantineBucket, "customers-broken/", job
	cfg := &pipeline.Config{TaskQueue: config.TaskQueue, Pipelines: []pipeline.Pipeline{broken}}
	s := &starter.Starter{Temporal: tc, S3: c.S3, Config: cfg, Logger: starts.Logger}

	body, _ := generate(t, feedgen.Options{Records: 30, Seed: 8})
	key := fmt.Sprintf("customers-broken/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)
	stRes, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.FeedResult
	err = tc.GetWorkflow(ctx, stRes.WorkflowID, "").Get(ctx, &res)
	if err == nil {
		t.Fatal("run succeeded with a failing Glue job")
	}
	if workflows.ErrorType(err) != activities.ErrGlueRun || !strings.Contains(err.Error(), "disk quota exceeded while writing parquet") {
		t.Errorf("error = %v (type %s), want GlueRunFailed with Glue's message", err, workflows.ErrorType(err))
	}
	if res.GlueRunID == "" && !strings.Contains(err.Error(), "Glue run ") {
		t.Errorf("the failure does not name the Glue run: %v", err)
	}
	v, qerr := tc.QueryWorkflow(context.Background(), stRes.WorkflowID, "", workflows.ProgressQuery)
	if qerr != nil {
		t.Fatal(qerr)
	}
	var prog workflows.Progress
	if err := v.Get(&prog); err != nil {
		t.Fatal(err)
	}
	if prog.GlueRunID == "" || prog.Stage != workflows.StageFailed {
		t.Errorf("progress %+v, want the Glue run id and stage Failed", prog)
	}
	if n := len(loadedRows(t, ctx, prog.FeedID)); n != 0 {
		t.Errorf("%d rows loaded, want none", n)
	}
}
