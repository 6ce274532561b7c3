package starter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// A message that is not an S3 event is left on the queue (for its redrive
// policy) and starts nothing; a test event or another event type is dropped.
func TestHandleLeavesMalformedMessagesOnTheQueue(t *testing.T) {
	s := &Starter{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for body, done := range map[string]bool{
		`not json`:  false,
		`{"foo":1}`: false,
		`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`: false,
		`{"Service":"Amazon S3","Event":"s3:TestEvent"}`:                                                           true,
		`{"detail-type":"Object Deleted","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`: true,
	} {
		// No Temporal client: any attempt to start a run would panic.
		if got, _ := s.handle(context.Background(), aws.String("m1"), body); got != done {
			t.Errorf("handle(%s) = %v, want %v", body, got, done)
		}
	}
}

// attrSQS is a queue with fixed attributes and no messages.
type attrSQS struct{ attrs map[string]string }

func (q attrSQS) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (q attrSQS) DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return &sqs.DeleteMessageOutput{}, nil
}

func (q attrSQS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: q.attrs}, nil
}

// Listening on a queue without a dead-letter queue warns that an unusable
// message would come back forever; with one it does not.
func TestListenWarnsOfAQueueWithoutDeadLetterQueue(t *testing.T) {
	for _, tc := range []struct {
		attrs map[string]string
		warns bool
	}{
		{map[string]string{}, true},
		{map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"5"}`}, false},
	} {
		var log bytes.Buffer
		s := &Starter{SQS: attrSQS{tc.attrs}, Logger: slog.New(slog.NewTextHandler(&log, nil))}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_ = s.Listen(ctx, "https://sqs.example/q")
		cancel()
		if got := strings.Contains(log.String(), "has no dead-letter queue"); got != tc.warns {
			t.Errorf("attributes %v: warned %v, want %v; log:\n%s", tc.attrs, got, tc.warns, log.String())
		}
	}
}

// downTemporal refuses every start as unreachable, and answers its health
// check only from the moment up is closed.
type downTemporal struct {
	client.Client
	up     chan struct{}
	checks atomic.Int32
}

func (d *downTemporal) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, serviceerror.NewUnavailable("connection refused")
}

func (d *downTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	d.checks.Add(1)
	select {
	case <-d.up:
		return &client.CheckHealthResponse{}, nil
	default:
		return nil, serviceerror.NewUnavailable("connection refused")
	}
}

// eventQueue hands out the same Object Created event at every receive, as
// SQS does once its visibility timeout passes, and counts the receives.
type eventQueue struct {
	attrSQS
	receives atomic.Int32
}

func (q *eventQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.receives.Add(1)
	body := `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"in/a.ndjson","size":3,"etag":"e1"}}}`
	return &sqs.ReceiveMessageOutput{Messages: []sqstypes.Message{{MessageId: aws.String("m1"), Body: &body, ReceiptHandle: aws.String("r1")}}}, nil
}

// While Temporal cannot be reached the listener receives nothing: each
// receive counts towards the queue's redrive limit, and a real event must
// not reach the dead-letter queue because Temporal was down for a while.
func TestListenHoldsEventsWhileTemporalIsDown(t *testing.T) {
	tc := &downTemporal{up: make(chan struct{})}
	q := &eventQueue{attrSQS: attrSQS{map[string]string{"RedrivePolicy": "{}"}}}
	s := &Starter{Temporal: tc, SQS: q, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config: &pipeline.Config{TaskQueue: "feeds", Pipelines: []pipeline.Pipeline{{Name: "p", SourceBucket: "b", SourcePrefix: "in/"}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Listen(ctx, "q") }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s (%d receives, %d health checks)", what, q.receives.Load(), tc.checks.Load())
			}
		}
	}
	// Two health checks: about 3 s of outage.
	waitFor("the listener checks Temporal's health", func() bool { return tc.checks.Load() >= 2 || q.receives.Load() > 1 })
	if n := q.receives.Load(); n != 1 {
		t.Errorf("%d receives while Temporal was down, want 1", n)
	}
	close(tc.up)
	waitFor("the listener receives again once Temporal answers", func() bool { return q.receives.Load() >= 2 })
}
