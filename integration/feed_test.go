package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// upload puts a feed into the source bucket and returns its ref; the bucket's
// Object Created event then reaches the listener, which starts the run.
func upload(t *testing.T, ctx context.Context, key string, body []byte) feed.Ref {
	t.Helper()
	out := putObject(t, ctx, stack.Names.SourceBucket, key, body)
	return feed.Ref{Bucket: stack.Names.SourceBucket, Key: key, ETag: strings.Trim(aws.ToString(out.ETag), `"`), Size: int64(len(body))}
}

func generate(t *testing.T, o feedgen.Options) ([]byte, feedgen.Stats) {
	t.Helper()
	var b bytes.Buffer
	st, err := feedgen.Write(&b, o)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), st
}

// waitRun waits until the listener has started the run for ref and it has
// ended, and returns its result and error.
func waitRun(t *testing.T, ctx context.Context, ref feed.Ref) (workflows.FeedResult, error) {
	t.Helper()
	id := ref.WorkflowID()
	for {
		_, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no run %s was started for the upload: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var res workflows.FeedResult
	err := tc.GetWorkflow(ctx, id, "").Get(ctx, &res)
	return res, err
}

func runsOf(t *testing.T, ctx context.Context, ref feed.Ref) int {
	t.Helper()
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: stack.TemporalNamespace, Query: fmt.Sprintf("WorkflowId = %q", ref.WorkflowID())})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Executions)
}

type loadedRow struct {
	Line    int64
	ID      int64
	Name    string
	Email   *string
	Balance *float64
	Active  *bool
}

func loadedRows(t *testing.T, ctx context.Context, feedID string) map[int64]loadedRow {
	t.Helper()
	db := openSnowflake(t)
	rows, err := db.QueryContext(ctx, "SELECT _LINE, ID, NAME, EMAIL, BALANCE, ACTIVE FROM CUSTOMERS WHERE _FEED_ID = ?", feedID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]loadedRow{}
	for rows.Next() {
		var r loadedRow
		if err := rows.Scan(&r.Line, &r.ID, &r.Name, &r.Email, &r.Balance, &r.Active); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[r.Line]; dup {
			t.Errorf("feed %s line %d loaded twice", feedID, r.Line)
		}
		out[r.Line] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkValues compares every loaded row with the line it came from.
func checkValues(t *testing.T, body []byte, got map[int64]loadedRow) {
	t.Helper()
	for i, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
		n := int64(i + 1)
		var in struct {
			ID      int64    `json:"id"`
			Name    string   `json:"name"`
			Email   *string  `json:"email"`
			Balance *float64 `json:"balance"`
			Active  *bool    `json:"active"`
		}
		if json.Unmarshal(line, &in) != nil || in.ID == 0 || !bytes.HasPrefix(line, []byte("{")) {
			if _, ok := got[n]; ok {
				t.Errorf("bad line %d was loaded", n)
			}
			continue
		}
		r, ok := got[n]
		if !ok {
			t.Errorf("line %d (id %d) not loaded", n, in.ID)
			continue
		}
		same := r.ID == in.ID && r.Name == in.Name && fmt.Sprint(deref(r.Email)) == fmt.Sprint(deref(in.Email)) &&
			fmt.Sprint(deref(r.Balance)) == fmt.Sprint(deref(in.Balance)) && fmt.Sprint(deref(r.Active)) == fmt.Sprint(deref(in.Active))
		if !same {
			t.Errorf("line %d: loaded %+v (email %v balance %v active %v), input %s", n, r, deref(r.Email), deref(r.Balance), deref(r.Active), line)
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// A clean feed lands in Snowflake with every row and value intact, and the
// run's counts reconcile.
func TestFeedCleanLandsIntact(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	body, st := generate(t, feedgen.Options{Records: 300, Seed: 1})
	ref := upload(t, ctx, fmt.Sprintf("customers/clean-%d.ndjson", time.Now().UnixNano()), body)
	res, err := waitRun(t, ctx, ref)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	want := workflows.Counts{Read: 300, Put: 300, Delivered: 300, Converted: 300, Loaded: 300}
	if res.Counts != want {
		t.Errorf("counts = %+v, want %+v", res.Counts, want)
	}
	if fmt.Sprint(res.ParquetKeys) != "[customers/"+ref.ID()+"/part-00001.parquet]" || res.QuarantineKey != "" {
		t.Errorf("keys: parquet %q quarantine %q", res.ParquetKeys, res.QuarantineKey)
	}
	got := loadedRows(t, ctx, ref.ID())
	if len(got) != st.Good {
		t.Errorf("loaded %d rows, want %d", len(got), st.Good)
	}
	checkValues(t, body, got)
	// Operators find runs by the search attributes the workflow upserts.
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: stack.TemporalNamespace,
		Query: fmt.Sprintf("FeedPipeline = 'customers' AND FeedStage = 'Done' AND FeedRecordsLoaded = 300 AND FeedKey = %q", ref.Key)})
	if err != nil || len(resp.Executions) != 1 {
		t.Errorf("visibility query by search attributes found %d runs (%v), want 1", len(resp.GetExecutions()), err)
	}
	recordHistory(t, ref.WorkflowID(), "success")
}

// The same event twice starts one run; a direct start of the same version is
// a no-op too.
func TestFeedDuplicateEventStartsOneRun(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	body, _ := generate(t, feedgen.Options{Records: 20, Seed: 2})
	ref := upload(t, ctx, fmt.Sprintf("customers/dup-%d.ndjson", time.Now().UnixNano()), body)
	if _, err := waitRun(t, ctx, ref); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	// Deliver the same Object Created event again, as EventBridge may.
	envelope, _ := json.Marshal(map[string]any{"version": "0", "id": "dup", "detail-type": "Object Created", "source": "aws.s3",
		"detail": map[string]any{"bucket": map[string]any{"name": ref.Bucket}, "object": map[string]any{"key": ref.Key, "size": ref.Size, "etag": ref.ETag}}})
	sendMessage(t, ctx, string(envelope))
	st, err := starts.Start(ctx, ref)
	if err != nil || !st.Existed {
		t.Errorf("second start: %+v, %v; want Existed", st, err)
	}
	waitQueueDrained(t, ctx)
	if n := runsOf(t, ctx, ref); n != 1 {
		t.Errorf("%d runs for one feed version, want 1", n)
	}
	if n := len(loadedRows(t, ctx, ref.ID())); n != 20 {
		t.Errorf("loaded %d rows, want 20", n)
	}
}

// A new upload of the same key is a new version: a new run, its own rows.
// On the replace pipeline (customers) the first version's rows are removed
// once the second is confirmed, and the run says how many; on the append
// pipeline (customers-append) both versions' rows stay.
func TestFeedReuploadStartsNewRun(t *testing.T) {
	onStack(t)
	for _, tc := range []struct {
		prefix  string
		replace bool
	}{{"customers/", true}, {"customers-append/", false}} {
		t.Run(strings.TrimSuffix(tc.prefix, "/"), func(t *testing.T) {
			ctx := testCtx(t, 3*time.Minute)
			key := fmt.Sprintf("%sreupload-%d.ndjson", tc.prefix, time.Now().UnixNano())
			b1, _ := generate(t, feedgen.Options{Records: 10, Seed: 3})
			r1 := upload(t, ctx, key, b1)
			res1, err := waitRun(t, ctx, r1)
			if err != nil {
				t.Fatal(err)
			}
			if res1.ReplacedRows != 0 || res1.SupersededBy != "" {
				t.Errorf("first upload replaced %d rows (superseded by %q), want none", res1.ReplacedRows, res1.SupersededBy)
			}
			b2, _ := generate(t, feedgen.Options{Records: 15, Seed: 4})
			r2 := upload(t, ctx, key, b2)
			if r1.WorkflowID() == r2.WorkflowID() {
				t.Fatalf("re-upload has the same workflow id %s", r1.WorkflowID())
			}
			res, err := waitRun(t, ctx, r2)
			if err != nil {
				t.Fatal(err)
			}
			first, second := len(loadedRows(t, ctx, r1.ID())), len(loadedRows(t, ctx, r2.ID()))
			wantFirst, wantReplaced := 10, int64(0)
			if tc.replace {
				wantFirst, wantReplaced = 0, 10
			}
			if res.Counts.Loaded != 15 || second != 15 || first != wantFirst || res.ReplacedRows != wantReplaced || res.SupersededBy != "" {
				t.Errorf("second version loaded %d and replaced %d rows (superseded by %q); rows per version: %d then %d; want 15 loaded, %d replaced, %d then 15",
					res.Counts.Loaded, res.ReplacedRows, res.SupersededBy, first, second, wantReplaced, wantFirst)
			}
		})
	}
}

// Bad lines under the threshold: the good lines load, the bad ones are in the
// quarantine object with their line numbers and reasons.
func TestFeedBadLinesQuarantined(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	body, st := generate(t, feedgen.Options{Records: 400, BadEvery: 200, Seed: 5})
	ref := upload(t, ctx, fmt.Sprintf("customers/bad-%d.ndjson", time.Now().UnixNano()), body)
	res, err := waitRun(t, ctx, ref)
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if res.Counts.Read != 400 || res.Counts.Rejected != 2 || res.Counts.Loaded != 398 {
		t.Errorf("counts = %+v, want read 400 rejected 2 loaded 398", res.Counts)
	}
	q := getObject(t, ctx, stack.Names.QuarantineBucket, res.QuarantineKey, "")
	var lines []int64
	for _, l := range bytes.Split(bytes.TrimSpace(q), []byte("\n")) {
		var r struct {
			Line   int64  `json:"line"`
			Reason string `json:"reason"`
			Raw    string `json:"raw"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("quarantine line %q: %v", l, err)
		}
		if r.Reason == "" || r.Raw == "" {
			t.Errorf("quarantined line %d without reason or raw bytes: %s", r.Line, l)
		}
		lines = append(lines, r.Line)
	}
	if fmt.Sprint(lines) != fmt.Sprint([]int64{int64(st.BadLines[0]), int64(st.BadLines[1])}) {
		t.Errorf("quarantined lines %v, want %v", lines, st.BadLines)
	}
	checkValues(t, body, loadedRows(t, ctx, ref.ID()))
}

// A feed over the reject threshold fails before anything is loaded, naming
// its first bad lines.
func TestFeedOverThresholdLoadsNothing(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	body, _ := generate(t, feedgen.Options{Records: 100, BadEvery: 10, Seed: 6})
	ref := upload(t, ctx, fmt.Sprintf("customers/over-%d.ndjson", time.Now().UnixNano()), body)
	_, err := waitRun(t, ctx, ref)
	if err == nil {
		t.Fatal("run succeeded, want it to fail over the reject threshold")
	}
	if workflows.ErrorType(err) != activities.ErrRejectThreshold || !strings.Contains(err.Error(), "line 10:") || !strings.Contains(err.Error(), "rejected 10 of 100") {
		t.Errorf("error = %v (type %s), want RejectThresholdExceeded naming line 10", err, workflows.ErrorType(err))
	}
	if n := len(loadedRows(t, ctx, ref.ID())); n != 0 {
		t.Errorf("%d rows loaded, want none", n)
	}
	desc, derr := tc.DescribeWorkflowExecution(ctx, ref.WorkflowID(), "")
	if derr != nil {
		t.Fatal(derr)
	}
	if desc.WorkflowExecutionInfo.Status.String() != "Failed" {
		t.Errorf("status %s, want Failed", desc.WorkflowExecutionInfo.Status)
	}
	v, err := tc.QueryWorkflow(ctx, ref.WorkflowID(), "", workflows.ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var prog workflows.Progress
	if err := v.Get(&prog); err != nil {
		t.Fatal(err)
	}
	if prog.Stage != workflows.StageFailed || len(prog.FirstBad) == 0 || prog.FirstBad[0].Line != 10 || prog.LastError == "" {
		t.Errorf("progress = %+v, want stage Failed with line 10 first bad and the error", prog)
	}
	recordHistory(t, ref.WorkflowID(), "failed-reject-threshold")
}

func sendMessage(t *testing.T, ctx context.Context, body string) {
	t.Helper()
	if _, err := clients().SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &stack.AWS.FeedQueueURL, MessageBody: &body}); err != nil {
		t.Fatal(err)
	}
}

// waitQueueDrained waits until the listener has taken and deleted every
// message of the feed queue.
func waitQueueDrained(t *testing.T, ctx context.Context) {
	t.Helper()
	for ctx.Err() == nil {
		out, err := clients().SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &stack.AWS.FeedQueueURL,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the feed queue was not drained")
}

// Backfill starts one run per object under a prefix, and a second backfill
// of the same prefix starts none.
func TestBackfillIsIdempotent(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	p, err := config.Get("customers")
	if err != nil {
		t.Fatal(err)
	}
	bp := *p
	// Objects in the quarantine bucket, which sends no events: only the backfill starts them.
	bp.SourceBucket, bp.SourcePrefix = stack.Names.QuarantineBucket, fmt.Sprintf("backfill-%d/", time.Now().UnixNano())
	cfg := &pipeline.Config{TaskQueue: config.TaskQueue, Pipelines: []pipeline.Pipeline{bp}}
	s := &starter.Starter{Temporal: tc, S3: clients().S3, Config: cfg, Logger: starts.Logger}
	for i := range 3 {
		body, _ := generate(t, feedgen.Options{Records: 5, Seed: uint64(20 + i)})
		putObject(t, ctx, bp.SourceBucket, fmt.Sprintf("%s%d.ndjson", bp.SourcePrefix, i), body)
	}
	var progress []starter.BackfillStats
	first, err := s.Backfill(ctx, bp.SourceBucket, bp.SourcePrefix, 50, func(st starter.BackfillStats) { progress = append(progress, st) })
	if err != nil || first.Listed != 3 || first.Started != 3 || first.Existed != 0 {
		t.Fatalf("first backfill %+v, %v", first, err)
	}
	if len(progress) != 3 || progress[2].Started != 3 {
		t.Errorf("progress reports %+v", progress)
	}
	second, err := s.Backfill(ctx, bp.SourceBucket, bp.SourcePrefix, 50, nil)
	if err != nil || second.Started != 0 || second.Existed != 3 {
		t.Errorf("second backfill %+v, %v; want all 3 already started", second, err)
	}
	for i := range 3 {
		key := fmt.Sprintf("%s%d.ndjson", bp.SourcePrefix, i)
		head, err := clients().S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bp.SourceBucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		ref := feed.Ref{Bucket: bp.SourceBucket, Key: key, ETag: strings.Trim(aws.ToString(head.ETag), `"`)}
		if _, err := waitRun(t, ctx, ref); err != nil {
			t.Errorf("backfilled run %s: %v", ref.WorkflowID(), err)
		}
	}
}
