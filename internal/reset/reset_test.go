package reset

import (
	"os"
	"path/filepath"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/workflows"
)

func history(t *testing.T, name string) []*historypb.HistoryEvent {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "workflows", "testdata", "histories", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h.GetEvents()
}

// In recorded histories, each stage's reset point is the workflow task that
// set FeedStage to it and scheduled the stage's first activity, so that a
// reset runs exactly that stage again; the last stage entered is the one a
// failed run failed in.
func TestFindPointsAtTheTaskThatEnteredEachStage(t *testing.T) {
	firstActivity := map[string]string{
		workflows.StagePut: "PutToKinesis", workflows.StageDelivery: "CheckDelivery",
		workflows.StageConvert: "ConvertLocal",
	}
	for _, tc := range []struct {
		file    string
		stages  []string
		last    string
		convert string
		confirm string // a replace pipeline's run records its upload first
	}{
		{"record-upload-before-confirm/success.json", Stages, workflows.StageConfirm, "ConvertLocal", "RecordUpload"},
		{"record-upload-before-confirm/success-glue.json", Stages, workflows.StageConfirm, "StartGlueRun", "RecordUpload"},
		{"record-upload-before-confirm/retried-after-worker-kill.json", Stages, workflows.StageConfirm, "ConvertLocal", "RecordUpload"},
		{"before-record/success.json", Stages, workflows.StageConfirm, "ConvertLocal", "CheckIngestion"},
		{"before-record/success-glue.json", Stages, workflows.StageConfirm, "StartGlueRun", "CheckIngestion"},
		{"record-upload-before-confirm/failed-reject-threshold.json", []string{workflows.StagePut}, workflows.StagePut, "", ""},
	} {
		events := history(t, tc.file)
		p, err := Find(events)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if p.Last != tc.last || len(p.Entered) != len(tc.stages) {
			t.Errorf("%s: last %q, entered %v; want last %q and %v", tc.file, p.Last, p.Entered, tc.last, tc.stages)
		}
		for _, st := range tc.stages {
			id, ok := p.Entered[st]
			if !ok {
				t.Errorf("%s: no point for %s", tc.file, st)
				continue
			}
			e := events[id-1]
			if e.GetEventId() != id || e.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				t.Errorf("%s: %s point is event %d (%v), want a WorkflowTaskCompleted", tc.file, st, id, e.GetEventType())
				continue
			}
			want := firstActivity[st]
			switch st {
			case workflows.StageConvert:
				want = tc.convert
			case workflows.StageConfirm:
				want = tc.confirm
			}
			// The task's commands: upserts, then the stage's first activity.
			var got string
			for _, next := range events[id:] {
				if a := next.GetActivityTaskScheduledEventAttributes(); a != nil {
					got = a.GetActivityType().GetName()
					break
				}
			}
			if got != want {
				t.Errorf("%s: reset to %s (event %d) schedules %s first, want %s", tc.file, st, id, got, want)
			}
		}
	}
}

func TestFindRefusesAHistoryThatEnteredNoStage(t *testing.T) {
	events := history(t, "record-upload-before-confirm/success.json")[:3] // started, task scheduled and started
	if _, err := Find(events); err == nil {
		t.Fatal("no error for a history without a stage")
	}
}
