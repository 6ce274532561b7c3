package activities

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// What PutToKinesis puts into history about bad lines (FirstBad, the
// threshold error) names the field and the kind of value, never the value;
// the quarantine object keeps the raw line and the reason quoting it.
func TestRejectReasonsInHistoryHoldNoValues(t *testing.T) {
	m := newMemS3()
	m.objs["src/k"] = []byte(`{"id":1}` + "\n" + `{"id":"SECRET-ACCOUNT-42"}` + "\n" + `{"id":2,"name":{"ssn":"SECRET-SSN"}}` + "\n")
	p := testPipeline()
	p.MaxRejectedRatio, p.MaxRejectedLines = 0, 0
	a := &Activities{S3: m, Kinesis: &flakyKinesis{accepted: map[string]int{}}}
	_, err := runPut(t, a, PutInput{FeedID: "f", Ref: feed.Ref{Bucket: "src", Key: "k", VersionID: "v"}, Pipeline: p})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("threshold error holds a value: %v", err)
	}
	for _, want := range []string{`line 2: field "id": want int64, got a string (17 chars)`, `line 3: field "name": want string, got an object`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("threshold error %q does not say %q", err, want)
		}
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("not an application error: %v", err)
	}
	var res PutResult
	if err := appErr.Details(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.FirstBad) != 2 {
		t.Fatalf("first bad lines %+v", res.FirstBad)
	}
	for _, b := range res.FirstBad {
		if strings.Contains(b.Reason, "SECRET") || !strings.HasPrefix(b.Reason, "field ") {
			t.Errorf("first bad line %d: reason %q", b.Line, b.Reason)
		}
	}

	q := m.objs["q/"+res.QuarantineKey]
	var got []quarantined
	for _, l := range bytes.Split(bytes.TrimSpace(q), []byte("\n")) {
		var r quarantined
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Raw != `{"id":"SECRET-ACCOUNT-42"}` || !strings.Contains(got[0].Reason, `want an integer, got "SECRET-ACCOUNT-42"`) ||
		got[1].Raw != `{"id":2,"name":{"ssn":"SECRET-SSN"}}` || !strings.Contains(got[1].Reason, "SECRET-SSN") {
		t.Errorf("quarantine lost the raw line or the full reason: %+v", got)
	}
}

// A LineError inside a Convert failure goes to history as its reason, the
// rest of the message kept.
func TestWithoutValuesKeepsTheReasonNotTheValue(t *testing.T) {
	le := &schema.LineError{Reason: `field "id": want int64, got a string (6 chars)`, Detail: `field "id": want int64, got "secret"`}
	err := fmt.Errorf("s3://stg/raw/feed=f/1 line 7: %w", le)
	got := withoutValues(err)
	if strings.Contains(got, "secret") || got != `s3://stg/raw/feed=f/1 line 7: field "id": want int64, got a string (6 chars)` {
		t.Errorf("withoutValues = %q", got)
	}
	if got := withoutValues(errors.New("plain")); got != "plain" {
		t.Errorf("withoutValues(plain) = %q", got)
	}
}
