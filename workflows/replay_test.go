package workflows

import (
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestReplayRecordedHistories replays histories of real runs on the local
// stack (recorded by `make histories`: a success in each conversion mode, a
// run retried after its worker was killed, a failed run). A change to
// FeedWorkflow that would break runs in flight fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d recorded histories in testdata, want at least 4; run `make histories`", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var h historypb.History
			if err := protojson.Unmarshal(b, &h); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(FeedWorkflow, workflowRegisterOptions())
			if err := r.ReplayWorkflowHistory(nil, &h); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
