package integration

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/sfconn"
)

// A persistent local stack survives its parts: each part stopped and started
// again comes back (MiniStack with its objects and queued messages, Temporal
// with its workflows, fakesnow provisioned again) while the others keep
// running, and a frozen part answers again once thawed.
func TestStackPartsRestartWithTheirData(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	s, err := devstack.Start(ctx, devstack.Options{RunDir: t.TempDir(), Persist: true, UIPort: -1, NoSnowpipe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	aws3 := provision.NewAWSClients(s.AWSConfig(), true)
	bucket, key := s.Names.SourceBucket, "parts/kept.ndjson"
	if _, err := aws3.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("kept\n"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := aws3.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &s.AWS.FeedQueueURL, MessageBody: aws.String("kept")}); err != nil {
		t.Fatal(err)
	}
	db, err := s.OpenSnowflake(s.Names.Snowflake.Database, s.Names.Snowflake.Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tcl, err := client.Dial(client.Options{HostPort: s.TemporalAddress, Namespace: s.TemporalNamespace})
	if err != nil {
		t.Fatal(err)
	}
	defer tcl.Close()
	run, err := tcl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "kept", TaskQueue: "nobody-polls"}, "NoSuchWorkflow")
	if err != nil {
		t.Fatal(err)
	}

	// MiniStack frozen: a call times out; thawed: it answers.
	if err := s.Freeze(devstack.PartMiniStack); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err = aws3.S3.HeadObject(short, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	cancel()
	if err == nil {
		t.Error("a frozen MiniStack answered")
	}
	if err := s.Thaw(devstack.PartMiniStack); err != nil {
		t.Fatal(err)
	}

	for _, part := range []string{devstack.PartMiniStack, devstack.PartFakesnow, devstack.PartTemporal} {
		if err := s.RestartPart(ctx, part); err != nil {
			t.Fatalf("restart %s: %v", part, err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("after restarting %s: %v", part, err)
		}
	}

	out, err := aws3.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("the object after MiniStack's restart: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "kept\n" {
		t.Errorf("object body %q after the restart", body)
	}
	// The queue also holds the object's Object Created event.
	msgs, err := aws3.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &s.AWS.FeedQueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil || !slices.ContainsFunc(msgs.Messages, func(m sqstypes.Message) bool { return aws.ToString(m.Body) == "kept" }) {
		t.Errorf("queued messages after the restart: %d, %v; want the one sent before among them", len(msgs.Messages), err)
	}
	// The pooled connection's session died with fakesnow: the first
	// statement on it fails as a lost connection and drops it (sfconn), the
	// next one logs in again. fakesnow's server keeps its tables in memory,
	// so the restarted one has the provisioned table, empty.
	var n int
	count := func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+s.Names.Snowflake.Table).Scan(&n)
	}
	if err := sfconn.Do(ctx, db, count); err != nil && !sfconn.ConnectionLost(err) {
		t.Errorf("the first statement after fakesnow's restart: %v, want a lost connection or none", err)
	}
	if err := sfconn.Do(ctx, db, count); err != nil || n != 0 {
		t.Errorf("rows of the provisioned table after fakesnow's restart: %d, %v; want 0", n, err)
	}
	desc, err := tcl.DescribeWorkflowExecution(ctx, "kept", run.GetRunID())
	if err != nil || desc.WorkflowExecutionInfo.CloseTime != nil {
		t.Errorf("the workflow after Temporal's restart: %+v, %v; want it still running", desc, err)
	}
}
