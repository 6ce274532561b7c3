package runs

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWriteText(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	failed := Status{WorkflowID: "feed/b/k@e", Status: "Failed", Stage: "Failed", FailedIn: "PutToKinesis", Start: t0, Close: t0.Add(92 * time.Second),
		Elapsed: Duration(92 * time.Second), Durations: map[string]Duration{"PutToKinesis": Duration(time.Minute), "AwaitDelivery": Duration(time.Second)},
		Error:            &Failure{Type: "RejectThresholdExceeded", Message: "rejected 10 of 100"},
		QuarantineBucket: "q", QuarantineKey: "quarantine/customers/abc.ndjson", Counts: Counts{Read: 100, Rejected: 10, Put: 90}}
	var b strings.Builder
	if err := WriteText(&b, failed); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^status +Failed after 1m32s`,
		`(?m)^stage +Failed \(failed in PutToKinesis\)$`,
		`(?m)^records +read 100, rejected 10, put 90,`,
		`(?m)^durations +PutToKinesis 1m0s, AwaitDelivery 1s$`,
		`(?m)^error +RejectThresholdExceeded: rejected 10 of 100$`,
		`(?m)^quarantine +s3://q/quarantine/customers/abc.ndjson$`,
	} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("text does not match %s:\n%s", want, b.String())
		}
	}

	eta := Duration(90 * time.Second)
	age := Duration(800 * time.Millisecond)
	running := Status{WorkflowID: "w", Status: "Running", Stage: "PutToKinesis", Start: t0, Elapsed: Duration(time.Minute),
		Activities: []Activity{{Type: "PutToKinesis", Attempt: 2, Started: t0, Observed: t0.Add(30 * time.Second), HeartbeatAge: &age,
			LastFailure: &Failure{Type: "Timeout Heartbeat", Message: "activity Heartbeat timeout"},
			Measure:     Measure{Unit: "bytes", Done: 500, Total: 1000, Summary: "500 B of 1000 B"}, Rate: 2048, RateFrom: "heartbeats", ETA: &eta, ETAText: eta.String()}}}
	b.Reset()
	if err := WriteText(&b, running); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^status +Running for 1m0s$`,
		`(?m)^activity +PutToKinesis, attempt 2, started 30s ago, last heartbeat 800ms ago$`,
		`(?m)^  progress +500 B of 1000 B$`,
		`(?m)^  rate +2.0 KB/s \(from heartbeats\); ETA 1m30s$`,
		`(?m)^  last failure +Timeout Heartbeat: activity Heartbeat timeout$`,
	} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("text does not match %s:\n%s", want, b.String())
		}
	}
	if l := Line(running); !strings.Contains(l, "Running PutToKinesis") || !strings.Contains(l, "ETA 1m30s") {
		t.Errorf("line %q", l)
	}
	// A new rate or ETA is no change worth a line; progress is.
	other := running
	other.Activities = []Activity{running.Activities[0]}
	other.Activities[0].ETAText = "1m20s"
	if Key(other) != Key(running) {
		t.Error("an ETA alone changed the key")
	}
	other.Activities[0].Done = 600
	if Key(other) == Key(running) {
		t.Error("progress did not change the key")
	}
}

func TestFailureTypeFirstOnce(t *testing.T) {
	for f, want := range map[Failure]string{
		{Type: "LoadFailed", Message: "bad file"}:             "LoadFailed: bad file",
		{Type: "LoadFailed", Message: "LoadFailed: bad file"}: "LoadFailed: bad file",
		{Message: "no type"}:                                  "no type",
	} {
		if got := f.String(); got != want {
			t.Errorf("%+v: %q, want %q", f, got, want)
		}
	}
}
