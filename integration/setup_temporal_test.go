package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/searchattr"
)

// A namespace made without feedpipe's search attributes (as on a new
// production cluster) gets them from the worker at its start, and
// `feedpipe setup temporal` then finds them there.
func TestWorkerAddsSearchAttributesToABareNamespace(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	ns := fmt.Sprintf("bare-%d", time.Now().UnixNano())
	if _, err := tc.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	missing := func() []string {
		sas, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
		if err != nil {
			var nf *serviceerror.NamespaceNotFound
			if errors.As(err, &nf) {
				return []string{"(namespace not known yet)"}
			}
			t.Fatal(err)
		}
		var out []string
		for name, typ := range searchattr.Definitions() {
			if sas.CustomAttributes[name] != typ {
				out = append(out, name)
			}
		}
		return out
	}
	// A new namespace reaches every service of the server within its cache refresh.
	for m := missing(); len(m) > 0 && m[0] == "(namespace not known yet)"; m = missing() {
		if ctx.Err() != nil {
			t.Fatal("the new namespace never became known")
		}
		time.Sleep(time.Second)
	}
	if m := missing(); len(m) != len(searchattr.Definitions()) {
		t.Fatalf("a new namespace already has some of feedpipe's attributes (missing only %v)", m)
	}

	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), stack.Env()...)
	env = append(env, "TEMPORAL_NAMESPACE="+ns, "FEEDPIPE_CONFIG="+root+"/pipelines.local.toml")
	worker := exec.CommandContext(ctx, buildCmd(t, ctx, "worker"))
	worker.Env = env
	logPath := filepath.Join(t.TempDir(), "worker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	worker.Stdout, worker.Stderr = logFile, logFile
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { worker.Process.Signal(os.Interrupt); worker.Wait() }()
	for m := missing(); len(m) > 0; m = missing() {
		if ctx.Err() != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("the worker did not add %v; its log:\n%s", m, log)
		}
		time.Sleep(500 * time.Millisecond)
	}

	setup := exec.CommandContext(ctx, buildCmd(t, ctx, "feedpipe"), "setup", "temporal")
	setup.Env = env
	out, err := setup.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "already there") {
		t.Fatalf("feedpipe setup temporal: %v\n%s", err, out)
	}
}
