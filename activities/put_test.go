package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// memS3 is an in-memory S3 for unit tests; integration tests use MiniStack.
type memS3 struct {
	mu   sync.Mutex
	objs map[string][]byte
	meta map[string]map[string]string // user metadata, by bucket/key
	// uploads holds multipart uploads in progress; partsUploaded counts UploadPart calls.
	uploads       map[string]map[int32][]byte
	partsUploaded int
	copies        int
}

func newMemS3() *memS3 {
	return &memS3{objs: map[string][]byte{}, meta: map[string]map[string]string{}}
}

func (m *memS3) key(b, k *string) string { return aws.ToString(b) + "/" + aws.ToString(k) }

func (m *memS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[m.key(in.Bucket, in.Key)]
	if !ok {
		return nil, &s3types.NoSuchKey{}
	}
	if r := aws.ToString(in.Range); r != "" {
		var from, to int
		if n, _ := fmt.Sscanf(r, "bytes=%d-%d", &from, &to); n == 2 {
			b = b[from : to+1]
		} else {
			b = b[from:]
		}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: aws.Int64(int64(len(b))),
		Metadata: maps.Clone(m.meta[m.key(in.Bucket, in.Key)])}, nil
}

func (m *memS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[m.key(in.Bucket, in.Key)] = b
	m.meta[m.key(in.Bucket, in.Key)] = maps.Clone(in.Metadata)
	return &s3.PutObjectOutput{}, nil
}

func (m *memS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[m.key(in.Bucket, in.Key)]
	if !ok {
		return nil, &s3types.NotFound{}
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(b))), Metadata: maps.Clone(m.meta[m.key(in.Bucket, in.Key)])}, nil
}

func (m *memS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &s3.ListObjectsV2Output{}
	prefix := aws.ToString(in.Bucket) + "/" + aws.ToString(in.Prefix)
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, strings.TrimPrefix(k, aws.ToString(in.Bucket)+"/"))
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k)})
	}
	return out, nil
}

func (m *memS3) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, m.key(in.Bucket, in.Key))
	delete(m.meta, m.key(in.Bucket, in.Key))
	return &s3.DeleteObjectOutput{}, nil
}

func (m *memS3) CopyObject(_ context.Context, in *s3.CopyObjectInput, _ ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[aws.ToString(in.CopySource)]
	if !ok {
		return nil, &s3types.NoSuchKey{}
	}
	m.objs[m.key(in.Bucket, in.Key)] = b
	m.meta[m.key(in.Bucket, in.Key)] = maps.Clone(in.Metadata)
	m.copies++
	return &s3.CopyObjectOutput{}, nil
}

// Multipart uploads: parts are held per upload id until completed.
func (m *memS3) CreateMultipartUpload(_ context.Context, in *s3.CreateMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.uploads == nil {
		m.uploads = map[string]map[int32][]byte{}
	}
	id := fmt.Sprintf("up-%d", len(m.uploads)+1)
	m.uploads[id] = map[int32][]byte{}
	return &s3.CreateMultipartUploadOutput{UploadId: &id}, nil
}

func (m *memS3) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	parts, ok := m.uploads[aws.ToString(in.UploadId)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchUpload"}
	}
	parts[aws.ToInt32(in.PartNumber)] = b
	m.partsUploaded++
	return &s3.UploadPartOutput{ETag: aws.String(fmt.Sprintf("etag-%d", aws.ToInt32(in.PartNumber)))}, nil
}

func (m *memS3) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts, ok := m.uploads[aws.ToString(in.UploadId)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchUpload"}
	}
	var b []byte
	for i, p := range in.MultipartUpload.Parts {
		if aws.ToInt32(p.PartNumber) != int32(i+1) {
			return nil, fmt.Errorf("part %d out of order", aws.ToInt32(p.PartNumber))
		}
		b = append(b, parts[int32(i+1)]...)
	}
	m.objs[m.key(in.Bucket, in.Key)] = b
	delete(m.uploads, aws.ToString(in.UploadId))
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (m *memS3) AbortMultipartUpload(_ context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uploads, aws.ToString(in.UploadId))
	return &s3.AbortMultipartUploadOutput{}, nil
}

// flakyKinesis fails every failEvery-th entry of each call once, like a
// throttled shard, and records what it accepted.
type flakyKinesis struct {
	mu        sync.Mutex
	failEvery int
	accepted  map[string]int // record data → times accepted
	calls     int
	failures  int
}

func (k *flakyKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if len(in.Records) > 500 {
		return nil, errors.New("more than 500 records in one PutRecords")
	}
	size := 0
	out := &kinesis.PutRecordsOutput{}
	for i, r := range in.Records {
		size += len(r.Data) + len(aws.ToString(r.PartitionKey))
		if k.failEvery > 0 && i%k.failEvery == 0 && k.calls%2 == 1 {
			out.Records = append(out.Records, kintypes.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException")})
			k.failures++
			continue
		}
		k.accepted[string(r.Data)]++
		out.Records = append(out.Records, kintypes.PutRecordsResultEntry{SequenceNumber: aws.String("1")})
	}
	if size > 5<<20 {
		return nil, errors.New("PutRecords over 5 MiB")
	}
	out.FailedRecordCount = aws.Int32(int32(k.failures))
	return out, nil
}

func testPipeline() pipeline.Pipeline {
	return pipeline.Pipeline{Name: "customers", Stream: "s", QuarantineBucket: "q", MaxRejectedRatio: 0.5,
		Schema: schema.Schema{Columns: []schema.Column{{Name: "id", Type: schema.Int64}, {Name: "name", Type: schema.String, Nullable: true}}}}
}

func runPut(t *testing.T, a *Activities, in PutInput) (PutResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.PutToKinesis, in)
	if err != nil {
		return PutResult{}, err
	}
	var res PutResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestPutResendsOnlyFailedEntriesAndQuarantinesBadLines(t *testing.T) {
	m := newMemS3()
	var feedBody strings.Builder
	feedBody.WriteString("\xef\xbb\xbf") // a BOM before line 1
	for i := 1; i <= 1200; i++ {
		switch i {
		case 7:
			feedBody.WriteString("{broken\r\n")
		case 900:
			feedBody.WriteString(`{"name":"no id"}` + "\n")
		default:
			fmt.Fprintf(&feedBody, `{"id":%d,"name":"n%d"}`+"\r\n", i, i)
		}
	}
	m.objs["src/customers/a.ndjson"] = []byte(strings.TrimSuffix(feedBody.String(), "\r\n")) // no final newline
	k := &flakyKinesis{failEvery: 3, accepted: map[string]int{}}
	a := &Activities{S3: m, Kinesis: k}
	ref := feed.Ref{Bucket: "src", Key: "customers/a.ndjson", VersionID: "v1"}
	res, err := runPut(t, a, PutInput{FeedID: "f1", Ref: ref, Pipeline: testPipeline()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Read != 1200 || res.Rejected != 2 || res.Put != 1198 {
		t.Errorf("result %+v", res)
	}
	if res.Resends == 0 || k.failures == 0 {
		t.Errorf("no entry was failed and re-sent (resends %d, failures %d)", res.Resends, k.failures)
	}
	if len(k.accepted) != 1198 {
		t.Errorf("Kinesis has %d distinct records, want 1198", len(k.accepted))
	}
	for data, n := range k.accepted {
		if n != 1 {
			t.Errorf("record %q accepted %d times; only failed entries may be re-sent", data, n)
		}
		if !strings.HasPrefix(data, `{"_feed_id":"f1","_line":`) || !strings.HasSuffix(data, "}\n") {
			t.Errorf("record %q is not the line with feed id and line number, ending in a newline", data)
		}
	}
	if k.accepted[`{"_feed_id":"f1","_line":1,"id":1,"name":"n1"}`+"\n"] != 1 {
		t.Error("line 1 (after the BOM) is missing or changed")
	}
	if k.accepted[`{"_feed_id":"f1","_line":1200,"id":1200,"name":"n1200"}`+"\n"] != 1 {
		t.Error("the last line, without a final newline, is missing")
	}
	q := m.objs["q/"+res.QuarantineKey]
	var got []quarantined
	for _, l := range bytes.Split(bytes.TrimSpace(q), []byte("\n")) {
		var r quarantined
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Line != 7 || got[0].Raw != "{broken" || !strings.Contains(got[0].Reason, "invalid JSON") ||
		got[1].Line != 900 || !strings.Contains(got[1].Reason, `"id" is required`) {
		t.Errorf("quarantine = %+v", got)
	}
	for k := range m.objs {
		if strings.Contains(k, ".parts/") {
			t.Errorf("quarantine part %s left behind", k)
		}
	}
}

func TestPutResumesFromItsCheckpoint(t *testing.T) {
	m := newMemS3()
	var body strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&body, `{"id":%d}`+"\n", i)
	}
	m.objs["src/k"] = []byte(body.String())
	offset := int64(strings.Index(body.String(), `{"id":7}`))
	k := &flakyKinesis{accepted: map[string]int{}}
	a := &Activities{S3: m, Kinesis: k}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	env.SetHeartbeatDetails(PutProgress{Offset: offset, Line: 6, Read: 6, Put: 6})
	v, err := env.ExecuteActivity(a.PutToKinesis, PutInput{FeedID: "f", Ref: feed.Ref{Bucket: "src", Key: "k", VersionID: "v"}, Pipeline: testPipeline()})
	if err != nil {
		t.Fatal(err)
	}
	var res PutResult
	_ = v.Get(&res)
	if res.Read != 10 || res.Put != 10 || len(k.accepted) != 4 {
		t.Errorf("result %+v after resuming at line 6; Kinesis got %d records, want lines 7-10 only", res, len(k.accepted))
	}
	for l := 7; l <= 10; l++ {
		if k.accepted[fmt.Sprintf(`{"_feed_id":"f","_line":%d,"id":%d}`+"\n", l, l)] != 1 {
			t.Errorf("line %d not sent once", l)
		}
	}
}

func TestPutFailsOverThresholdNamingLines(t *testing.T) {
	m := newMemS3()
	m.objs["src/k"] = []byte("{\"id\":1}\nnot json\n[1]\n{\"id\":4}\n")
	p := testPipeline()
	p.MaxRejectedRatio, p.MaxRejectedLines = 0, 1
	a := &Activities{S3: m, Kinesis: &flakyKinesis{accepted: map[string]int{}}}
	_, err := runPut(t, a, PutInput{FeedID: "f", Ref: feed.Ref{Bucket: "src", Key: "k", VersionID: "v"}, Pipeline: p})
	if err == nil || !strings.Contains(err.Error(), "RejectThresholdExceeded") || !strings.Contains(err.Error(), "line 2: not a JSON object") || !strings.Contains(err.Error(), "line 3: not a JSON object") {
		t.Fatalf("err = %v", err)
	}
}

func TestLineReaderCutsLongLinesWithoutHoldingThem(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	r := newLineReader(strings.NewReader("a\n"+long+"\nb"), 1<<20)
	want := []struct {
		line    string
		tooLong bool
	}{{"a", false}, {long[:1<<20], true}, {"b", false}}
	for i, w := range want {
		line, n, tooLong, err := r.next()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if string(line) != w.line || tooLong != w.tooLong || n == 0 {
			t.Errorf("line %d: %d bytes tooLong=%v n=%d, want %d bytes tooLong=%v", i+1, len(line), tooLong, n, len(w.line), w.tooLong)
		}
	}
	if _, n, _, err := r.next(); !errors.Is(err, io.EOF) || n != 0 {
		t.Errorf("after the last line: n=%d err=%v, want EOF", n, err)
	}
}

func TestRecordAddsFeedFieldsFirst(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:     `{"_feed_id":"f","_line":3,"a":1}` + "\n",
		`{}`:          `{"_feed_id":"f","_line":3}` + "\n",
		`{ "a" : 1 }`: `{"_feed_id":"f","_line":3,"a" : 1}` + "\n",
	} {
		got := string(record("f", 3, []byte(in)))
		if got != want {
			t.Errorf("record(%s) = %q, want %q", in, got, want)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Errorf("record(%s) is not JSON: %v", in, err)
		}
	}
}

// A put that starts from line 1 (a feed version run again, perhaps after its
// schema was fixed) first removes what an earlier run quarantined, so the
// new quarantine holds exactly this run's rejects.
func TestPutFromTheStartClearsAnEarlierRunsQuarantine(t *testing.T) {
	m := newMemS3()
	m.objs["src/customers/a.ndjson"] = []byte(`{"id":1}` + "\n" + `{"id":"x"}` + "\n" + `{"id":3}` + "\n")
	p := testPipeline()
	old := `{"feed":"s3://src/customers/a.ndjson@v1","line":1,"reason":"an old schema's reason"}` + "\n"
	m.objs["q/"+QuarantineKey(p, "f1")] = []byte(old)
	m.objs["q/"+quarantinePartPrefix(p, "f1")+"part-000000000003.ndjson"] = []byte(old)
	a := &Activities{S3: m, Kinesis: &flakyKinesis{accepted: map[string]int{}}}
	res, err := runPut(t, a, PutInput{FeedID: "f1", Ref: feed.Ref{Bucket: "src", Key: "customers/a.ndjson", VersionID: "v1"}, Pipeline: p})
	if err != nil {
		t.Fatal(err)
	}
	q := string(m.objs["q/"+res.QuarantineKey])
	if res.Rejected != 1 || strings.Contains(q, "old schema") || !strings.Contains(q, `"line":2`) {
		t.Errorf("rejected %d, quarantine %q; want only this run's line 2", res.Rejected, q)
	}
}

// A source deleted or overwritten after its upload (seen when the run
// starts, or when a retried put reads on from its checkpoint) fails the run
// at once, naming the object and what to do, instead of retrying a GET that
// can never succeed or reading another version's bytes.
func TestPutOfAGoneSourceFailsSayingWhy(t *testing.T) {
	p := testPipeline()
	a := &Activities{S3: preconditionS3{newMemS3()}, Kinesis: &flakyKinesis{accepted: map[string]int{}}}
	_, err := runPut(t, a, PutInput{FeedID: "f", Ref: feed.Ref{Bucket: "src", Key: "customers/gone.ndjson", ETag: "e1"}, Pipeline: p})
	for _, want := range []string{"NotFound", "s3://src/customers/gone.ndjson was deleted after it was uploaded", "Upload the file again"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("deleted source: err = %v, want it to say %q", err, want)
		}
	}
	m := newMemS3()
	m.objs["src/customers/new.ndjson"] = []byte(`{"id":1}` + "\n")
	a.S3 = preconditionS3{m}
	_, err = runPut(t, a, PutInput{FeedID: "f", Ref: feed.Ref{Bucket: "src", Key: "customers/new.ndjson", ETag: "old"}, Pipeline: p})
	for _, want := range []string{"NotFound", "was overwritten after this upload (its ETag is no longer old)", "nothing of it was loaded", "upload it again"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("overwritten source: err = %v, want it to say %q", err, want)
		}
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Errorf("err = %v, want a non-retryable application error", err)
	}
}

// preconditionS3 answers a GetObject whose IfMatch names another ETag than
// the object's ("cur") with S3's PreconditionFailed, as S3 does.
type preconditionS3 struct{ *memS3 }

func (p preconditionS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	p.mu.Lock()
	_, ok := p.objs[p.key(in.Bucket, in.Key)]
	p.mu.Unlock()
	if ok && in.IfMatch != nil && strings.Trim(*in.IfMatch, `"`) != "cur" {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
	}
	return p.memS3.GetObject(ctx, in, opts...)
}

// A line key _feed_id or _line in any case is quarantined as reserved, not
// dropped (Snowflake would load it into feedpipe's column); so is a line
// with a lone surrogate escape (issue 9, reviews 5 and 6).
func TestPutQuarantinesReservedKeysInAnyCaseAndLoneSurrogates(t *testing.T) {
	m := newMemS3()
	m.objs["src/customers/r.ndjson"] = []byte(strings.Join([]string{
		`{"id":1,"name":"a"}`,
		`{"id":2,"_FEED_ID":"x"}`,
		`{"id":3,"_Line":3}`,
		`{"id":4,"_feed_id":"x"}`,
		`{"id":5,"name":"\ud800"}`,
		`{"id":6,"name":"b"}`,
	}, "\n") + "\n")
	k := &flakyKinesis{accepted: map[string]int{}}
	a := &Activities{S3: m, Kinesis: k}
	p := testPipeline()
	p.MaxRejectedRatio = 1
	res, err := runPut(t, a, PutInput{FeedID: "f1", Ref: feed.Ref{Bucket: "src", Key: "customers/r.ndjson", VersionID: "v1"}, Pipeline: p})
	if err != nil {
		t.Fatal(err)
	}
	if res.Put != 2 || res.Rejected != 4 {
		t.Errorf("result %+v", res)
	}
	var reasons []string
	for _, l := range bytes.Split(bytes.TrimSpace(m.objs["q/"+res.QuarantineKey]), []byte("\n")) {
		var r quarantined
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, fmt.Sprintf("%d: %s", r.Line, r.Reason))
	}
	want := []string{`2: field "_FEED_ID" is reserved`, `3: field "_Line" is reserved`, `4: field "_feed_id" is reserved`, `5: invalid \u escape: lone surrogate at byte 17`}
	if len(reasons) != len(want) {
		t.Fatalf("quarantined %q", reasons)
	}
	for i, w := range want {
		if !strings.HasPrefix(reasons[i], w) {
			t.Errorf("quarantined %q, want it to start %q", reasons[i], w)
		}
	}
}
