package integration

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/chromedp/chromedp"

	"github.com/feedpipe/feedpipe/activities"
	fpclients "github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/codec"
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
	screenshot(t, bctx, "ui-runs-done.png")

	// b. The completed run's page: its result, decoded, with its counts.
	page("/namespaces/" + ns + "/workflows/" + url.PathEscape(doneID) + "/" + doneRun + "/history")
	waitText(t, bctx, time.Minute, []string{doneID, "Completed", `"loaded": 300`}, nil)
	screenshot(t, bctx, "ui-run-completed.png")

	// c. The failed run's page: its error type and its message, decoded.
	page("/namespaces/" + ns + "/workflows/" + url.PathEscape(failedID) + "/" + failedRun + "/history")
	waitText(t, bctx, time.Minute, []string{failedID, "Failed", activities.ErrRejectThreshold, "rejected 10 of 100"}, nil)
	screenshot(t, bctx, "ui-run-failed.png")
}
