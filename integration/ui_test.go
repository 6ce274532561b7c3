package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/chromedp/chromedp"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/deploy"
	fpclients "github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/codec"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/freeport"
	"github.com/feedpipe/feedpipe/internal/harness"
	"github.com/feedpipe/feedpipe/workflows"
)

// What an operator sees in the Temporal Web UI, in a real browser: the
// run list filtered by FeedStage, a completed run's counts and a failed
// run's error type and message. The two runs are made by the worker and
// the starter as shipped with the payload codec on (a task queue and a
// source bucket of their own), so their inputs, results and failure
// messages are encrypted in Temporal: the UI shows them only through the
// codec server (`feedpipe codec-server`), which the browser is given as
// its codec endpoint, the UI's per-user Data Encoder setting.
// Screenshots of each page go to .run/ui/.
func TestUIShowsRunsToOperators(t *testing.T) {
	onStack(t)
	chromium := findChromium(t)
	if stack.UIURL == "" {
		t.Fatal("the package's stack runs without the Web UI")
	}
	ctx := testCtx(t, 4*time.Minute)
	t0 := time.Now()
	workerBin, starterBin, feedpipeBin := buildCmd(t, ctx, "worker"), buildCmd(t, ctx, "starter"), buildCmd(t, ctx, "feedpipe")

	key, err := codec.NewKey("ui-1")
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(t.TempDir(), "codec-keys")
	if err := os.WriteFile(keysFile, []byte(codec.KeyLine(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(codec.EnvKeysFile, keysFile) // for the worker, the starter and the codec server
	cfgPath, bucket, _ := ownPipelines(t, ctx, "feedpipe-ui")
	startServing(t, ctx, workerBin, "-config", cfgPath, "-temp-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0")

	n := time.Now().UnixNano()
	start := func(key string, body []byte) (wid, rid string) {
		putObject(t, ctx, bucket, key, body)
		cmd := exec.CommandContext(ctx, starterBin, "start", "-config", cfgPath, "-bucket", bucket, "-key", key)
		cmd.Env = append(os.Environ(), stack.Env()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("starter start: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`workflow (\S+) run (\S+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("starter start did not name the run: %s", out)
		}
		return string(m[1]), string(m[2])
	}
	good, _ := generate(t, feedgen.Options{Records: 300, Seed: 1})
	bad, _ := generate(t, feedgen.Options{Records: 100, BadEvery: 10, Seed: 6})
	doneID, doneRun := start(fmt.Sprintf("customers/ui-done-%d.ndjson", n), good)
	failedID, failedRun := start(fmt.Sprintf("customers/ui-over-%d.ndjson", n), bad)

	// A client as the programs dial it with the codec on: it decrypts
	// payloads and failures.
	opts, err := fpclients.TemporalOptions(os.LookupEnv, slog.New(slog.DiscardHandler))
	if err != nil || opts.FailureConverter == nil {
		t.Fatalf("client options with the codec: %+v, %v", opts, err)
	}
	opts.HostPort, opts.Namespace, opts.Logger = stack.TemporalAddress, stack.TemporalNamespace, harness.QuietLogger{}
	ctc, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ctc.Close()
	var res workflows.FeedResult
	if err := ctc.GetWorkflow(ctx, doneID, doneRun).Get(ctx, &res); err != nil {
		t.Fatalf("run %s: %v", doneID, err)
	}
	if res.Counts.Loaded != 300 {
		t.Fatalf("run %s loaded %d, want 300", doneID, res.Counts.Loaded)
	}
	err = ctc.GetWorkflow(ctx, failedID, failedRun).Get(ctx, nil)
	if workflows.ErrorType(err) != activities.ErrRejectThreshold || !strings.Contains(err.Error(), "rejected 10 of 100") {
		t.Fatalf("run %s: %v (type %q), want %s", failedID, err, workflows.ErrorType(err), activities.ErrRejectThreshold)
	}
	// What Temporal holds is encrypted: only the codec makes it readable.
	ev, err := tc.GetWorkflowHistory(ctx, doneID, doneRun, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	if err != nil {
		t.Fatal(err)
	}
	if in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads(); len(in) == 0 || string(in[0].GetMetadata()[converter.MetadataEncoding]) != codec.Encoding {
		t.Fatalf("run %s's input is not encrypted in its history: %v", doneID, in)
	}
	last, err := tc.GetWorkflowHistory(ctx, failedID, failedRun, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT).Next()
	if err != nil {
		t.Fatal(err)
	}
	if msg := last.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage(); msg == "" || strings.Contains(msg, "rejected") {
		t.Fatalf("run %s's failure message is in the clear in its history: %q", failedID, msg)
	}
	t.Logf("runs made in %s: %s (done), %s (failed)", time.Since(t0).Round(time.Millisecond), doneID, failedID)

	ports, err := freeport.GetN(1)
	if err != nil {
		t.Fatal(err)
	}
	codecURL := startCodecServer(t, ctx, feedpipeBin, ports[0])

	bctx := newBrowser(t, ctx, chromium)
	// The UI's per-user codec server setting (persisted stores in
	// localStorage), as an operator sets it in the UI's Codec Server
	// dialog: this endpoint, used instead of the cluster's (none here).
	endpoint, _ := json.Marshal(codecURL)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(stack.UIURL+"/namespaces/"+stack.TemporalNamespace+"/workflows"),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem("endpoint", %q); localStorage.setItem("overrideRemoteCodecConfiguration", "true")`, endpoint)),
	); err != nil {
		t.Fatal(err)
	}
	ns := url.PathEscape(stack.TemporalNamespace)
	page := func(path string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(stack.UIURL+path)); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}

	// a. The run list filtered by FeedStage: the completed run, not the failed one.
	page("/namespaces/" + ns + "/workflows?query=" + url.QueryEscape(`FeedStage="Done"`))
	waitText(t, bctx, time.Minute, []string{doneID}, []string{failedID})
	screenshot(t, bctx, "ui-runs-done.png", false)

	// b. The completed run's page: its result, decoded, with its counts.
	page("/namespaces/" + ns + "/workflows/" + url.PathEscape(doneID) + "/" + doneRun + "/history")
	waitText(t, bctx, time.Minute, []string{doneID, "COMPLETED", `"loaded": 300`, "WorkflowExecutionCompleted"}, nil)
	screenshot(t, bctx, "ui-run-completed.png", true)

	// c. The failed run's page: its error type and its message, decoded.
	page("/namespaces/" + ns + "/workflows/" + url.PathEscape(failedID) + "/" + failedRun + "/history")
	waitText(t, bctx, time.Minute, []string{failedID, "FAILED", activities.ErrRejectThreshold, "rejected 10 of 100", "WorkflowExecutionFailed"}, nil)
	screenshot(t, bctx, "ui-run-failed.png", true)
}

// The Grafana dashboard's queries, drawn (Grafana itself is not packaged
// for the test machines): Debian's Prometheus scrapes the worker and the
// starter run as shipped with -metrics-addr (a task queue, source bucket
// and event queue of their own) while feeds go through them; every query
// of every panel of deploy/grafana/feedpipe.json must be valid PromQL
// there, and the records-loaded query must find the feeds' records. A
// page lays the panels out in the dashboard's grid, each panel
// Prometheus's own graph page for its first query, and Chromium draws it:
// .run/ui/dashboard.png.
func TestDashboardQueriesDrawn(t *testing.T) {
	onStack(t)
	chromium, promBin := findChromium(t), findPrometheus(t)
	ctx := testCtx(t, 4*time.Minute)
	t0 := time.Now()
	panels := dashboardPanels(t)
	workerBin, starterBin := buildCmd(t, ctx, "worker"), buildCmd(t, ctx, "starter")
	cfgPath, bucket, _ := ownPipelines(t, ctx, "feedpipe-dash")
	queueName := fmt.Sprintf("feedpipe-dash-%d", time.Now().UnixNano())
	q, err := clients().SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &queueName})
	if err != nil {
		t.Fatal(err)
	}
	workerURL := startServing(t, ctx, workerBin, "-config", cfgPath, "-temp-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0")
	starterURL := startServing(t, ctx, starterBin, "listen", "-config", cfgPath, "-queue", aws.ToString(q.QueueUrl), "-metrics-addr", "127.0.0.1:0")
	prom := startPrometheus(t, ctx, promBin, workerURL, starterURL)

	// Feeds through the real event path of this starter: two first (one
	// with two bad lines, one over the reject threshold, which fails), so
	// that the counters exist before the others count (a rate needs two
	// samples), then three at once: clean, with a few bad lines, and
	// over the threshold.
	n := time.Now().UnixNano()
	send := func(name string, o feedgen.Options) feed.Ref {
		body, _ := generate(t, o)
		key := fmt.Sprintf("customers/dash-%s-%d.ndjson", name, n)
		out := putObject(t, ctx, bucket, key, body)
		ref := feed.Ref{Bucket: bucket, Key: key, ETag: strings.Trim(aws.ToString(out.ETag), `"`), Size: int64(len(body))}
		event := fmt.Sprintf(`{"version":"0","source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":%q},"object":{"key":%q,"size":%d,"etag":%q,"sequencer":"%016X"}}}`,
			bucket, key, len(body), ref.ETag, time.Now().UnixNano())
		if _, err := clients().SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: &event}); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	wait := func(ref feed.Ref) (workflows.FeedResult, error) {
		var res workflows.FeedResult
		for {
			err := tc.GetWorkflow(ctx, ref.WorkflowID(), "").Get(ctx, &res)
			var nf *serviceerror.NotFound
			if !errors.As(err, &nf) || ctx.Err() != nil {
				return res, err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var loaded int64
	batch := func(refs ...feed.Ref) {
		t.Helper()
		for _, ref := range refs {
			res, err := wait(ref)
			if over := strings.Contains(ref.Key, "-over"); (err != nil) != over {
				t.Fatalf("run %s: %v", ref.WorkflowID(), err)
			}
			loaded += res.Counts.Loaded
		}
	}
	batch(send("first", feedgen.Options{Records: 2000, BadEvery: 1000, Seed: 31}),
		send("first-over", feedgen.Options{Records: 200, BadEvery: 10, Seed: 32}))
	time.Sleep(5 * time.Second) // a few scrapes of the counters as they are
	batch(send("clean", feedgen.Options{Records: 5000, Seed: 33}),
		send("bad", feedgen.Options{Records: 4000, BadEvery: 500, Seed: 34}),
		send("over", feedgen.Options{Records: 200, BadEvery: 10, Seed: 35}))
	t.Logf("5 feeds through the worker in %s, %d records loaded", time.Since(t0).Round(time.Millisecond), loaded)

	// Every query is valid PromQL; the records-loaded one finds the feeds.
	subst := strings.NewReplacer(`$pipeline`, `.*`, `$__rate_interval`, `1m`)
	for _, p := range panels {
		for _, tg := range p.Targets {
			expr := subst.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: a dashboard variable this test does not substitute: %s", p.Title, expr)
				continue
			}
			if _, err := prom.query(ctx, expr); err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, expr, err)
			}
		}
	}
	loadedExpr := ""
	for _, p := range panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "feedpipe_records_loaded_total") {
				loadedExpr = subst.Replace(tg.Expr)
			}
		}
	}
	if loadedExpr == "" {
		t.Fatal("no panel of the dashboard queries feedpipe_records_loaded_total")
	}
	var result []promSample
	for {
		// The last scrape may lag the last run's end by a second.
		total, err := prom.query(ctx, `sum(feedpipe_records_loaded_total{pipeline="customers"})`)
		if err != nil {
			t.Fatal(err)
		}
		if result, err = prom.query(ctx, loadedExpr); err != nil {
			t.Fatal(err)
		}
		if len(total) == 1 && total[0].Value == float64(loaded) && len(result) > 0 {
			t.Logf("%s = %v; the worker's feedpipe_records_loaded_total, scraped, = %v (the runs loaded %d)", loadedExpr, result[0].Value, total[0].Value, loaded)
			break
		}
		if ctx.Err() != nil || time.Since(t0) > 3*time.Minute {
			t.Fatalf("%s returned %v and the scraped feedpipe_records_loaded_total %v; the runs loaded %d", loadedExpr, result, total, loaded)
		}
		time.Sleep(time.Second)
	}

	// The page: the dashboard's grid, each panel Prometheus's graph page
	// for its first query. It is served from the same origin as
	// Prometheus (a proxy), so the test can see into each panel's frame.
	// The graphs span the time Prometheus has scraped, in whole minutes.
	page := dashboardPage(panels, subst, fmt.Sprintf("%dm", int(time.Since(prom.started).Minutes())+1))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.html"), page, 0o644); err != nil {
		t.Fatal(err)
	}
	promURL, _ := url.Parse(prom.url)
	proxy := httputil.NewSingleHostReverseProxy(promURL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dashboard.html" {
			http.ServeFile(w, r, filepath.Join(dir, "dashboard.html"))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	bctx := newBrowser(t, ctx, chromium)
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/dashboard.html")); err != nil {
		t.Fatal(err)
	}
	// Each frame: "graph" once its graph is drawn, or the message the
	// graph page shows instead ("No datapoints found.", or an error).
	const states = `Array.from(document.querySelectorAll("iframe")).map(f => {
		const d = f.contentDocument;
		if (!d || d.readyState !== "complete") return "loading";
		const e = d.querySelector(".graph_wrapper .error");
		if (e && e.style.display !== "none" && e.innerText.trim() !== "") return e.innerText.trim();
		if (d.querySelector(".graph_area svg path")) return "graph";
		return "loading";
	})`
	waitDrawn := func() []string {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; {
			got, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](states))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == len(panels) && !slices.Contains(got, "loading") {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a minute the panels are %q", got)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	got := waitDrawn()
	drawn := 0
	for i, st := range got {
		t.Logf("panel %q: %s", panels[i].Title, st)
		switch {
		case st == "graph":
			drawn++
		case st != "No datapoints found.":
			t.Errorf("panel %q: Prometheus's graph page says %q", panels[i].Title, st)
		}
		if strings.Contains(panels[i].Targets[0].Expr, "feedpipe_records_read_total") && st != "graph" {
			t.Errorf("panel %q has no graph after the feeds", panels[i].Title)
		}
	}
	// For the picture, each frame shows its graph page without its
	// query box and range controls (the panel's heading shows the query,
	// the page's the range), with a lower graph, drawn again, and the
	// frame as tall as its page.
	const compact = `document.querySelectorAll("iframe").forEach(f => {
		const d = f.contentDocument;
		const s = d.createElement("style");
		s.textContent = "nav.navbar, .query-history, #add_graph, a[name=remove], .expression_input, .query_form .form-inline, .graph_container > .clearfix { display: none !important }" +
			" body { padding-top: 0 !important } .graph { min-height: 240px !important }";
		d.head.appendChild(s);
		d.querySelectorAll(".graph_area svg").forEach(e => e.remove());
		f.contentWindow.$(".query_form").submit();
	})`
	if err := chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](compact)); err != nil {
		t.Fatal(err)
	}
	if again := waitDrawn(); !slices.Equal(again, got) {
		t.Errorf("drawn again, the panels are %q; first %q", again, got)
	}
	const fit = `document.querySelectorAll("iframe").forEach(f => {
		const w = f.contentDocument.querySelector(".graph_wrapper");
		f.style.height = (w.getBoundingClientRect().bottom + f.contentWindow.scrollY + 8) + "px";
	})`
	if err := chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](fit)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	screenshot(t, bctx, "dashboard.png", true)
	t.Logf("%d of %d panels drawn a graph", drawn, len(panels))
}

// findPrometheus returns Prometheus's binary ($FEEDPIPE_PROMETHEUS or on
// PATH), or fails the test.
func findPrometheus(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FEEDPIPE_PROMETHEUS"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("FEEDPIPE_PROMETHEUS=%s: %v; run make browser, or point FEEDPIPE_PROMETHEUS at a Prometheus binary", p, err)
		}
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("no prometheus on PATH and FEEDPIPE_PROMETHEUS is not set: run make browser (installs Debian's chromium and prometheus)")
	}
	return p
}

type gridPanel struct {
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardPanels are deploy/grafana/feedpipe.json's panels in the order
// the grid shows them.
func dashboardPanels(t *testing.T) []gridPanel {
	t.Helper()
	var d struct {
		Panels []gridPanel `json:"panels"`
	}
	if err := json.Unmarshal(deploy.GrafanaDashboard, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("deploy/grafana/feedpipe.json has no panels")
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Fatalf("panel %q has no query", p.Title)
		}
	}
	sort.SliceStable(d.Panels, func(i, j int) bool {
		a, b := d.Panels[i].GridPos, d.Panels[j].GridPos
		return a.Y < b.Y || a.Y == b.Y && a.X < b.X
	})
	return d.Panels
}

// dashboardPage is an HTML page of the panels in the dashboard's 24-column
// grid, each a frame of Prometheus's graph page for its first query.
func dashboardPage(panels []gridPanel, subst *strings.Replacer, rangeInput string) []byte {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>feedpipe dashboard queries</title><style>
body { font-family: sans-serif; margin: 16px; background: #f4f5f5; color: #222 }
h1 { font-size: 20px; margin: 0 0 4px } p.note { margin: 0 0 12px; font-size: 13px; color: #555 }
.grid { display: grid; grid-template-columns: repeat(24, 1fr); gap: 8px }
.panel { background: #fff; border: 1px solid #ccc; border-radius: 3px; padding: 6px; min-width: 0 }
.panel h2 { font-size: 15px; margin: 0 0 4px } .panel code { display: block; font-size: 11px; color: #555; white-space: pre-wrap; word-break: break-all }
iframe { width: 100%; height: 600px; border: 0; display: block }
</style></head><body>
<h1>feedpipe's Grafana dashboard (deploy/grafana/feedpipe.json): its panels' queries, drawn with Prometheus's graph page</h1>
<p class="note">Not Grafana: each panel is Prometheus's own graph page for the panel's first query, with $pipeline = .* (All) and $__rate_interval = 1m, over the last ` + html.EscapeString(rangeInput) + `.
The data: a worker and a starter run as shipped, scraped every second while five feeds went through them (TestDashboardQueriesDrawn).</p>
<div class="grid">
`)
	for _, p := range panels {
		expr := subst.Replace(p.Targets[0].Expr)
		src := "/graph?" + url.Values{"g0.expr": {expr}, "g0.tab": {"0"}, "g0.range_input": {rangeInput}}.Encode()
		more := ""
		if n := len(p.Targets) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more queries, not drawn)", n)
		}
		fmt.Fprintf(&b, `<div class="panel" style="grid-column: %d / span %d"><h2>%s</h2><code>%s%s</code><iframe src="%s"></iframe></div>
`, p.GridPos.X+1, p.GridPos.W, html.EscapeString(p.Title), html.EscapeString(expr), more, html.EscapeString(src))
	}
	b.WriteString("</div></body></html>\n")
	return []byte(b.String())
}

// promServer is a running Prometheus.
type promServer struct {
	url     string
	started time.Time
}

type promSample struct {
	Metric map[string]string
	Value  float64
}

// startPrometheus runs Prometheus on a free port with its storage in a
// temporary directory, scraping each metrics URL every second, until the
// test ends; it returns once every target has been scraped.
func startPrometheus(t *testing.T, ctx context.Context, bin string, metricsURLs ...string) *promServer {
	t.Helper()
	var targets []string
	for _, u := range metricsURLs {
		pu, err := url.Parse(u)
		if err != nil || pu.Path != "/metrics" {
			t.Fatalf("metrics URL %s: %v", u, err)
		}
		targets = append(targets, fmt.Sprintf("%q", pu.Host))
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: feedpipe
    static_configs:
      - targets: [%s]
`, strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := freeport.GetN(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("prometheus log:\n%s", clip(string(b), 4000))
		}
	})
	p := &promServer{url: "http://" + addr, started: time.Now()}
	for {
		up, err := p.query(ctx, `up{job="feedpipe"} == 1`)
		if err == nil && len(up) == len(targets) {
			return p
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited: %v\n%s", err, clip(string(b), 4000))
		case <-ctx.Done():
			t.Fatalf("prometheus did not scrape %v: %v", targets, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// query runs an instant query through Prometheus's HTTP API; an invalid
// expression is an error.
func (p *promServer) query(ctx context.Context, expr string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error, ErrorType string
		Data                     struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", r.Data.ResultType)
	}
	var vec []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
		return nil, err
	}
	out := make([]promSample, 0, len(vec))
	for _, s := range vec {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("sample value %v: %w", s.Value[1], err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out, nil
}
