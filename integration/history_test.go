package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// recordHistory writes the run's event history to workflows/testdata/NAME.json
// when FEEDPIPE_RECORD_HISTORIES is set (`make histories`); the replay tests
// in workflows/ then check that the workflow code still replays it.
func recordHistory(t *testing.T, workflowID, name string) {
	t.Helper()
	if os.Getenv("FEEDPIPE_RECORD_HISTORIES") == "" {
		return
	}
	hist := &historypb.History{}
	it := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: " "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "workflows", "testdata", name+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events to %s", len(hist.Events), path)
}
