package integration

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.temporal.io/sdk/worker"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/faultproxy"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// Kinesis throttles whole calls and fails single entries: the put backs off,
// re-sends only what failed, and the feed lands with no line lost or doubled.
func TestFeedSurvivesKinesisThrottling(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	// A proxy in front of MiniStack makes Kinesis behave like a throttled
	// stream, which no emulator does: every 4th PutRecords call is refused
	// whole with ProvisionedThroughputExceededException, and on the others
	// every 7th entry is not forwarded and reported failed, as Kinesis does
	// for a hot shard.
	target, err := url.Parse(stack.AWSEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	faults, proxyURL, stopProxy, err := faultproxy.Start(ctx, target, faultproxy.Config{
		Kinesis: faultproxy.KinesisFaults{ThrottleEvery: 4, FailEvery: 7},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopProxy)
	kin := kinesis.NewFromConfig(stack.AWSConfig(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(proxyURL) })

	queue := fmt.Sprintf("feedpipe-throttle-%d", time.Now().UnixNano())
	p, err := config.Get("customers")
	if err != nil {
		t.Fatal(err)
	}
	tp := *p
	tp.SourceBucket, tp.SourcePrefix = stack.Names.QuarantineBucket, "customers-throttle/"
	cfg := &pipeline.Config{TaskQueue: queue, Pipelines: []pipeline.Pipeline{tp}}
	sf := openSnowflake(t)
	c := clients()
	w := worker.New(tc, queue, workflows.WorkerOptions())
	workflows.Register(w, &activities.Activities{S3: c.S3, Kinesis: kin, Glue: c.Glue, Snowflake: sf})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	body, st := generate(t, feedgen.Options{Records: 3000, BadEvery: 1000, Seed: 10})
	key := fmt.Sprintf("customers-throttle/%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.QuarantineBucket, key, body)
	s := &starter.Starter{Temporal: tc, S3: c.S3, Config: cfg, Logger: starts.Logger}
	started, err := s.StartObject(ctx, stack.Names.QuarantineBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.FeedResult
	if err := tc.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, &res); err != nil {
		t.Fatalf("run failed under throttling: %v", err)
	}
	fs := faults.Stats()
	calls, throttled, dropped := fs.PutRecordsCalls, fs.ThrottledCalls, fs.FailedEntries
	t.Logf("PutRecords calls %d: %d throttled whole, %d entries failed; the put re-sent %d entries", calls, throttled, dropped, res.Resends)
	if throttled == 0 || dropped == 0 {
		t.Fatalf("the proxy injected no faults (%d throttled, %d dropped)", throttled, dropped)
	}
	if res.Resends != int64(dropped) {
		t.Errorf("the put re-sent %d entries, want exactly the %d that failed", res.Resends, dropped)
	}
	if res.Counts.Loaded != int64(st.Good) || res.Duplicates != 0 {
		t.Errorf("counts %+v, duplicates %d; want %d loaded, none doubled", res.Counts, res.Duplicates, st.Good)
	}
	if got := loadedRows(t, ctx, res.FeedID); len(got) != st.Good {
		t.Errorf("%d rows in Snowflake, want %d", len(got), st.Good)
	}
}
