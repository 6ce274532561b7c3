package activities

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// countingS3 counts GETs of staging objects and lists in pages of two keys,
// as S3 pages (by 1,000).
type countingS3 struct {
	*memS3
	gets atomic.Int64
}

func (c *countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if strings.Contains(aws.ToString(in.Key), "feed=") {
		c.gets.Add(1)
	}
	return c.memS3.GetObject(ctx, in, o...)
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, o ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	all, err := c.memS3.ListObjectsV2(ctx, in, o...)
	if err != nil {
		return nil, err
	}
	// The token is the last key returned, so that a page after deletes
	// goes on where it was, as S3's does.
	rest := all.Contents
	if t := aws.ToString(in.ContinuationToken); t != "" {
		for len(rest) > 0 && aws.ToString(rest[0].Key) <= t {
			rest = rest[1:]
		}
	}
	out := &s3.ListObjectsV2Output{Contents: rest[:min(2, len(rest))]}
	if len(rest) > 2 {
		out.IsTruncated, out.NextContinuationToken = aws.Bool(true), rest[1].Key
	}
	return out, nil
}

// stage holds feed f1's records under its prefix (one delivered twice, one
// written by another tool with its fields in another order), and records of
// feeds whose prefixes sit beside it.
func stage(m *memS3) {
	m.objs["st/raw/feed=f1/2026/01/01/00/a"] = []byte(`{"_feed_id":"f1","_line":1,"id":1,"name":"a"}` + "\n")
	m.objs["st/raw/feed=f1/2026/01/01/00/b"] = []byte(`{"_feed_id":"f1","_line":1,"id":1,"name":"a"}` + "\n" + `{"id":3,"_line":3,"_feed_id":"f1"}`)
	m.objs["st/raw/feed=f1/2026/01/01/00/c"] = []byte(`{"_feed_id":"f1","_line":2,"id":2,"name":null}` + "\n")
	m.objs["st/raw/feed=f10/2026/01/01/00/d"] = []byte(`{"_feed_id":"f10","_line":2,"id":2}` + "\n")
	m.objs["st/raw/feed=other/2026/01/01/00/e"] = []byte(`{"_feed_id":"other","_line":2,"id":2}` + "\n")
}

func stagingPipeline() pipeline.Pipeline {
	p := testPipeline()
	p.Name, p.StagingBucket, p.StagingPrefix, p.DestBucket, p.DestPrefix = "customers", "st", "raw/", "dst", "c/"
	return p
}

// runActivity runs one of a's activities in the test environment, with the
// heartbeat details of an earlier attempt if not nil, into out.
func runActivity(a *Activities, fn, in, heartbeat, out any) error {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if heartbeat != nil {
		env.SetHeartbeatDetails(heartbeat)
	}
	v, err := env.ExecuteActivity(fn, in)
	if err == nil {
		err = v.Get(out)
	}
	return err
}

func checkDelivery(t *testing.T, a *Activities, in DeliveryInput, heartbeat any) (DeliveryState, error) {
	t.Helper()
	var st DeliveryState
	err := runActivity(a, a.CheckDelivery, in, heartbeat, &st)
	return st, err
}

// A pass reads only the feed's own prefix and counts distinct lines.
func TestCheckDeliveryReadsOnlyItsFeedsPrefix(t *testing.T) {
	m := &countingS3{memS3: newMemS3()}
	stage(m.memS3)
	st, err := checkDelivery(t, &Activities{S3: m}, DeliveryInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Delivered != 3 || st.Objects != 3 || st.Reads != 3 || m.gets.Load() != 3 || st.Passes != 1 {
		t.Errorf("state %+v after %d GETs, want 3 lines from the 3 objects of feed=f1/ only", st, m.gets.Load())
	}
	// It leaves Convert one checkpoint, listing one bundle of the 3 objects.
	var left []string
	for k := range m.objs {
		if strings.HasPrefix(k, "st/checkpoints/") {
			left = append(left, k)
		}
	}
	if st.Checkpoint == "" || len(left) != 2 {
		t.Errorf("a finished pass left checkpoint %q and objects %v, want the checkpoint and one bundle", st.Checkpoint, left)
	}

	// When a Glue job converts, nothing is left.
	m = &countingS3{memS3: newMemS3()}
	stage(m.memS3)
	p := stagingPipeline()
	p.Conversion = pipeline.ConvertGlue
	st, err = checkDelivery(t, &Activities{S3: m}, DeliveryInput{FeedID: "f1", Pipeline: p, Expected: 3, Lines: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range m.objs {
		if strings.HasPrefix(k, "st/checkpoints/") || st.Checkpoint != "" {
			t.Errorf("a finished pass for Glue left %s (checkpoint %q)", k, st.Checkpoint)
		}
	}
}

// Each pass reads only the objects no earlier pass read: the set of keys
// read and lines seen travels in an S3 checkpoint that the state points to.
func TestCheckDeliveryPassesReadEachObjectOnce(t *testing.T) {
	m := &countingS3{memS3: newMemS3()}
	stage(m.memS3)
	delete(m.objs, "st/raw/feed=f1/2026/01/01/00/c") // line 2 not delivered yet
	a := &Activities{S3: m}
	in := DeliveryInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3}
	st, err := checkDelivery(t, a, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done(3) || st.Delivered != 2 || st.Duplicates != 1 || st.Checkpoint == "" || m.gets.Load() != 2 {
		t.Fatalf("first pass %+v after %d GETs, want 2 of 3 delivered, 1 duplicate, a checkpoint", st, m.gets.Load())
	}
	m.objs["st/raw/feed=f1/2026/01/01/00/c"] = []byte(`{"_feed_id":"f1","_line":2,"id":2}` + "\n")
	in.State = st
	st2, err := checkDelivery(t, a, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !st2.Done(3) || st2.Delivered != 3 || st2.Duplicates != 1 || st2.Reads != 3 || m.gets.Load() != 3 || st2.Passes != 2 {
		t.Errorf("second pass %+v after %d GETs in all, want only the new object read", st2, m.gets.Load())
	}
	if _, ok := m.objs["st/"+st.Checkpoint]; ok {
		t.Errorf("checkpoint %s left behind after the stage finished", st.Checkpoint)
	}
}

// A retried attempt of a pass resumes from the checkpoint its heartbeat
// carried, not from the state the pass was started with.
func TestCheckDeliveryResumesFromItsHeartbeat(t *testing.T) {
	m := &countingS3{memS3: newMemS3()}
	stage(m.memS3)
	delete(m.objs, "st/raw/feed=f1/2026/01/01/00/c")
	a := &Activities{S3: m}
	in := DeliveryInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3}
	killed, err := checkDelivery(t, a, in, nil) // what the interrupted attempt had saved
	if err != nil {
		t.Fatal(err)
	}
	m.objs["st/raw/feed=f1/2026/01/01/00/c"] = []byte(`{"_feed_id":"f1","_line":2,"id":2}` + "\n")
	before := m.gets.Load()
	st, err := checkDelivery(t, a, in, killed) // in.State is still the pass's empty start
	if err != nil {
		t.Fatal(err)
	}
	if !st.Resumed || st.Delivered != 3 || m.gets.Load()-before != 1 || st.Reads != 3 {
		t.Errorf("resumed pass %+v read %d objects, want it to resume at 2 delivered and read only the new one", st, m.gets.Load()-before)
	}
}

func TestCheckDeliveryRefusesALineOutsideTheFeed(t *testing.T) {
	m := newMemS3()
	stage(m)
	_, err := checkDelivery(t, &Activities{S3: m}, DeliveryInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 2}, nil)
	if err == nil || !strings.Contains(err.Error(), "holds line 3, outside 1..2") || !strings.Contains(err.Error(), ErrBadInput) {
		t.Fatalf("err = %v, want BadInput naming line 3", err)
	}
}

func TestConvertLocalWritesOneRowPerLineAndReusesTheFile(t *testing.T) {
	m := newMemS3()
	stage(m)
	p := stagingPipeline()
	a := &Activities{S3: m, TempDir: t.TempDir()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, Expected: 3, Lines: 3})
	if err != nil {
		t.Fatal(err)
	}
	var conv ConvertResult
	_ = v.Get(&conv)
	if conv.Rows != 3 || conv.Duplicates != 1 || len(conv.Files) != 1 || conv.Files[0] != (ParquetFile{Key: "c/f1/part-00001.parquet", Rows: 3}) || conv.Reads != 3 {
		t.Errorf("convert %+v", conv)
	}
	for k := range m.objs {
		if strings.Contains(k, "/convert/") {
			t.Errorf("checkpoint %s left behind after the conversion was published", k)
		}
	}
	type row struct {
		FeedID string  `parquet:"_feed_id"`
		Line   int64   `parquet:"_line"`
		ID     int64   `parquet:"id"`
		Name   *string `parquet:"name,optional"`
	}
	pq := m.objs["dst/c/f1/part-00001.parquet"]
	rows, err := parquet.Read[row](bytes.NewReader(pq), int64(len(pq)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]row{}
	for _, r := range rows {
		got[r.Line] = r
	}
	if len(rows) != 3 || got[1].ID != 1 || *got[1].Name != "a" || got[2].Name != nil || got[3].ID != 3 || got[3].FeedID != "f1" {
		t.Errorf("parquet rows %+v", rows)
	}

	// A retry finds the file written and reuses it.
	v, err = env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, Expected: 3, Lines: 3})
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Get(&conv)
	if !conv.Reused || conv.Rows != 3 {
		t.Errorf("second convert %+v, want the existing file reused", conv)
	}
}

func parquetObject(t *testing.T, p pipeline.Pipeline, rows ...[3]any) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := parquetconv.NewWriter(&b, p.Schema, parquetconv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		vals := []schema.Value{{I: r[2].(int64)}, {Null: true}}
		if err := w.Write(r[0].(string), r[1].(int64), vals); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Firehose mode: the staged objects are Parquet (Firehose's record format
// conversion); delivery counts and conversion dedups this feed's rows there.
func TestFirehoseModeReadsParquetStaging(t *testing.T) {
	m := newMemS3()
	p := stagingPipeline()
	p.Conversion = pipeline.ConvertFirehose
	m.objs["st/raw/feed=f1/2026/01/01/00/a.parquet"] = parquetObject(t, p, [3]any{"f1", int64(1), int64(10)}, [3]any{"zz", int64(1), int64(99)})
	m.objs["st/raw/feed=f1/2026/01/01/00/b.parquet"] = parquetObject(t, p, [3]any{"f1", int64(2), int64(20)}, [3]any{"f1", int64(1), int64(10)})
	a := &Activities{S3: m, TempDir: t.TempDir()}
	del, err := checkDelivery(t, a, DeliveryInput{FeedID: "f1", Pipeline: p, Expected: 2, Lines: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if del.Delivered != 2 || del.Duplicates != 1 || del.Objects != 2 {
		t.Fatalf("delivery %+v", del)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, Expected: 2, Lines: 2})
	if err != nil {
		t.Fatal(err)
	}
	var conv ConvertResult
	_ = v.Get(&conv)
	var got []string
	err = parquetconv.ReadRecords(m.objs["dst/"+conv.Files[0].Key], p.Schema, func(id string, line int64, vals []schema.Value) error {
		got = append(got, fmt.Sprintf("%s:%d:%d", id, line, vals[0].I))
		return nil
	})
	if err != nil || conv.Rows != 2 || conv.Duplicates != 1 || strings.Join(got, ",") != "f1:1:10,f1:2:20" {
		t.Errorf("convert %+v, rows %v, %v", conv, got, err)
	}
}

// blockingS3 holds GETs of one key until the caller gives up.
type blockingS3 struct {
	*memS3
	key string
}

func (b *blockingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if strings.HasSuffix(aws.ToString(in.Key), b.key) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return b.memS3.GetObject(ctx, in, o...)
}

// A Convert cancelled (worker shutdown, heartbeat timeout, workflow cancel)
// while it waits for a staging object returns at once, with an error the
// workflow retries: it is not the feed's fault.
func TestConvertLocalStopsWhenCancelled(t *testing.T) {
	m := newMemS3()
	stage(m)
	a := &Activities{S3: &blockingS3{memS3: m, key: "/c"}, TempDir: t.TempDir()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	ctx, cancel := context.WithCancel(context.Background())
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: ctx})
	time.AfterFunc(200*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || strings.Contains(err.Error(), ErrBadInput) {
			t.Errorf("err = %v, want a retryable cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ConvertLocal did not return after its context was cancelled")
	}
}

// A retried Convert goes on after the last part its checkpoint names: it
// reads only the staging objects after that part's, keeps the part, and the
// feed ends as files holding every line once.
func TestConvertLocalResumesAfterItsLastPart(t *testing.T) {
	m := &countingS3{memS3: newMemS3()}
	stage(m.memS3)
	p := stagingPipeline()
	a := &Activities{S3: m, TempDir: t.TempDir()}
	in := ConvertInput{FeedID: "f1", Pipeline: p, Expected: 3, Lines: 3}

	// What the killed attempt had done: part 1 from object a (line 1).
	part1 := firstPart(t, a, in, "raw/feed=f1/2026/01/01/00/a", m.objs["st/raw/feed=f1/2026/01/01/00/a"])
	if part1.Rows != 1 {
		t.Fatalf("part 1: %+v", part1)
	}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	env.SetHeartbeatDetails(ConvertProgress{Parts: []ConvertPart{part1.ConvertPart}, Reads: 1})
	v, err := env.ExecuteActivity(a.ConvertLocal, in)
	if err != nil {
		t.Fatal(err)
	}
	var conv ConvertResult
	_ = v.Get(&conv)
	if conv.ResumedAtPart != 2 || m.gets.Load() != 2 || conv.Reads != 3 {
		t.Errorf("convert %+v after %d staging GETs; want it resumed at part 2, reading objects b and c only", conv, m.gets.Load())
	}
	if conv.Rows != 3 || len(conv.Files) != 2 || conv.Files[0].Rows != 1 || conv.Files[1].Rows != 2 {
		t.Fatalf("files %+v, want part 1 (1 row) kept and part 2 (2 rows)", conv.Files)
	}
	lines := map[int64]int{}
	for _, f := range conv.Files {
		err := parquetconv.ReadRecords(m.objs["dst/"+f.Key], p.Schema, func(id string, line int64, _ []schema.Value) error {
			lines[line]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(lines) != 3 || lines[1] != 1 || lines[2] != 1 || lines[3] != 1 {
		t.Errorf("lines in the published files: %v, want 1, 2 and 3 once each", lines)
	}
}

// Parts an earlier run published without this attempt's checkpoint may be
// loaded already: Convert refuses to write over them, and says what to do.
func TestConvertLocalRefusesAnUnfinishedEarlierPublish(t *testing.T) {
	m := newMemS3()
	stage(m)
	p := stagingPipeline()
	m.objs["dst/c/f1/part-00001.parquet"] = parquetObject(t, p, [3]any{"f1", int64(1), int64(10)})
	a := &Activities{S3: m, TempDir: t.TempDir()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, Expected: 3, Lines: 3})
	if err == nil || !strings.Contains(err.Error(), "1 rows, want 3") || !strings.Contains(err.Error(), "WHERE _FEED_ID = 'f1'") {
		t.Fatalf("err = %v, want RowCountMismatch naming the files and the DELETE", err)
	}
}
