package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.temporal.io/sdk/worker"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/workflows"
)

// kinesisFaults is an HTTP proxy in front of MiniStack that makes Kinesis
// behave like a throttled stream, which no emulator does: every
// throttleEvery-th PutRecords call is refused whole with
// ProvisionedThroughputExceededException, and on the others every
// dropEvery-th entry is not forwarded and reported failed, as Kinesis does
// for a hot shard.
type kinesisFaults struct {
	throttleEvery, dropEvery int

	mu                        sync.Mutex
	calls, throttled, dropped int
	proxy                     *httputil.ReverseProxy
	target                    *url.URL
}

func newKinesisFaults(t *testing.T, target string, throttleEvery, dropEvery int) (*kinesisFaults, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &kinesisFaults{throttleEvery: throttleEvery, dropEvery: dropEvery, target: u, proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(f) // binds 127.0.0.1 on a free port
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *kinesisFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		f.proxy.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	if call%f.throttleEvery == 0 {
		f.mu.Lock()
		f.throttled++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", "ProvisionedThroughputExceededException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for stream (injected)"}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	records, _ := req["Records"].([]any)
	var keep []any
	var dropped []int
	for i, rec := range records {
		if len(records) > 1 && i%f.dropEvery == 0 {
			dropped = append(dropped, i)
			continue
		}
		keep = append(keep, rec)
	}
	req["Records"] = keep
	fwd, _ := json.Marshal(req)
	fr, err := http.NewRequestWithContext(r.Context(), http.MethodPost, f.target.String()+r.URL.Path, bytes.NewReader(fwd))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range r.Header { // X-Amz-Target routes the call; MiniStack checks no signature
		if k != "Content-Length" {
			fr.Header[k] = v
		}
	}
	out, err := http.DefaultClient.Do(fr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer out.Body.Close()
	respBody, _ := io.ReadAll(out.Body)
	var resp struct {
		FailedRecordCount int
		Records           []map[string]any
	}
	if out.StatusCode != http.StatusOK || json.Unmarshal(respBody, &resp) != nil {
		w.WriteHeader(out.StatusCode)
		_, _ = w.Write(respBody)
		return
	}
	merged := make([]map[string]any, 0, len(records))
	next := 0
	for i := range records {
		if len(dropped) > 0 && dropped[0] == i {
			dropped = dropped[1:]
			merged = append(merged, map[string]any{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard (injected)"})
			resp.FailedRecordCount++
			f.mu.Lock()
			f.dropped++
			f.mu.Unlock()
			continue
		}
		merged = append(merged, resp.Records[next])
		next++
	}
	b, _ := json.Marshal(map[string]any{"FailedRecordCount": resp.FailedRecordCount, "Records": merged})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = w.Write(b)
}

// Kinesis throttles whole calls and fails single entries: the put backs off,
// re-sends only what failed, and the feed lands with no line lost or doubled.
func TestFeedSurvivesKinesisThrottling(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	faults, proxyURL := newKinesisFaults(t, stack.AWSEndpoint, 4, 7)
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
	faults.mu.Lock()
	calls, throttled, dropped := faults.calls, faults.throttled, faults.dropped
	faults.mu.Unlock()
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
