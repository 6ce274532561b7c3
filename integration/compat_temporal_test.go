package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/feedpipe/feedpipe/internal/searchattr"
)

func echoWorkflow(ctx workflow.Context, in string) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, searchattr.FeedStage.ValueSet("Done")); err != nil {
		return "", err
	}
	return "echo " + in, nil
}

// Temporal: the embedded server runs a workflow on a worker, has our search
// attributes registered with their types, and its Web UI serves its page and
// its API for the namespace.
func TestCompatTemporalServerAndUI(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c, err := client.Dial(client.Options{HostPort: stack.TemporalAddress, Namespace: stack.TemporalNamespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	queue := fmt.Sprintf("compat-%d", time.Now().UnixNano())
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(echoWorkflow)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: queue, TaskQueue: queue,
		TypedSearchAttributes: temporal.NewSearchAttributes(searchattr.FeedPipeline.ValueSet("compat")),
	}, echoWorkflow, "hi")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil || out != "echo hi" {
		t.Fatalf("workflow result %q, %v", out, err)
	}

	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: stack.TemporalNamespace})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range searchattr.Definitions() {
		if got := sas.CustomAttributes[name]; got != typ {
			t.Errorf("search attribute %s: %v, want %v", name, got, typ)
		}
	}
	// Visibility finds the run by the attributes it upserted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: stack.TemporalNamespace,
			Query:     `FeedPipeline = "compat" AND FeedStage = "Done" AND WorkflowId = "` + queue + `"`,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Executions) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility query found %d runs, want 1", len(resp.Executions))
		}
		time.Sleep(100 * time.Millisecond)
	}

	page := httpGet(t, ctx, stack.UIURL+"/namespaces/default/workflows")
	if !strings.Contains(page, "<html") {
		t.Errorf("UI page is not HTML: %.200s", page)
	}
	api := httpGet(t, ctx, stack.UIURL+"/api/v1/namespaces/default/workflows?query="+strings.ReplaceAll(`WorkflowId="`+queue+`"`, `"`, "%22"))
	if !strings.Contains(api, queue) || !strings.Contains(api, "WORKFLOW_EXECUTION_STATUS_COMPLETED") {
		t.Errorf("UI API does not list the completed run %s: %.400s", queue, api)
	}
}

func httpGet(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %.300s", url, resp.Status, b)
	}
	return string(b)
}
