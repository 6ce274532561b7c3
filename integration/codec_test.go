package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/feedpipe/feedpipe/internal/codec"
	"github.com/feedpipe/feedpipe/internal/freeport"
	"github.com/feedpipe/feedpipe/internal/harness"
	"github.com/feedpipe/feedpipe/workflows"
)

// With the codec configured, a run's history holds no plaintext: a worker
// and a starter run as shipped, with FEEDPIPE_CODEC_KEYS_FILE set, on a
// task queue and source bucket of their own; a plain client reading the
// history finds only encrypted payloads, none holding the feed key, the
// bucket, the pipeline or a bad line's value, while a client with the codec
// reads the result, and the codec server decodes a payload for the UI.
func TestCodecLeavesNoPlaintextInHistory(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	workerBin, starterBin, feedpipeBin := buildCmd(t, ctx, "worker"), buildCmd(t, ctx, "starter"), buildCmd(t, ctx, "feedpipe")

	key, err := codec.NewKey("it-1")
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(t.TempDir(), "codec-keys")
	if err := os.WriteFile(keysFile, []byte(codec.KeyLine(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The programs started below read it (startServing passes the test's
	// environment on); the package's own worker dials without it.
	t.Setenv(codec.EnvKeysFile, keysFile)

	cfgPath, bucket, _ := ownPipelines(t, ctx, "feedpipe-codec")
	startServing(t, ctx, workerBin, "-config", cfgPath, "-temp-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0")

	// 300 good lines and one bad one (1 in 301, under customers' 1 %).
	const planted = "PLANTED-7731-SECRET"
	var body bytes.Buffer
	for i := 1; i <= 300; i++ {
		fmt.Fprintf(&body, `{"id":%d,"name":"codec-%d"}`+"\n", i, i)
		if i == 150 {
			fmt.Fprintf(&body, `{"id":%q,"name":"bad"}`+"\n", planted)
		}
	}
	objKey := fmt.Sprintf("customers/codec-%d.ndjson", time.Now().UnixNano())
	putObject(t, ctx, bucket, objKey, body.Bytes())

	start := exec.CommandContext(ctx, starterBin, "start", "-config", cfgPath, "-bucket", bucket, "-key", objKey)
	start.Env = append(os.Environ(), stack.Env()...)
	out, err := start.CombinedOutput()
	if err != nil {
		t.Fatalf("starter start: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`workflow (\S+) run (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("starter start did not name the run: %s", out)
	}
	wid, rid := string(m[1]), string(m[2])

	c, err := codec.FromEnv(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctc, err := client.Dial(client.Options{HostPort: stack.TemporalAddress, Namespace: stack.TemporalNamespace,
		DataConverter: codec.DataConverter(c), Logger: harness.QuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ctc.Close()
	var res workflows.FeedResult
	if err := ctc.GetWorkflow(ctx, wid, rid).Get(ctx, &res); err != nil {
		t.Fatalf("run %s: %v", wid, err)
	}
	if res.Counts.Read != 301 || res.Counts.Rejected != 1 || res.Counts.Loaded != 300 {
		t.Fatalf("counts %+v, want 301 read, 1 rejected, 300 loaded", res.Counts)
	}
	// The progress query (answered from the closed run's history) names
	// the bad line's field and kind, not its value; the quarantine object
	// keeps both the raw line and the reason quoting it.
	qv, err := ctc.QueryWorkflow(ctx, wid, rid, workflows.ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var prog workflows.Progress
	if err := qv.Get(&prog); err != nil {
		t.Fatal(err)
	}
	if len(prog.FirstBad) != 1 || prog.FirstBad[0].Line != 151 || prog.FirstBad[0].Reason != `field "id": want int64, got a string (19 chars)` {
		t.Errorf("first bad lines %+v", prog.FirstBad)
	}
	q := getObject(t, ctx, stack.Names.QuarantineBucket, res.QuarantineKey, "")
	if !bytes.Contains(q, []byte(`"raw":"{\"id\":\"`+planted+`\",\"name\":\"bad\"}"`)) || !bytes.Contains(q, []byte(`want an integer, got \"`+planted)) {
		t.Errorf("quarantine object s3://%s/%s lacks the raw line or the full reason: %s", stack.Names.QuarantineBucket, res.QuarantineKey, q)
	}
	var plainRes workflows.FeedResult
	if err := tc.GetWorkflow(ctx, wid, rid).Get(ctx, &plainRes); err == nil {
		t.Error("a client without the codec read the result")
	}

	markers := []string{objKey, bucket, "customers", planted, "codec-150"}
	var payloads []*commonpb.Payload
	var first *commonpb.Payload
	events := 0
	it := tc.GetWorkflowHistory(ctx, wid, rid, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		payloads = collectPayloads(ev.ProtoReflect(), payloads)
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil && len(a.GetInput().GetPayloads()) > 0 {
			first = a.GetInput().GetPayloads()[0] // the run's input
		}
		// Failure messages are text, not payloads: encrypted failures say
		// only "Encoded failure".
		for _, mk := range markers[:4] {
			if f := failureMessages(ev.ProtoReflect()); strings.Contains(f, mk) {
				t.Errorf("event %d (%s): a failure message holds %q: %s", ev.GetEventId(), ev.GetEventType(), mk, f)
			}
		}
	}
	if len(payloads) < 5 {
		t.Fatalf("%d payloads in %d events; expected the input, activity inputs and results, and the result", len(payloads), events)
	}
	for i, p := range payloads {
		if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != codec.Encoding || string(p.GetMetadata()[codec.MetadataKeyID]) != "it-1" {
			t.Errorf("payload %d: encoding %q, key %q; want %s with key it-1", i, enc, p.GetMetadata()[codec.MetadataKeyID], codec.Encoding)
		}
		for _, mk := range markers {
			if bytes.Contains(p.GetData(), []byte(mk)) {
				t.Errorf("payload %d holds %q in the clear", i, mk)
			}
		}
	}
	t.Logf("%d events, %d payloads, all encrypted", events, len(payloads))

	// The codec server decodes what the UI shows.
	ports, err := freeport.GetN(1)
	if err != nil {
		t.Fatal(err)
	}
	codecURL := startCodecServer(t, ctx, feedpipeBin, ports[0])
	body2, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{first}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, codecURL+"/decode", bytes.NewReader(body2))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", stack.TemporalNamespace)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var decoded commonpb.Payloads
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(dec, &decoded) != nil || len(decoded.Payloads) != 1 {
		t.Fatalf("codec server /decode: %s %s", resp.Status, dec)
	}
	if p := decoded.Payloads[0]; string(p.Metadata[converter.MetadataEncoding]) != "json/plain" || !bytes.Contains(p.Data, []byte(objKey)) {
		t.Errorf("codec server decoded the run's input to %s", p)
	}
}

// The Web UI of devtemporal, given a codec endpoint by the environment,
// tells the browser to decode payloads there.
func TestUIIsGivenTheCodecEndpoint(t *testing.T) {
	onStack(t)
	bin := os.Getenv("FEEDPIPE_DEVTEMPORAL")
	if bin == "" {
		t.Skip("FEEDPIPE_DEVTEMPORAL is not set (make devtemporal builds bin/devtemporal)")
	}
	ctx := testCtx(t, 2*time.Minute)
	ports, err := freeport.GetN(2)
	if err != nil {
		t.Fatal(err)
	}
	const endpoint = "http://127.0.0.1:18081"
	cmd := exec.CommandContext(ctx, bin, "-port", strconv.Itoa(ports[0]), "-ui-port", strconv.Itoa(ports[1]))
	cmd.Env = append(os.Environ(), "TEMPORAL_CODEC_ENDPOINT="+endpoint)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	var ready struct {
		UI string `json:"ui"`
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &ready) != nil || ready.UI == "" {
		t.Fatalf("devtemporal's ready line: %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready.UI+"/api/v1/settings", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var settings struct {
		Codec *struct{ Endpoint string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&settings); err != nil || settings.Codec == nil || settings.Codec.Endpoint != endpoint {
		t.Fatalf("UI settings: codec %+v, %v; want endpoint %s", settings.Codec, err, endpoint)
	}
}

// startCodecServer runs `feedpipe codec-server` on port with the test's
// environment and returns its URL once it answers.
func startCodecServer(t *testing.T, ctx context.Context, bin string, port int) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "codec-server", "-addr", addr, "-origin", stack.UIURL)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, url+"/decode", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return url
		}
		select {
		case err := <-done:
			t.Fatalf("feedpipe codec-server exited: %v\n%s", err, log.String())
		case <-ctx.Done():
			t.Fatalf("feedpipe codec-server did not answer: %s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// collectPayloads appends every Payload in m, except search attributes,
// which the server must read and the codec never sees.
func collectPayloads(m protoreflect.Message, out []*commonpb.Payload) []*commonpb.Payload {
	if !m.IsValid() {
		return out
	}
	switch m.Descriptor().FullName() {
	case "temporal.api.common.v1.SearchAttributes":
		return out
	case "temporal.api.common.v1.Payload":
		return append(out, proto.Clone(m.Interface()).(*commonpb.Payload))
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				out = collectPayloads(v.List().Get(i).Message(), out)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				out = collectPayloads(mv.Message(), out)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			out = collectPayloads(v.Message(), out)
		}
		return true
	})
	return out
}

// failureMessages joins the messages of every Failure in m.
func failureMessages(m protoreflect.Message) string {
	var b strings.Builder
	var walk func(protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if m.Descriptor().FullName() == "temporal.api.failure.v1.Failure" {
			b.WriteString(m.Get(m.Descriptor().Fields().ByName("message")).String() + "\n")
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message())
				}
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m)
	return b.String()
}
