// Package starter starts FeedWorkflow runs exactly once per feed version:
// for one object, for every S3 event on an SQS queue, or for a backfill of a
// bucket prefix.
package starter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/metrics"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/s3event"
	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/workflows"
)

// S3API is what the starter reads from S3.
type S3API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// SQSAPI is what the listener needs from SQS.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Starter starts runs.
type Starter struct {
	Temporal client.Client
	S3       S3API
	SQS      SQSAPI
	Config   *pipeline.Config
	Logger   *slog.Logger
	// Metrics, if not nil, counts start requests and queue messages
	// (metrics.Starts, metrics.StarterMessages).
	Metrics client.MetricsHandler
}

// count adds one to a counter with the given labels.
func (s *Starter) count(name string, tags map[string]string) {
	if s.Metrics != nil {
		s.Metrics.WithTags(tags).Counter(name).Inc(1)
	}
}

// Started says what Start did.
type Started struct {
	WorkflowID string
	RunID      string
	Existed    bool // a run for this feed version already exists or completed; nothing started
	Pipeline   string
}

// Start starts FeedWorkflow for ref unless a run for the same feed version is
// running or has completed. A version whose last run failed, was terminated
// or timed out is started again.
func (s *Starter) Start(ctx context.Context, ref feed.Ref) (Started, error) {
	st, err := s.start(ctx, ref)
	outcome := "started"
	switch {
	case err != nil:
		outcome = "failed"
	case st.Existed:
		outcome = "existed"
	}
	s.count(metrics.Starts, map[string]string{"pipeline": st.Pipeline, "outcome": outcome})
	return st, err
}

func (s *Starter) start(ctx context.Context, ref feed.Ref) (Started, error) {
	if err := ref.Validate(); err != nil {
		return Started{}, err
	}
	p, err := s.Config.Route(ref.Bucket, ref.Key)
	if err != nil {
		return Started{}, err
	}
	id := ref.WorkflowID()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.Config.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Report an existing run as such instead of returning its handle.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			searchattr.FeedBucket.ValueSet(ref.Bucket), searchattr.FeedKey.ValueSet(ref.Key),
			searchattr.FeedPipeline.ValueSet(p.Name), searchattr.FeedStage.ValueSet(workflows.StagePut)),
	}, workflows.FeedWorkflowName, workflows.FeedInput{Ref: ref, Pipeline: *p})
	var exists *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &exists) {
		return Started{WorkflowID: id, RunID: exists.RunId, Existed: true, Pipeline: p.Name}, nil
	}
	if err != nil {
		return Started{Pipeline: p.Name}, fmt.Errorf("start %s for %s: %w", workflows.FeedWorkflowName, ref, err)
	}
	return Started{WorkflowID: id, RunID: run.GetRunID(), Pipeline: p.Name}, nil
}

// StartObject looks the object up (its ETag, version and size identify the
// upload) and starts it.
func (s *Starter) StartObject(ctx context.Context, bucket, key string) (Started, error) {
	ref, err := s.headRef(ctx, bucket, key)
	if err != nil {
		return Started{}, err
	}
	return s.Start(ctx, ref)
}

// headRef is the Ref of the object's current version, as HeadObject gives
// it: on a versioned bucket with its version id, as its S3 event has it.
func (s *Starter) headRef(ctx context.Context, bucket, key string) (feed.Ref, error) {
	head, err := s.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return feed.Ref{}, fmt.Errorf("head s3://%s/%s: %w", bucket, key, err)
	}
	return objectRef(bucket, key, aws.ToString(head.ETag), aws.ToString(head.VersionId), aws.ToInt64(head.ContentLength), ""), nil
}

// objectRef is the Ref of one upload, built alike from an S3 event, a
// HeadObject or a backfill, so that one upload always has one workflow id.
// The version id "null" (an object written while the bucket was unversioned
// or versioning was suspended) does not tell uploads apart, and an event
// for such an object carries none: the ETag identifies it, as on an
// unversioned bucket.
func objectRef(bucket, key, etag, versionID string, size int64, sequencer string) feed.Ref {
	if versionID == "null" {
		versionID = ""
	}
	return feed.Ref{Bucket: bucket, Key: key, ETag: strings.Trim(etag, `"`), VersionID: versionID, Size: size, Sequencer: sequencer}
}

// isNotFound says whether err is S3's answer for a missing object.
func isNotFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchKey":
			return true
		}
	}
	return false
}

// Listen receives S3 Object Created events from queueURL until ctx ends. A
// message is deleted only once every object it names has a run (started now
// or before). A message that cannot be read, or whose start failed, stays on
// the queue: it comes back after the visibility timeout and, past the queue's
// maxReceiveCount, goes to its dead-letter queue.
func (s *Starter) Listen(ctx context.Context, queueURL string) error {
	s.checkRedrive(ctx, queueURL)
	for ctx.Err() == nil {
		out, err := s.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 10,
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.Logger.Warn("listen: receive failed; retrying", "queue", queueURL, "err", err)
			if !sleep(ctx, 2*time.Second) {
				break
			}
			continue
		}
		down := false
		for _, m := range out.Messages {
			done, unreachable := s.handle(ctx, m.MessageId, aws.ToString(m.Body))
			down = down || unreachable
			if done {
				if _, err := s.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
					s.Logger.Warn("listen: delete message failed; it will be redelivered and found started", "message_id", aws.ToString(m.MessageId), "err", err)
				}
			}
		}
		if down {
			s.waitForTemporal(ctx)
		}
	}
	return nil
}

// waitForTemporal stops receiving until Temporal answers again. Every
// receive of a message counts towards the queue's redrive limit, so while
// Temporal is down each event is received once, not every visibility
// timeout until it lands in the dead-letter queue.
func (s *Starter) waitForTemporal(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		s.Logger.Warn("listen: Temporal is unreachable; receiving no events until it answers", "retry_in", wait)
		if !sleep(ctx, wait) {
			return
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.Temporal.CheckHealth(hctx, &client.CheckHealthRequest{})
		cancel()
		if err == nil {
			s.Logger.Info("listen: Temporal answers again; receiving events")
			return
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// unreachable says whether err means the Temporal service could not be
// reached (as opposed to a start it refused).
func unreachable(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	if errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(errors.Unwrap(err)) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// checkRedrive warns when the queue has no dead-letter queue: a message the
// starter cannot use would then come back forever instead of being set
// aside for an operator. It only warns: the queue may be managed elsewhere,
// or the starter's role may not read its attributes.
func (s *Starter) checkRedrive(ctx context.Context, queueURL string) {
	out, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &queueURL, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		s.Logger.Warn("listen: could not read the queue's redrive policy (sqs:GetQueueAttributes)", "queue", queueURL, "err", err)
		return
	}
	if out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)] == "" {
		s.Logger.Warn("listen: the queue has no dead-letter queue: a message that is no S3 event, or whose run cannot start, comes back every visibility timeout forever; "+
			"give the queue a redrive policy (the local stack uses maxReceiveCount 5)", "queue", queueURL)
	}
}

// handle starts the runs a message asks for and reports whether the message
// is done with, and whether Temporal was unreachable.
func (s *Starter) handle(ctx context.Context, id *string, body string) (done, temporalDown bool) {
	objs, err := s3event.Parse(body)
	if errors.Is(err, s3event.ErrNotObjectCreated) {
		s.Logger.Info("listen: ignoring a message that is not an Object Created event", "message_id", aws.ToString(id), "reason", err)
		s.count(metrics.StarterMessages, map[string]string{"outcome": "ignored"})
		return true, false
	}
	if err != nil {
		s.Logger.Error("listen: malformed message left on the queue for its redrive policy", "message_id", aws.ToString(id), "err", err, "body", truncate(body, 300))
		s.count(metrics.StarterMessages, map[string]string{"outcome": "malformed"})
		return false, false
	}
	done = true
	for _, o := range objs {
		st, err := s.Start(ctx, objectRef(o.Bucket, o.Key, o.ETag, o.VersionID, o.Size, o.Sequencer))
		if err != nil {
			s.Logger.Error("listen: could not start a run; message left on the queue", "message_id", aws.ToString(id), "bucket", o.Bucket, "key", o.Key, "err", err)
			done = false
			temporalDown = temporalDown || unreachable(err)
			continue
		}
		s.Logger.Info("listen: feed", "workflow_id", st.WorkflowID, "run_id", st.RunID, "already_started", st.Existed, "pipeline", st.Pipeline)
	}
	outcome := "handled"
	if !done {
		outcome = "retried" // left on the queue: it comes back after its visibility timeout
	}
	s.count(metrics.StarterMessages, map[string]string{"outcome": outcome})
	return done, temporalDown
}

// BackfillStats counts what a backfill did. Gone counts listed objects
// deleted before their turn.
type BackfillStats struct {
	Listed, Started, Existed, Failed, Gone int
}

// Backfill starts a run for every object under prefix, at most perSecond a
// second. Objects that already have a run are skipped (no duplicate), so a
// backfill can be stopped and run again.
//
// Each listed object is looked up with HeadObject, as StartObject does: the
// listing has no version id, and on a versioned bucket the object's event
// names its version, so a Ref built from the listing's ETag would give the
// upload a second workflow id and load it twice. The lookup gives the same
// Ref as the event and StartObject on any bucket, versioned or not; it needs
// no permission beyond s3:GetObject, which StartObject needs already. (Not
// ListObjectVersions: it needs s3:ListBucketVersions and pages through
// every noncurrent version and delete marker of the prefix.)
func (s *Starter) Backfill(ctx context.Context, bucket, prefix string, perSecond float64, progress func(BackfillStats)) (BackfillStats, error) {
	var st BackfillStats
	interval := time.Duration(float64(time.Second) / max(perSecond, 0.001))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var token *string
	for {
		page, err := s.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix, ContinuationToken: token})
		if err != nil {
			return st, fmt.Errorf("backfill: list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			st.Listed++
			select {
			case <-ctx.Done():
				return st, ctx.Err()
			case <-tick.C:
			}
			key := aws.ToString(o.Key)
			ref, err := s.headRef(ctx, bucket, key)
			var r Started
			if err == nil {
				r, err = s.Start(ctx, ref)
			}
			switch {
			case isNotFound(err):
				st.Gone++
				s.Logger.Info("backfill: object deleted since the listing", "key", key)
			case err != nil:
				st.Failed++
				s.Logger.Error("backfill: could not start", "key", key, "err", err)
			case r.Existed:
				st.Existed++
			default:
				st.Started++
			}
			if progress != nil {
				progress(st)
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return st, nil
		}
		token = page.NextContinuationToken
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
