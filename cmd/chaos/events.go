package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/harness"
	"github.com/feedpipe/feedpipe/internal/s3event"
	"github.com/feedpipe/feedpipe/workflows"
)

// The faults of the event path and of the source object: events delivered
// more than once or out of order, a source overwritten or deleted while its
// run reads it, and messages on the feed queue that are no event at all.

// uploadDuplicated uploads the feeds with the starter stopped, takes their
// events off the queue and delivers each twice, then starts the starter; the
// fault delivers each a third time once its run has closed.
func uploadDuplicated(ctx context.Context, e *env) error {
	e.stopStarter()
	if err := harness.Upload(ctx, e.s3, e.feeds); err != nil {
		return err
	}
	bodies, err := e.takeEvents(ctx, len(e.feeds))
	if err != nil {
		return err
	}
	e.events = bodies
	for range 2 {
		for _, b := range bodies {
			if err := e.send(ctx, b); err != nil {
				return err
			}
		}
	}
	e.note("each of %d events delivered twice with the starter stopped", len(bodies))
	return e.startStarter()
}

// thirdDelivery waits for every run to close, delivers each event once more
// and waits until the starter has taken them all: each feed version must
// still have one run.
func thirdDelivery(ctx context.Context, e *env) error {
	for e.openRuns(ctx) > 0 {
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
	for _, b := range e.events {
		if err := e.send(ctx, b); err != nil {
			return err
		}
	}
	e.note("each event delivered a third time, after its run closed")
	if err := e.waitQueueEmpty(ctx, e.stack.AWS.FeedQueueURL); err != nil {
		return err
	}
	e.note("the starter took every delivery")
	return nil
}

// uploadOutOfOrder uploads each feed and then a newer version of the same
// key with the starter stopped, and delivers the newer upload's event first.
// The older version's content is gone: its run must fail saying so, with
// nothing loaded, and the newer one must land.
func uploadOutOfOrder(ctx context.Context, e *env) error {
	e.stopStarter()
	if err := harness.Upload(ctx, e.s3, e.feeds); err != nil {
		return err
	}
	older := e.feedList()
	versions, err := e.uploadNewVersions(ctx, failClean)
	if err != nil {
		return err
	}
	newer := map[string]bool{} // ETags of the newer uploads
	for _, v2 := range versions {
		newer[v2.Ref.ETag] = true
	}
	bodies, err := e.takeEvents(ctx, 2*len(older))
	if err != nil {
		return err
	}
	// Every newer upload's event first, then the older ones'.
	isNewer := func(body string) bool {
		objs, _ := s3event.Parse(body)
		return len(objs) == 1 && newer[objs[0].ETag]
	}
	slices.SortStableFunc(bodies, func(a, b string) int {
		switch na, nb := isNewer(a), isNewer(b); {
		case na && !nb:
			return -1
		case nb && !na:
			return 1
		}
		return 0
	})
	for _, b := range bodies {
		if err := e.send(ctx, b); err != nil {
			return err
		}
	}
	e.note("%d keys uploaded twice; the newer events delivered before the older ones", len(bodies)/2)
	return e.startStarter()
}

// replaceMidPut waits until a run is in PutToKinesis, then overwrites or
// deletes every feed's source and SIGKILLs the worker, so that the retried
// puts read their source again from their checkpoints. A run that had read
// its whole source before lands with that version; the others must fail
// saying what happened, with nothing loaded, and never mix two versions.
// An overwritten key's new upload must land.
func replaceMidPut(overwrite bool) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		if err := e.waitStage(ctx, workflows.StagePut); err != nil {
			return err
		}
		at := e.stages(ctx)
		feeds := e.feedList()
		if overwrite {
			if _, err := e.uploadNewVersions(ctx, landOrFailClean); err != nil {
				return err
			}
		} else {
			for i, f := range feeds {
				e.setPlan(i, landOrFailClean)
				if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.Ref.Bucket, Key: &f.Ref.Key}); err != nil {
					return fmt.Errorf("delete s3://%s/%s: %w", f.Ref.Bucket, f.Ref.Key, err)
				}
			}
		}
		what, why := "deleted", "was deleted after it was uploaded"
		if overwrite {
			what, why = "overwritten by a new upload", "was overwritten after this upload"
		}
		e.note("%d sources %s (%s)", len(feeds), what, at)
		stages := e.killWorker(ctx)
		e.note("worker SIGKILLed (%s)", stages)
		if !sleep(ctx, 3*time.Second) {
			return ctx.Err()
		}
		if _, err := e.startWorker(); err != nil {
			return err
		}
		// The fault is injected once a run has failed for it: wait for the
		// old versions' runs and look at how they ended.
		failed := 0
		for _, f := range feeds {
			_, err := harness.WaitClosed(ctx, e.tc, f.Ref, nil)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil && strings.Contains(err.Error(), why) {
				failed++
			}
		}
		e.note("%d of %d runs failed saying their source %s; the others had read it whole", failed, len(feeds), why)
		if failed == 0 {
			return errors.New("no run read its source after it was " + what)
		}
		return nil
	}
}

// poisonMessages are bodies on the feed queue that no S3 event has: each must
// end in the dead-letter queue without holding up the feeds beside it.
var poisonMessages = []string{
	"this is not JSON",
	`{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{}}}`,
	`{"Records":"not a list"}`,
}

// uploadWithPoison puts the poison messages on the queue, then the feeds.
func uploadWithPoison(ctx context.Context, e *env) error {
	for _, b := range poisonMessages {
		if err := e.send(ctx, b); err != nil {
			return err
		}
	}
	e.note("%d poison messages sent to the feed queue", len(poisonMessages))
	return harness.Upload(ctx, e.s3, e.feeds)
}

// poisonToDLQ waits until every poison message is in the dead-letter queue.
func poisonToDLQ(ctx context.Context, e *env) error {
	for {
		n, err := e.queueDepth(ctx, e.stack.AWS.FeedDLQURL)
		if err != nil {
			return err
		}
		if n >= len(poisonMessages) {
			e.note("%d messages in the dead-letter queue %s", n, e.stack.Names.FeedDLQ)
			return nil
		}
		if !sleep(ctx, 5*time.Second) {
			return fmt.Errorf("%d of %d poison messages reached the dead-letter queue: %w", n, len(poisonMessages), ctx.Err())
		}
	}
}

// stopStarter stops the starter (SIGTERM): events wait on the queue.
func (e *env) stopStarter() {
	if e.starter != nil {
		e.starter.Stop(5 * time.Second)
		e.starter = nil
	}
}

// takeEvents receives n Object Created messages from the feed queue, deletes
// them, and returns their bodies in the order received.
func (e *env) takeEvents(ctx context.Context, n int) ([]string, error) {
	var bodies []string
	deadline := time.Now().Add(time.Minute)
	for len(bodies) < n {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d events reached the feed queue within a minute", len(bodies), n)
		}
		out, err := e.aws.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &e.stack.AWS.FeedQueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			return nil, fmt.Errorf("receive from the feed queue: %w", err)
		}
		for _, m := range out.Messages {
			body := aws.ToString(m.Body)
			if _, err := s3event.Parse(body); err != nil {
				return nil, fmt.Errorf("the feed queue held a message that is no Object Created event: %v: %s", err, body)
			}
			bodies = append(bodies, body)
			if _, err := e.aws.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &e.stack.AWS.FeedQueueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("delete a message of the feed queue: %w", err)
			}
		}
	}
	return bodies, nil
}

func (e *env) send(ctx context.Context, body string) error {
	if _, err := e.aws.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &e.stack.AWS.FeedQueueURL, MessageBody: &body}); err != nil {
		return fmt.Errorf("send to the feed queue: %w", err)
	}
	return nil
}

// queueDepth is how many messages a queue holds, visible or in flight.
func (e *env) queueDepth(ctx context.Context, url string) (int, error) {
	out, err := e.aws.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("attributes of %s: %w", url, err)
	}
	visible, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible + inFlight, nil
}

func (e *env) waitQueueEmpty(ctx context.Context, url string) error {
	for {
		n, err := e.queueDepth(ctx, url)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return fmt.Errorf("%d messages still on %s: %w", n, url, ctx.Err())
		}
	}
}

// uploadNewVersions uploads a new version of every feed so far, each
// planned to land, and gives the feeds it replaces the plan old.
func (e *env) uploadNewVersions(ctx context.Context, old plan) ([]harness.Feed, error) {
	var out []harness.Feed
	for i, f := range e.feedList() {
		v2, err := e.uploadVersion(ctx, f)
		if err != nil {
			return nil, err
		}
		e.addFeed(v2, land)
		e.setPlan(i, old)
		out = append(out, v2)
	}
	return out, nil
}

// uploadVersion uploads a new feed to f's key: 500 lines longer than f, so
// that a run which mixed the two versions could not reconcile.
func (e *env) uploadVersion(ctx context.Context, f harness.Feed) (harness.Feed, error) {
	var b bytes.Buffer
	st, err := feedgen.Write(&b, feedgen.Options{Records: f.Stats.Lines + 500, BadEvery: 1000, Seed: e.rng.Uint64()})
	if err != nil {
		return harness.Feed{}, err
	}
	v2 := harness.Feed{Body: b.Bytes(), Stats: st, Ref: f.Ref}
	v2.Ref.ETag, v2.Ref.Size = "", int64(b.Len())
	up := []harness.Feed{v2}
	if err := harness.Upload(ctx, e.s3, up); err != nil {
		return harness.Feed{}, err
	}
	if up[0].Ref.ETag == f.Ref.ETag {
		return harness.Feed{}, fmt.Errorf("the new upload of %s has the old ETag %s", filepath.Base(f.Ref.Key), f.Ref.ETag)
	}
	return up[0], nil
}

// newVersionsInFlight uploads a new version of every key while the first
// uploads' runs are in PutToKinesis, then freezes fakesnow from the first
// Convert until every run waits in ConfirmIngestion, so that both versions
// of each key are confirmed at about the same moment, in either order. On
// the replace pipeline only the newer version's rows may remain, whichever
// was confirmed first.
func newVersionsInFlight(ctx context.Context, e *env) error {
	if err := e.waitStage(ctx, workflows.StagePut); err != nil {
		return err
	}
	at := e.stages(ctx)
	// The first upload is overwritten while its put reads it: a put
	// retried after that finds it gone and fails cleanly.
	versions, err := e.uploadNewVersions(ctx, landOrFailClean)
	if err != nil {
		return err
	}
	e.note("a new version of each of %d keys uploaded (%s)", len(versions), at)
	if err := e.waitStage(ctx, workflows.StageConvert, workflows.StageConfirm); err != nil {
		return err
	}
	if err := e.stack.Freeze(devstack.PartFakesnow); err != nil {
		return err
	}
	e.note("fakesnow frozen (%s)", e.stages(ctx))
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		at = e.stages(ctx)
		if !strings.Contains(at, workflows.StagePut+"×") && !strings.Contains(at, workflows.StageDelivery+"×") && !strings.Contains(at, workflows.StageConvert+"×") {
			break
		}
		if !sleep(ctx, time.Second) {
			break
		}
	}
	if err := e.stack.Thaw(devstack.PartFakesnow); err != nil {
		return err
	}
	e.note("fakesnow thawed (%s): the versions are confirmed together", at)
	return nil
}

// resetAfterOutage freezes fakesnow from the first Convert until every run
// has failed in ConfirmIngestion past the shipped ingestion deadline, thaws
// it, and then does what the README tells an operator: the first run is
// reset with the `feedpipe reset` command its failure names, the others are
// started again with `starter start`. Every feed must then land once.
func resetAfterOutage(ctx context.Context, e *env) error {
	if err := e.waitStage(ctx, workflows.StageConvert); err != nil {
		return err
	}
	if err := e.stack.Freeze(devstack.PartFakesnow); err != nil {
		return err
	}
	e.note("fakesnow frozen (%s) past the ingestion deadline (%s)", e.stages(ctx), e.p.Deadlines.Ingest.Std())
	for e.openRuns(ctx) > 0 {
		if !sleep(ctx, 5*time.Second) {
			_ = e.stack.Thaw(devstack.PartFakesnow)
			return ctx.Err()
		}
	}
	if err := e.stack.Thaw(devstack.PartFakesnow); err != nil {
		return err
	}
	e.note("every run failed; fakesnow thawed")
	for i, f := range e.feedList() {
		_, err := harness.WaitClosed(ctx, e.tc, f.Ref, nil)
		if err == nil {
			return fmt.Errorf("%s completed with Snowflake frozen", f.Ref.Key)
		}
		command := "feedpipe reset -workflow-id '" + f.Ref.WorkflowID() + "'"
		if !strings.Contains(err.Error(), command) {
			return fmt.Errorf("%s failed without naming %q: %v", f.Ref.Key, command, err)
		}
		var cmd *exec.Cmd
		if i == 0 {
			cmd = exec.CommandContext(ctx, e.bins.Feedpipe, "reset", "-workflow-id", f.Ref.WorkflowID())
		} else {
			cmd = exec.CommandContext(ctx, e.bins.Starter, "start", "-config", e.cfgPath, "-bucket", f.Ref.Bucket, "-key", f.Ref.Key)
		}
		cmd.Env = e.procEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args[1:3], " "), err, out)
		}
		e.note("%s %s: %s", filepath.Base(cmd.Path), cmd.Args[1], strings.TrimSpace(string(out)))
	}
	return nil
}
