package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// The replay corpus grows: `make histories HISTORY_VERSION=name` records the
// runs of the current FeedWorkflow into a new directory,
// workflows/testdata/histories/<name>/, and never overwrites a recorded
// version (runs of it may still be in flight). The replay tests in
// workflows/ replay every version.
const (
	recordEnv  = "FEEDPIPE_RECORD_HISTORIES"
	versionEnv = "FEEDPIPE_HISTORY_VERSION"
)

// historyVersionDir is the new version's directory, checked as the test
// binary starts (so that a bad name fails at once, not after the runs).
var historyVersionDir = func() string {
	if os.Getenv(recordEnv) == "" {
		return ""
	}
	dir, err := newHistoryVersionDir(os.Getenv(versionEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "record histories:", err)
		os.Exit(2)
	}
	return dir
}()

// newHistoryVersionDir checks the version name and that no version of that
// name was recorded, and returns its directory (not yet created).
func newHistoryVersionDir(version string) (string, error) {
	if version == "" {
		return "", fmt.Errorf("%s is required: name the version of FeedWorkflow being recorded (e.g. %s=supersede-v2); it becomes workflows/testdata/histories/<name>/", versionEnv, versionEnv)
	}
	if version != filepath.Base(version) || version == "." || version == ".." {
		return "", fmt.Errorf("%s=%q: use a plain directory name, not a path", versionEnv, version)
	}
	root, err := devstack.FindRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "workflows", "testdata", "histories", version)
	if _, err := os.Stat(dir); err == nil {
		return "", fmt.Errorf("%s already exists: recorded versions are never overwritten (runs of them may be in flight); choose a new name with %s", dir, versionEnv)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return dir, nil
}

var createHistoryDir = sync.OnceValue(func() error {
	// Mkdir, not MkdirAll: the directory must be this recording's own.
	if err := os.MkdirAll(filepath.Dir(historyVersionDir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(historyVersionDir, 0o755); err != nil {
		return fmt.Errorf("%w; choose a new name with %s", err, versionEnv)
	}
	return nil
})

// recordHistory writes the run's event history to
// workflows/testdata/histories/$FEEDPIPE_HISTORY_VERSION/NAME.json when
// FEEDPIPE_RECORD_HISTORIES is set (`make histories HISTORY_VERSION=name`).
func recordHistory(t *testing.T, workflowID, name string) {
	t.Helper()
	if historyVersionDir == "" {
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
	if err := createHistoryDir(); err != nil {
		t.Fatalf("record histories: %v", err)
	}
	path := filepath.Join(historyVersionDir, name+".json")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644) // never overwrite
	if err != nil {
		t.Fatalf("record histories: %v", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events to %s", len(hist.Events), path)
}
