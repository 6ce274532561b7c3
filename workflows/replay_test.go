package workflows

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
)

// historiesDir holds the replay corpus: one directory per recorded version of
// FeedWorkflow (`make histories HISTORY_VERSION=name` adds one and never
// overwrites), each with the histories of real runs on the local stack: a
// success in each conversion mode, a run retried after its worker was
// killed, a failed run.
const historiesDir = "testdata/histories"

// Replay corpus minimums: a version directory holds at least the four runs
// the recorder records, and the corpus keeps at least three versions (runs in
// flight may be of any version whose change-ids feed.go still handles).
const (
	minHistoryVersions = 3
	minVersionFiles    = 4
)

// recordedHistories returns the corpus's history files by version directory.
func recordedHistories(t *testing.T) map[string][]string {
	t.Helper()
	dirs, err := os.ReadDir(historiesDir)
	if err != nil {
		t.Fatalf("replay corpus: %v; record one with `make histories HISTORY_VERSION=name`", err)
	}
	out := map[string][]string{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(historiesDir, d.Name(), "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		out[d.Name()] = files
	}
	return out
}

// readHistory decodes a recorded history (protojson, as the recorder writes it).
func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h historypb.History
	if err := protojson.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &h
}

// replay replays h against the current FeedWorkflow.
func replay(t *testing.T, h *historypb.History) error {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(FeedWorkflow, workflowRegisterOptions())
	return r.ReplayWorkflowHistory(nil, h)
}

// TestReplayRecordedHistories replays every history of every recorded
// version (subtests version/file). A change to FeedWorkflow that would break
// runs in flight, of this version or an older one, fails here.
func TestReplayRecordedHistories(t *testing.T) {
	versions := recordedHistories(t)
	if len(versions) < minHistoryVersions {
		t.Fatalf("found %d recorded versions in %s, want at least %d; record one with `make histories HISTORY_VERSION=name`", len(versions), historiesDir, minHistoryVersions)
	}
	names := make([]string, 0, len(versions))
	for v := range versions {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		files := versions[v]
		if len(files) < minVersionFiles {
			t.Errorf("version %s has %d recorded histories, want at least %d (a recording that stopped early?); remove %s and record it again",
				v, len(files), minVersionFiles, filepath.Join(historiesDir, v))
		}
		for _, f := range files {
			t.Run(v+"/"+filepath.Base(f), func(t *testing.T) {
				if err := replay(t, readHistory(t, f)); err != nil {
					t.Fatalf("replay %s: %v", f, err)
				}
			})
		}
	}
}
