package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/provision"
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

// A Glue-mode feed whose job run fails ends with Glue's own error message
// and the command that runs Convert again, and nothing is loaded. Once the
// job's script is fixed, that command (feedpipe reset) starts a new job run
// and the feed lands.
func TestFeedGlueJobFailureEndsWithGluesError(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	c := clients()
	job := fmt.Sprintf("feedpipe-broken-%d", time.Now().UnixNano())
	scriptKey := "_glue/" + job + ".py"
	putObject(t, ctx, stack.Names.StagingBucket, scriptKey,
		[]byte("import sys\nsys.exit('disk quota exceeded while writing parquet')\n"))
	if _, err := c.Glue.CreateJob(ctx, &glue.CreateJobInput{Name: &job, Role: aws.String(stack.AWS.GlueRoleARN),
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
	command := "feedpipe reset -workflow-id '" + stRes.WorkflowID + "'"
	if !strings.Contains(err.Error(), command) {
		t.Fatalf("error = %v, want it to name %q", err, command)
	}

	// Fix the job (its script becomes the shipped one) and reset the run.
	if _, err := c.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &stack.Names.StagingBucket, Key: &scriptKey,
		CopySource: aws.String(stack.Names.StagingBucket + "/" + stack.Names.GlueScriptKey)}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, buildCmd(t, ctx, "feedpipe"), "reset", "-workflow-id", stRes.WorkflowID)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+stack.TemporalAddress, "TEMPORAL_NAMESPACE="+stack.TemporalNamespace)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "to Convert") {
		t.Fatalf("feedpipe reset: %v\n%s", err, out)
	}
	if err := tc.GetWorkflow(ctx, stRes.WorkflowID, "").Get(ctx, &res); err != nil {
		t.Fatalf("the reset run failed: %v", err)
	}
	if res.GlueRunID == prog.GlueRunID || res.Counts.Loaded != 30 || len(loadedRows(t, ctx, prog.FeedID)) != 30 {
		t.Errorf("after the reset: Glue run %s (failed one %s), %d loaded, %d rows; want a new run and 30 rows",
			res.GlueRunID, prog.GlueRunID, res.Counts.Loaded, len(loadedRows(t, ctx, prog.FeedID)))
	}
}

// MiniStack reads a Glue job's Timeout in seconds (AWS: minutes): the local
// stack deploys the template with MiniStack's longest, since 30 killed
// healthy runs after 30 s on a busy machine.
func TestGlueJobTimeoutFitsTheEmulatorsUnit(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	name := stack.Names.GlueJob
	job, err := clients().Glue.GetJob(ctx, &glue.GetJobInput{JobName: &name})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(job.Job.Timeout); got != provision.LocalGlueTimeout {
		t.Fatalf("Glue job %s has Timeout %d, want %d", name, got, provision.LocalGlueTimeout)
	}
}

// A firehose-mode feed: MiniStack's Firehose converts each record to Parquet
// with the Glue table's schema (record format conversion), and the feed
// lands like a local-mode one.
func TestFeedFirehoseModeLands(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	body, st := generate(t, feedgen.Options{Records: 250, BadEvery: 125, Seed: 11})
	ref := upload(t, ctx, fmt.Sprintf("customers-parquet/ok-%d.ndjson", time.Now().UnixNano()), body)
	res, err := waitRun(t, ctx, ref)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if res.Counts.Loaded != int64(st.Good) || res.Counts.Rejected != int64(st.Bad) {
		t.Errorf("counts %+v, want loaded %d rejected %d", res.Counts, st.Good, st.Bad)
	}
	// What Firehose staged is Parquet, not the records' JSON.
	out, err := clients().S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(stack.Names.StagingBucket), Prefix: aws.String("parquet/feed=" + ref.ID() + "/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) == 0 {
		t.Fatal("no staged objects under the feed's Parquet staging prefix")
	}
	for _, o := range out.Contents {
		if !strings.HasSuffix(aws.ToString(o.Key), ".parquet") {
			t.Fatalf("staged object %s is not Parquet", aws.ToString(o.Key))
		}
	}
	checkValues(t, body, loadedRows(t, ctx, ref.ID()))
}
