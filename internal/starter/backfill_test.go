package starter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// fakeTemporal records the workflow ids started and, like Temporal with the
// starter's id policies, refuses a second start of an id.
type fakeTemporal struct {
	client.Client // nil: only ExecuteWorkflow is called
	mu            sync.Mutex
	started       []string
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.started, o.ID) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "run-1")
	}
	f.started = append(f.started, o.ID)
	return fakeRun{id: o.ID}, nil
}

type fakeRun struct {
	client.WorkflowRun
	id string
}

func (r fakeRun) GetID() string    { return r.id }
func (r fakeRun) GetRunID() string { return "run-" + r.id }

// fakeObject is the current version of an object in fakeS3.
type fakeObject struct {
	etag    string
	version string // as HeadObject gives it: "" on an unversioned bucket, "null" for a null version
	size    int64
	gone    bool // listed, then deleted before HeadObject
}

// fakeS3 answers ListObjectsV2 (no version ids, as S3) and HeadObject (the
// current version's id on a versioned bucket), two keys a page.
type fakeS3 struct {
	objs map[string]fakeObject // bucket/key
}

func (f *fakeS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	var keys []string
	for k := range f.objs {
		b, key, _ := strings.Cut(k, "/")
		if b == aws.ToString(in.Bucket) && strings.HasPrefix(key, aws.ToString(in.Prefix)) && key > aws.ToString(in.ContinuationToken) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	out := &s3.ListObjectsV2Output{}
	for i, k := range keys {
		if i == 2 {
			out.IsTruncated, out.NextContinuationToken = aws.Bool(true), aws.String(keys[1])
			break
		}
		o := f.objs[aws.ToString(in.Bucket)+"/"+k]
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k), ETag: aws.String(`"` + o.etag + `"`), Size: aws.Int64(o.size)})
	}
	return out, nil
}

func (f *fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	o, ok := f.objs[aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key)]
	if !ok || o.gone {
		return nil, &s3types.NotFound{}
	}
	out := &s3.HeadObjectOutput{ETag: aws.String(`"` + o.etag + `"`), ContentLength: aws.Int64(o.size)}
	if o.version != "" {
		out.VersionId = aws.String(o.version)
	}
	return out, nil
}

// s3Event is the S3 notification for the object's upload, as SQS delivers it.
func s3Event(bucket, key string, o fakeObject, eventVersion string) string {
	v := ""
	if eventVersion != "" {
		v = fmt.Sprintf(`,"versionId":%q`, eventVersion)
	}
	return fmt.Sprintf(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":%q},"object":{"key":%q,"size":%d,"eTag":%q%s}}}]}`,
		bucket, key, o.size, o.etag, v)
}

// An object gets one workflow id whether its event, StartObject or a
// backfill starts it: on a versioned bucket the backfill uses the version id
// the event has, not the listing's ETag; on an unversioned bucket the ETag.
// A backfill after the events therefore starts nothing again.
func TestBackfillStartsWhatTheEventStarted(t *testing.T) {
	objects := []struct {
		name, bucket, key string
		obj               fakeObject
		eventVersion      string // the versionId in the object's S3 event
		wantVersion       string // what the workflow id ends in
	}{
		{"versioned bucket", "vb", "in/a.ndjson", fakeObject{etag: "etag-a", version: "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", size: 10},
			"3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
		{"null version on a versioned bucket", "vb", "in/b.ndjson", fakeObject{etag: "etag-b", version: "null", size: 11}, "", "etag-b"},
		{"unversioned bucket", "ub", "in/c.ndjson", fakeObject{etag: "etag-c", size: 12}, "", "etag-c"},
	}
	s3fake := &fakeS3{objs: map[string]fakeObject{"vb/in/zz-deleted.ndjson": {etag: "etag-z", version: "v-z", gone: true}}}
	for _, o := range objects {
		s3fake.objs[o.bucket+"/"+o.key] = o.obj
	}
	cfg := &pipeline.Config{TaskQueue: "feeds", Pipelines: []pipeline.Pipeline{
		{Name: "versioned", SourceBucket: "vb", SourcePrefix: "in/"},
		{Name: "unversioned", SourceBucket: "ub", SourcePrefix: "in/"},
	}}
	newStarter := func() (*Starter, *fakeTemporal) {
		tc := &fakeTemporal{}
		return &Starter{Temporal: tc, S3: s3fake, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, tc
	}
	ctx := context.Background()

	// Each path on its own.
	backfilled, byBackfill := newStarter()
	for _, b := range []string{"vb", "ub"} {
		if _, err := backfilled.Backfill(ctx, b, "in/", 1000, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range objects {
		evs, byEvent := newStarter()
		if done, _ := evs.handle(ctx, aws.String("m"), s3Event(o.bucket, o.key, o.obj, o.eventVersion)); !done || len(byEvent.started) != 1 {
			t.Fatalf("%s: the event started %v", o.name, byEvent.started)
		}
		eventID := byEvent.started[0]
		if want := fmt.Sprintf("feed/%s/%s@%s", o.bucket, o.key, o.wantVersion); eventID != want {
			t.Errorf("%s: the event started %s, want %s", o.name, eventID, want)
		}
		objs, _ := newStarter()
		st, err := objs.StartObject(ctx, o.bucket, o.key)
		if err != nil || st.WorkflowID != eventID {
			t.Errorf("%s: StartObject started %s (%v), the event %s", o.name, st.WorkflowID, err, eventID)
		}
		if !slices.Contains(byBackfill.started, eventID) {
			t.Errorf("%s: the backfill started %v, not the event's %s", o.name, byBackfill.started, eventID)
		}
	}
	if len(byBackfill.started) != len(objects) {
		t.Errorf("the backfill started %v, want one run per object", byBackfill.started)
	}

	// Events first, then a backfill: nothing is started twice.
	s, tc := newStarter()
	for _, o := range objects {
		s.handle(ctx, aws.String("m"), s3Event(o.bucket, o.key, o.obj, o.eventVersion))
	}
	vb, err := s.Backfill(ctx, "vb", "in/", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := s.Backfill(ctx, "ub", "in/", 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (BackfillStats{Listed: 3, Existed: 2, Gone: 1}); vb != want {
		t.Errorf("backfill of the versioned bucket after its events: %+v, want %+v", vb, want)
	}
	if want := (BackfillStats{Listed: 1, Existed: 1}); ub != want {
		t.Errorf("backfill of the unversioned bucket after its event: %+v, want %+v", ub, want)
	}
	if len(tc.started) != len(objects) {
		t.Errorf("runs started: %v, want one per object", tc.started)
	}
}
