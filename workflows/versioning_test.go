// Versioning policy for FeedWorkflow.
//
// When: any change that adds, removes or reorders a command of a run
// (activity, timer, marker, search-attribute upsert, child) or changes its
// activity type goes behind workflow.GetVersion(ctx, changeID,
// workflow.DefaultVersion, N): the DefaultVersion branch is the old code,
// exactly as it was, for runs started before the change. Changes to activity
// bodies, inputs with new tagged fields, or workflow code that issues the
// same commands need none (history_tags_test.go guards the payloads).
//
// Naming: the change-id says what the new code does, in kebab case
// ("record-upload-before-confirm", "supersede-earlier-uploads"); never reuse
// one. A later change of the same step raises its max version (1 → 2) and
// keeps the branches of the older versions.
//
// Recording: after the change, `make histories HISTORY_VERSION=<change-id>`
// adds the new version's runs to the replay corpus; the older versions stay
// and must keep replaying. A test here shows which branch each version takes.
//
// Removal: a change-id (and its old branch) may go only when no run older
// than its version can be open or be reset (`feedpipe reset` replays the old
// history): after the version has been deployed for longer than the longest
// pipeline's deadline sum (put + delivery + convert + ingest, plus the
// supersede step's 10 minutes; 3h10m with the default deadlines) plus the
// namespace's retention period; confirm with a visibility query that no run
// started before the deploy is open. Then also remove the histories of the
// versions before it from the corpus, in the same commit.
package workflows

import (
	"strconv"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
)

// steps are the commands of a history, in order: each activity scheduled
// (its type) and version marker ("version:<change-id>=<version>").
func steps(t *testing.T, h *historypb.History) []string {
	t.Helper()
	var out []string
	for _, e := range h.GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			out = append(out, e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := e.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() != "Version" {
				continue
			}
			var id string
			var v int
			dc := converter.GetDefaultDataConverter()
			if err := dc.FromPayloads(a.GetDetails()["change-id"], &id); err != nil {
				t.Fatal(err)
			}
			if err := dc.FromPayloads(a.GetDetails()["version"], &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, "version:"+id+"="+strconv.Itoa(v))
		}
	}
	return out
}

func index(steps []string, s string) int {
	for i, x := range steps {
		if x == s {
			return i
		}
	}
	return -1
}

// TestVersionedStepsTakeTheBranchOfTheirVersion is the worked example of the
// policy: "record-upload-before-confirm" moved recording the upload from
// after the load check (SupersedeVersions) to before it (RecordUpload). A run
// recorded before the change replays against today's code and takes the old
// branch: no RecordUpload, no marker for the change. A run recorded since
// records the marker and RecordUpload before CheckIngestion. Replaying each
// with the current code passes, so the code reproduces both.
func TestVersionedStepsTakeTheBranchOfTheirVersion(t *testing.T) {
	const (
		record    = "version:record-upload-before-confirm=1"
		supersede = "version:supersede-earlier-uploads=1"
	)
	for _, tc := range []struct {
		version string
		check   func(t *testing.T, s []string)
	}{
		{"before-replace", func(t *testing.T, s []string) {
			// Before either change (and on_new_version): neither step, no marker.
			for _, absent := range []string{record, supersede, "RecordUpload", "SupersedeVersions"} {
				if index(s, absent) >= 0 {
					t.Errorf("has %s", absent)
				}
			}
		}},
		{"before-record", func(t *testing.T, s []string) {
			// The old branch of record-upload-before-confirm: the upload is
			// recorded only by SupersedeVersions, after the load is confirmed.
			if index(s, record) >= 0 || index(s, "RecordUpload") >= 0 {
				t.Errorf("takes the new branch of record-upload-before-confirm")
			}
			if i, j := index(s, supersede), index(s, "SupersedeVersions"); i < 0 || j != i+1 || j < index(s, "CheckIngestion") {
				t.Errorf("want the supersede marker, then SupersedeVersions after CheckIngestion")
			}
		}},
		{"record-upload-before-confirm", func(t *testing.T, s []string) {
			i, j, k := index(s, record), index(s, "RecordUpload"), index(s, "CheckIngestion")
			if i < 0 || j != i+1 || k != j+1 {
				t.Errorf("want the record-upload-before-confirm marker, RecordUpload, then CheckIngestion")
			}
			if index(s, supersede) < k || index(s, "SupersedeVersions") < k {
				t.Errorf("want SupersedeVersions after the load is confirmed")
			}
		}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			path := historiesDir + "/" + tc.version + "/success.json"
			h := readHistory(t, path)
			if err := replay(t, h); err != nil {
				t.Fatalf("replay %s: %v", path, err)
			}
			s := steps(t, h)
			tc.check(t, s)
			if t.Failed() {
				t.Logf("%s: %v", path, s)
			}
		})
	}
}

// TestCancelledRunTakesTheBranchOfItsVersion: "clean-up-on-cancel" made a
// cancelled run wait for its activity, clean up and end Canceled, where it
// had ended Failed. A run of that version records the marker at its start
// and, cancelled, CleanUpCanceled as its last step; the runs recorded
// before it have no marker, so replayed they take the old branch.
func TestCancelledRunTakesTheBranchOfItsVersion(t *testing.T) {
	const marker = "version:clean-up-on-cancel=1"
	h := readHistory(t, historiesDir+"/clean-up-on-cancel/canceled.json")
	if err := replay(t, h); err != nil {
		t.Fatalf("replay: %v", err)
	}
	s := steps(t, h)
	if index(s, marker) != 0 || index(s, "PutToKinesis") != 1 || index(s, "CleanUpCanceled") != len(s)-1 {
		t.Errorf("want the clean-up-on-cancel marker, PutToKinesis, …, CleanUpCanceled last: %v", s)
	}
	if last := h.GetEvents()[len(h.GetEvents())-1]; last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED {
		t.Errorf("the cancelled run closed with %s, want WorkflowExecutionCanceled", last.GetEventType())
	}
	for _, v := range []string{"before-replace", "before-record", "record-upload-before-confirm"} {
		if index(steps(t, readHistory(t, historiesDir+"/"+v+"/success.json")), marker) >= 0 {
			t.Errorf("%s has the clean-up-on-cancel marker", v)
		}
	}
}
