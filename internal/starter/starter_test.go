package starter

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
