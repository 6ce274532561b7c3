package workflows

import (
	"encoding/json"
	"testing"
	"time"
)

func TestStageDurationsReadableAndReadBack(t *testing.T) {
	d := StageDurations{StagePut: 92512345678 * time.Nanosecond, StageConvert: 1500 * time.Microsecond}
	b, err := json.Marshal(FeedResult{Durations: d})
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Durations map[string]string `json:"durations"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Durations[StagePut] != "1m32.512s" || raw.Durations[StageConvert] != "2ms" {
		t.Errorf("durations in JSON = %v (%v), want readable strings", raw.Durations, err)
	}
	var back FeedResult
	if err := json.Unmarshal(b, &back); err != nil || back.Durations[StagePut] != 92512*time.Millisecond {
		t.Errorf("read back %v (%v)", back.Durations, err)
	}
	// A result recorded before: nanoseconds.
	if err := json.Unmarshal([]byte(`{"durations":{"PutToKinesis":1500000000}}`), &back); err != nil || back.Durations[StagePut] != 1500*time.Millisecond {
		t.Errorf("old result read as %v (%v)", back.Durations, err)
	}
	if err := json.Unmarshal([]byte(`{"durations":{"PutToKinesis":"soon"}}`), &back); err == nil {
		t.Error("a bad duration was accepted")
	}
}

func TestFailureMessageTypeFirstRefOnce(t *testing.T) {
	ref := "s3://src/customers/a.ndjson@e1"
	got := failureMessage("RejectThresholdExceeded", StagePut, ref, "feed "+ref+" rejected 5 of 10 lines read")
	if got != "RejectThresholdExceeded: PutToKinesis failed: feed "+ref+" rejected 5 of 10 lines read" {
		t.Errorf("message = %s", got)
	}
	got = failureMessage("GlueRunFailed", StageConvert, ref, "Glue run jr_1 FAILED")
	if got != "GlueRunFailed: Convert failed for feed "+ref+": Glue run jr_1 FAILED" {
		t.Errorf("message = %s", got)
	}
}
