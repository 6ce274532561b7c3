package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/parquet-go/parquet-go"

	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/s3event"
)

func clients() provision.AWSClients { return provision.NewAWSClients(stack.AWSConfig(), true) }

// testCtx is the test's context with its time limit; on the container stack
// it skips the tests that need the process stack (onStack).
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	onStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func putObject(t *testing.T, ctx context.Context, bucket, key string, body []byte) *s3.PutObjectOutput {
	t.Helper()
	out, err := clients().S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
	return out
}

func getObject(t *testing.T, ctx context.Context, bucket, key string, rng string) []byte {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	out, err := clients().S3.GetObject(ctx, in)
	if err != nil {
		t.Fatalf("get s3://%s/%s %s: %v", bucket, key, rng, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// S3: put, get, list by prefix, and ranged get (PutToKinesis resumes a feed
// from a byte offset with a ranged GetObject).
func TestCompatS3PutGetListRange(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c := clients()
	prefix := fmt.Sprintf("compat-s3-%d/", time.Now().UnixNano())
	// The quarantine bucket sends no events, so this test starts no feed.
	bucket := stack.Names.QuarantineBucket
	body := []byte("0123456789abcdefghij")
	put := putObject(t, ctx, bucket, prefix+"a.ndjson", body)
	putObject(t, ctx, bucket, prefix+"b.ndjson", []byte("x"))
	if aws.ToString(put.ETag) == "" {
		t.Error("PutObject returned no ETag; the workflow id is built from it")
	}

	if got := getObject(t, ctx, bucket, prefix+"a.ndjson", ""); !bytes.Equal(got, body) {
		t.Errorf("get = %q, want %q", got, body)
	}
	if got := getObject(t, ctx, bucket, prefix+"a.ndjson", "bytes=10-"); string(got) != "abcdefghij" {
		t.Errorf("ranged get bytes=10- = %q, want %q", got, "abcdefghij")
	}
	if got := getObject(t, ctx, bucket, prefix+"a.ndjson", "bytes=2-4"); string(got) != "234" {
		t.Errorf("ranged get bytes=2-4 = %q, want %q", got, "234")
	}

	list, err := c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if strings.Join(keys, ",") != prefix+"a.ndjson,"+prefix+"b.ndjson" {
		t.Errorf("list %s = %v", prefix, keys)
	}
	head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(prefix + "a.ndjson")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(body)) || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
		t.Errorf("head: length %d etag %s, want %d %s", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), len(body), aws.ToString(put.ETag))
	}
}

// receiveObjectCreated waits for the event naming key on queueURL, deleting
// the messages it reads.
func receiveObjectCreated(t *testing.T, ctx context.Context, queueURL, key string) (s3event.Object, string) {
	t.Helper()
	c := clients()
	for ctx.Err() == nil {
		out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("receive from %s: %v", queueURL, err)
		}
		for _, m := range out.Messages {
			objs, err := s3event.Parse(aws.ToString(m.Body))
			if err != nil {
				t.Logf("message %s not an Object Created event: %v", aws.ToString(m.MessageId), err)
				continue
			}
			for _, o := range objs {
				if o.Key == key {
					_, _ = c.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queueURL, ReceiptHandle: m.ReceiptHandle})
					return o, aws.ToString(m.Body)
				}
			}
		}
	}
	t.Fatalf("no Object Created event for %s on %s", key, queueURL)
	return s3event.Object{}, ""
}

// S3 → EventBridge rule → SQS: an upload to a bucket provisioned like the
// source bucket arrives on its queue as an EventBridge "Object Created"
// envelope naming the bucket, key, size and ETag (the starter's input). The
// test has a bucket and queue of its own, so the feed listener does not
// compete for its event.
func TestCompatObjectCreatedEventReachesSQS(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	n := time.Now().UnixNano()
	bucket := fmt.Sprintf("compat-events-%d", n)
	c := clients()
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	queueURL, err := provision.ObjectCreatedQueue(ctx, c, bucket, fmt.Sprintf("compat-events-%d", n))
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("in/%d/feed one.ndjson", n)
	body := []byte(`{"id":1}` + "\n")
	put := putObject(t, ctx, bucket, key, body)

	obj, raw := receiveObjectCreated(t, ctx, queueURL, key)
	var env map[string]any
	if err := json.Unmarshal([]byte(raw), &env); err != nil || env["detail-type"] != "Object Created" || env["source"] != "aws.s3" {
		t.Errorf("message is not an EventBridge Object Created envelope: %s", raw)
	}
	want := s3event.Object{Bucket: bucket, Key: key, Size: int64(len(body)), ETag: strings.Trim(aws.ToString(put.ETag), `"`)}
	if obj.Bucket != want.Bucket || obj.Key != want.Key || obj.Size != want.Size || obj.ETag != want.ETag {
		t.Errorf("event object = %+v, want %+v", obj, want)
	}
}

// Kinesis: PutRecords into the 2-shard stream and GetRecords back from every
// shard, the data byte for byte.
func TestCompatKinesisPutGetRecords(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c := clients().Kinesis
	stream := fmt.Sprintf("compat-kinesis-%d", time.Now().UnixNano())
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if err := kinesis.NewStreamExistsWaiter(c).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: &stream}, time.Minute); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	var entries []kintypes.PutRecordsRequestEntry
	for i := range 50 {
		data := fmt.Sprintf(`{"_line":%d,"v":"r%d"}`+"\n", i+1, i)
		want[data] = true
		entries = append(entries, kintypes.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(fmt.Sprint(i))})
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != len(entries) {
		t.Fatalf("PutRecords: %d failed, %d results for %d entries", aws.ToInt32(out.FailedRecordCount), len(out.Records), len(entries))
	}
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards.Shards) != 2 {
		t.Errorf("stream has %d shards, want 2", len(shards.Shards))
	}
	got := map[string]bool{}
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: &stream, ShardId: sh.ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1000)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs.Records {
			got[string(r.Data)] = true
		}
	}
	if len(got) != len(want) {
		t.Errorf("GetRecords returned %d distinct records, want %d", len(got), len(want))
	}
	for d := range want {
		if !got[d] {
			t.Errorf("record %q not returned", d)
		}
	}
}

// stagedWith lists the staging objects under the prefix whose body contains
// marker, with their bodies.
func stagedWith(t *testing.T, ctx context.Context, prefix, marker string) map[string]string {
	t.Helper()
	c := clients().S3
	found := map[string]string{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &stack.Names.StagingBucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			b := getObject(t, ctx, stack.Names.StagingBucket, aws.ToString(o.Key), "")
			if bytes.Contains(b, []byte(marker)) {
				found[aws.ToString(o.Key)] = string(b)
			}
		}
	}
	return found
}

// Kinesis → Firehose → S3: records put to the provisioned stream are
// delivered by the delivery stream to the staging bucket, each feed's under
// its own prefix (dynamic partitioning on _feed_id), each record's bytes
// intact (AwaitDelivery counts them there).
func TestCompatFirehoseDeliversKinesisRecords(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	marker := fmt.Sprintf("fh-%d", time.Now().UnixNano())
	other := marker + "-other"
	var entries []kintypes.PutRecordsRequestEntry
	want := map[string]bool{}
	for i := range 3 {
		data := fmt.Sprintf(`{"_feed_id":%q,"_line":%d}`+"\n", marker, i+1)
		want[data] = true
		entries = append(entries, kintypes.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(fmt.Sprint(i))})
		// Another feed's record, in the same batch: it must land beside, not among, ours.
		entries = append(entries, kintypes.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf(`{"_feed_id":%q,"_line":%d}`+"\n", other, i+1)), PartitionKey: aws.String(fmt.Sprint(i))})
	}
	prefix := stack.Names.StagingPrefix + "feed=" + marker + "/"
	if _, err := clients().Kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stack.Names.Stream, Records: entries}); err != nil {
		t.Fatal(err)
	}
	var staged map[string]string
	for ctx.Err() == nil {
		staged = stagedWith(t, ctx, prefix, marker)
		n := 0
		for _, body := range staged {
			n += strings.Count(body, marker)
		}
		if n >= len(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := map[string]bool{}
	for key, body := range staged {
		if rest := strings.TrimPrefix(key, prefix); len(rest) < len("2006/01/02/15/x") || rest[4] != '/' {
			t.Errorf("staged key %s is not under %sYYYY/MM/DD/HH/", key, prefix)
		}
		for _, line := range strings.SplitAfter(body, "\n") {
			if strings.Contains(line, other) {
				t.Errorf("staged object %s of feed %s holds another feed's record %q", key, marker, line)
			}
			if line != "" {
				got[line] = true
			}
		}
	}
	for d := range want {
		if !got[d] {
			t.Errorf("record %q not delivered to s3://%s/%s (found %d objects)", d, stack.Names.StagingBucket, prefix, len(staged))
		}
	}
	// Real Firehose concatenates buffered records into one object; MiniStack
	// writes one object per record. Both are fine for us because every record
	// ends in "\n"; log which one this emulator did, as evidence of the gap.
	t.Logf("Firehose delivered %d records in %d staging objects (buffering hints honoured: %v)", len(want), len(staged), len(staged) < len(want))
	ds, err := clients().Firehose.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: &stack.Names.DeliveryStream})
	if err != nil {
		t.Fatal(err)
	}
	if st := ds.DeliveryStreamDescription.DeliveryStreamStatus; st != "ACTIVE" {
		t.Errorf("delivery stream status %s, want ACTIVE", st)
	}
}

type stagedRecord struct {
	FeedID string `json:"_feed_id" parquet:"_feed_id"`
	Line   int64  `json:"_line" parquet:"_line"`
	ID     int64  `json:"id" parquet:"id"`
	Name   string `json:"name" parquet:"name"`
}

func startGlueRun(t *testing.T, ctx context.Context, args map[string]string) string {
	t.Helper()
	out, err := clients().Glue.StartJobRun(ctx, &glue.StartJobRunInput{JobName: &stack.Names.GlueJob, Arguments: args})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.JobRunId)
}

func waitGlueRun(t *testing.T, ctx context.Context, runID string) *gluetypes.JobRun {
	t.Helper()
	for ctx.Err() == nil {
		out, err := clients().Glue.GetJobRun(ctx, &glue.GetJobRunInput{JobName: &stack.Names.GlueJob, RunId: &runID})
		if err != nil {
			t.Fatal(err)
		}
		switch out.JobRun.JobRunState {
		case gluetypes.JobRunStateSucceeded, gluetypes.JobRunStateFailed, gluetypes.JobRunStateTimeout,
			gluetypes.JobRunStateStopped, gluetypes.JobRunStateError:
			return out.JobRun
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Glue run %s did not finish", runID)
	return nil
}

// Glue: the provisioned Python-shell job really runs our conversion script:
// it lists a feed's staging prefix, drops the duplicate line and the other
// feed's record, and writes Parquet that reads back with the right rows.
func TestCompatGlueJobRunSucceeds(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	feed := fmt.Sprintf("glue-ok-%d", time.Now().UnixNano())
	prefix := "compat-glue/" + feed + "/"
	putObject(t, ctx, stack.Names.StagingBucket, prefix+"1", []byte(fmt.Sprintf(
		`{"_feed_id":%q,"_line":2,"id":20,"name":"b"}`+"\n"+`{"_feed_id":%q,"_line":1,"id":10,"name":"a"}`+"\n", feed, feed)))
	putObject(t, ctx, stack.Names.StagingBucket, prefix+"2", []byte(fmt.Sprintf(
		`{"_feed_id":%q,"_line":2,"id":20,"name":"b"}`+"\n"+`{"_feed_id":"other","_line":3,"id":30,"name":"c"}`+"\n", feed)))
	target := "compat-glue/" + feed + ".parquet"

	run := waitGlueRun(t, ctx, startGlueRun(t, ctx, map[string]string{
		"--STAGING": "s3://" + stack.Names.StagingBucket + "/" + prefix,
		"--LINES":   "3",
		"--TARGET":  "s3://" + stack.Names.DestBucket + "/" + target,
		"--FEED_ID": feed,
	}))
	if run.JobRunState != gluetypes.JobRunStateSucceeded {
		t.Fatalf("Glue run state %s, error %q; want SUCCEEDED", run.JobRunState, aws.ToString(run.ErrorMessage))
	}
	pq := getObject(t, ctx, stack.Names.DestBucket, target, "")
	rows, err := parquet.Read[stagedRecord](bytes.NewReader(pq), int64(len(pq)))
	if err != nil {
		t.Fatalf("read Glue output as Parquet: %v", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Line < rows[j].Line }) // the job writes rows in the order it reads them
	want := []stagedRecord{{feed, 1, 10, "a"}, {feed, 2, 20, "b"}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("Glue output rows = %v, want %v", rows, want)
	}
}

// Glue: a run whose script fails ends FAILED with the script's message as
// the run's ErrorMessage (Convert reports it to the operator).
func TestCompatGlueJobRunFailsWithMessage(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	feed := fmt.Sprintf("glue-bad-%d", time.Now().UnixNano())
	key := "compat-glue/" + feed + "/1"
	putObject(t, ctx, stack.Names.StagingBucket, key, []byte("{not json\n"))

	run := waitGlueRun(t, ctx, startGlueRun(t, ctx, map[string]string{
		"--STAGING": "s3://" + stack.Names.StagingBucket + "/compat-glue/" + feed + "/",
		"--LINES":   "1",
		"--TARGET":  "s3://" + stack.Names.DestBucket + "/compat-glue/" + feed + ".parquet",
		"--FEED_ID": feed,
	}))
	if run.JobRunState != gluetypes.JobRunStateFailed {
		t.Fatalf("Glue run state %s, want FAILED", run.JobRunState)
	}
	msg := aws.ToString(run.ErrorMessage)
	if !strings.Contains(msg, key+" line 1: not JSON") {
		t.Errorf("ErrorMessage = %q, want it to name %s line 1", msg, key)
	}
	runs, err := clients().Glue.GetJobRuns(context.Background(), &glue.GetJobRunsInput{JobName: &stack.Names.GlueJob})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range runs.JobRuns {
		found = found || aws.ToString(r.Id) == aws.ToString(run.Id)
	}
	if !found {
		t.Errorf("GetJobRuns does not list run %s; Convert finds an existing run there on retry", aws.ToString(run.Id))
	}
}
