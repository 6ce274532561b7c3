package starter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
		if got := s.handle(context.Background(), aws.String("m1"), body); got != done {
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
