package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/feedpipe/feedpipe/deploy"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/workflows"
)

// The worker and the starter, run as shipped with -metrics-addr, serve the
// SDK's metrics and feedpipe's, and feedpipe's agree with the run's result.
// The run has a task queue and a source bucket of its own (without events),
// so the package's shared worker and listener see none of it; its event is
// sent to a queue of its own, twice.
func TestMetricsMatchTheRun(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	workerBin, starterBin := buildCmd(t, ctx, "worker"), buildCmd(t, ctx, "starter")
	c := clients()
	n := time.Now().UnixNano()
	cfgPath, bucket, _ := ownPipelines(t, ctx, "feedpipe-metrics")
	queueName := fmt.Sprintf("feedpipe-metrics-%d", n)
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &queueName})
	if err != nil {
		t.Fatal(err)
	}

	workerURL := startServing(t, ctx, workerBin, "-config", cfgPath, "-temp-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0")
	starterURL := startServing(t, ctx, starterBin, "listen", "-config", cfgPath, "-queue", aws.ToString(q.QueueUrl), "-metrics-addr", "127.0.0.1:0")

	body, st := generate(t, feedgen.Options{Records: 400, BadEvery: 100, Seed: 7})
	key := fmt.Sprintf("customers/metrics-%d.ndjson", n)
	out := putObject(t, ctx, bucket, key, body)
	ref := feed.Ref{Bucket: bucket, Key: key, ETag: strings.Trim(aws.ToString(out.ETag), `"`), Size: int64(len(body))}
	event := fmt.Sprintf(`{"version":"0","source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":%q},"object":{"key":%q,"size":%d,"etag":%q,"sequencer":"%016X"}}}`,
		bucket, key, len(body), ref.ETag, n)
	for range 2 {
		if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: &event}); err != nil {
			t.Fatal(err)
		}
	}
	// While the run is open, the worker's in-flight gauge counts it (its
	// first scrape asks visibility, once visibility has the run).
	running := fmt.Sprintf("WorkflowId = %q AND ExecutionStatus = 'Running'", ref.WorkflowID())
	for {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: stack.TemporalNamespace, Query: running})
		if err == nil && resp.GetCount() == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("visibility never showed run %s running", ref.WorkflowID())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := scrapeMetrics(t, ctx, workerURL).value("feedpipe_feeds_in_flight", "pipeline", "customers"); got != 1 {
		t.Errorf("worker: feedpipe_feeds_in_flight{pipeline=customers} summed over stages = %v while the run was open, want 1", got)
	}
	var res workflows.FeedResult
	for {
		err := tc.GetWorkflow(ctx, ref.WorkflowID(), "").Get(ctx, &res)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("run %s: %v", ref.WorkflowID(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res.Counts.Rejected != int64(st.Bad) || res.Counts.Loaded != int64(st.Good) {
		t.Fatalf("run counts %+v, want %d rejected and %d loaded", res.Counts, st.Bad, st.Good)
	}

	// Both events were taken: one start, one found started.
	var sm scrape
	for {
		sm = scrapeMetrics(t, ctx, starterURL)
		if sm.value("feedpipe_starter_messages_total", "outcome", "handled") == 2 || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"feedpipe_starter_messages_total", []string{"outcome", "handled"}, 2},
		{"feedpipe_starts_total", []string{"pipeline", "customers", "outcome", "started"}, 1},
		{"feedpipe_starts_total", []string{"pipeline", "customers", "outcome", "existed"}, 1},
		{"feedpipe_starts_total", []string{"outcome", "failed"}, 0},
	} {
		if got := sm.value(c.name, c.labels...); got != c.want {
			t.Errorf("starter: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sm.value("temporal_request_total", "operation", "StartWorkflowExecution") < 2 {
		t.Errorf("starter: the SDK's temporal_request_total{operation=StartWorkflowExecution} is missing or below 2")
	}

	wm := scrapeMetrics(t, ctx, workerURL)
	cnt := res.Counts
	for _, c := range []struct {
		name string
		want int64
	}{
		{"feedpipe_records_read_total", cnt.Read},
		{"feedpipe_records_rejected_total", cnt.Rejected},
		{"feedpipe_records_put_total", cnt.Put},
		{"feedpipe_records_delivered_total", cnt.Delivered},
		{"feedpipe_records_converted_total", cnt.Converted},
		{"feedpipe_records_loaded_total", cnt.Loaded},
		{"feedpipe_duplicates_total", res.Duplicates},
		{"feedpipe_resends_total", res.Resends},
	} {
		if got := wm.value(c.name, "pipeline", "customers"); got != float64(c.want) {
			t.Errorf("worker: %s{pipeline=customers} = %v, the run's result says %d", c.name, got, c.want)
		}
	}
	if got := wm.value("feedpipe_feeds_finished_total", "pipeline", "customers", "outcome", "done"); got != 1 {
		t.Errorf("worker: feedpipe_feeds_finished_total{outcome=done} = %v, want 1", got)
	}
	for _, stage := range workflows.RunningStages() {
		h := wm.histogram("feedpipe_stage_duration_seconds", "pipeline", "customers", "stage", stage, "outcome", "ok")
		if h == nil || h.GetSampleCount() != 1 {
			t.Errorf("worker: feedpipe_stage_duration_seconds{stage=%s,outcome=ok} has %v samples, want 1", stage, h.GetSampleCount())
			continue
		}
		if want := res.Durations[stage].Seconds(); h.GetSampleSum() < want-0.001 || h.GetSampleSum() > want+0.001 {
			t.Errorf("worker: %s took %.3f s in the histogram, %.3f s in the result", stage, h.GetSampleSum(), want)
		}
		if _, ok := wm.find("feedpipe_feeds_in_flight", "pipeline", "customers", "stage", stage); !ok {
			t.Errorf("worker: no feedpipe_feeds_in_flight{pipeline=customers,stage=%s}", stage)
		}
	}
	// Once the run has closed, nothing is in flight (within the gauge's
	// 10 s cache).
	for wait := time.Now().Add(30 * time.Second); ; {
		got := scrapeMetrics(t, ctx, workerURL).value("feedpipe_feeds_in_flight", "pipeline", "customers")
		if got == 0 {
			break
		}
		if time.Now().After(wait) {
			t.Errorf("worker: feedpipe_feeds_in_flight{pipeline=customers} = %v 30 s after the run closed, want 0", got)
			break
		}
		time.Sleep(time.Second)
	}
	if h := wm.histogram("temporal_activity_execution_latency_seconds", "activity_type", "PutToKinesis"); h == nil || h.GetSampleCount() < 1 {
		t.Errorf("worker: the SDK's temporal_activity_execution_latency_seconds{activity_type=PutToKinesis} is missing")
	}

	// The Grafana dashboard reads only metrics the programs export. A
	// counter is exported once it has counted: these may not have here.
	names, err := deploy.DashboardMetrics()
	if err != nil {
		t.Fatal(err)
	}
	countedOnly := map[string]bool{"feedpipe_duplicates_total": res.Duplicates == 0, "feedpipe_resends_total": res.Resends == 0, "temporal_activity_execution_failed_total": true}
	for _, n := range names {
		if wm[n] == nil && sm[n] == nil && !countedOnly[n] {
			t.Errorf("the dashboard reads %s, which neither the worker nor the starter exports", n)
		}
	}
}

// startServing starts a program that serves metrics and returns their URL,
// read from its log; the program is stopped with SIGTERM at the test's end.
func startServing(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), stack.Env()...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		re := regexp.MustCompile(`url=(http://\S+/metrics)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logFile, stderr)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { <-copied; done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", filepath.Base(bin), b)
		}
	})
	select {
	case u := <-urls:
		return u
	case <-ctx.Done():
		t.Fatalf("%s did not say where it serves metrics (see its log below)", filepath.Base(bin))
	case <-time.After(time.Minute):
		t.Fatalf("%s did not say where it serves metrics within a minute (see its log below)", filepath.Base(bin))
	}
	return ""
}

// scrape is one scrape's metric families by name.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, ctx context.Context, url string) scrape {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return fams
}

// find returns the first series of name whose labels include the pairs.
func (s scrape) find(name string, pairs ...string) (*dto.Metric, bool) {
	for _, m := range s.all(name, pairs...) {
		return m, true
	}
	return nil, false
}

func (s scrape) all(name string, pairs ...string) []*dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(pairs); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// value sums the counters or gauges of name whose labels include the pairs
// (0 when there are none: a counter never added to is not exported).
func (s scrape) value(name string, pairs ...string) float64 {
	var v float64
	for _, m := range s.all(name, pairs...) {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v
}

// histogram returns the one histogram of name whose labels include the
// pairs, or nil.
func (s scrape) histogram(name string, pairs ...string) *dto.Histogram {
	ms := s.all(name, pairs...)
	if len(ms) != 1 {
		return nil
	}
	return ms[0].GetHistogram()
}
