package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/feedpipe/feedpipe/internal/provision"
)

// The stack's feed queue sends a message to its dead-letter queue after the
// shipped 5 receives; and the redrive policy provisioning sets, on a queue
// that had none, really moves a message MiniStack has delivered past it.
func TestFeedQueueRedrivesToItsDeadLetterQueue(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c := clients().SQS
	policy := func(url string) (target string, receives string) {
		t.Helper()
		out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy}})
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &p); err != nil {
			t.Fatalf("queue %s: redrive policy %q: %v", url, out.Attributes["RedrivePolicy"], err)
		}
		return p.DeadLetterTargetArn, fmt.Sprint(p.MaxReceiveCount)
	}
	arn := func(url string) string {
		t.Helper()
		out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes["QueueArn"]
	}
	if target, receives := policy(stack.AWS.FeedQueueURL); target != arn(stack.AWS.FeedDLQURL) || receives != "5" {
		t.Errorf("feed queue redrives to %s after %s receives, want %s after 5", target, receives, arn(stack.AWS.FeedDLQURL))
	}

	// A queue made before dead-letter queues existed gains the policy.
	name := fmt.Sprintf("redrive-%d", time.Now().UnixNano())
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameVisibilityTimeout): "0"}})
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := provision.DeadLetterQueue(ctx, c, aws.ToString(q.QueueUrl), name+"-dlq", 1)
	if err != nil {
		t.Fatal(err)
	}
	if target, receives := policy(aws.ToString(q.QueueUrl)); target != arn(dlq) || receives != "1" {
		t.Fatalf("queue redrives to %s after %s receives, want %s after 1", target, receives, arn(dlq))
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("not an S3 event")}); err != nil {
		t.Fatal(err)
	}
	// Received and not deleted (the queue's visibility timeout is 0, so it is
	// visible again at once): past its one receive, a later receive moves it
	// to the dead-letter queue.
	for i := 0; i < 3; i++ {
		if _, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 1}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &dlq, WaitTimeSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "not an S3 event" {
		t.Errorf("dead-letter queue holds %d messages (%+v), want the one received past its limit", len(out.Messages), out.Messages)
	}
}
