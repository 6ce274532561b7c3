package main

import (
	"strings"
	"testing"
	"time"
)

// Bad flag values fail before Temporal is dialed, naming the flag and the fix.
func TestRunsAndStatusFlagErrors(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens: a dial would fail differently
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"runs", "-failed", "-running"}, []string{"-failed", "-running"}},
		{[]string{"runs", "-stage", "done"}, []string{"-stage Done"}},
		{[]string{"runs", "-stage", "Loading"}, []string{`-stage "Loading"`, "ConfirmIngestion"}},
		{[]string{"runs", "-since", "yesterday"}, []string{`-since "yesterday"`, "2026-12-01"}},
		{[]string{"runs", "-limit", "0"}, []string{"-limit 0", "-limit 50"}},
		{[]string{"runs", "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"status"}, []string{"-workflow-id"}},
		{[]string{"status", "-bucket", "b"}, []string{"-workflow-id ID | -bucket B -key K"}},
		{[]string{"status", "-workflow-id", "x", "-key", "k"}, []string{"not both"}},
		{[]string{"status", "-workflow-id", "x", "-every", "10ms"}, []string{"-every 10ms", "-every 3s"}},
		{[]string{"status", "-workflow-id", "x", "-sample", "-1s"}, []string{"-sample -1s"}},
	} {
		err := run(tc.args)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not say %q", tc.args, err, w)
			}
		}
	}
}

func TestReadProgress(t *testing.T) {
	if got := readProgress("convert", 25e6, 100e6, 5*time.Second); got != "convert: 25.0 MB of 100.0 MB (25.0%), 5.0 MB/s, ETA 15s" {
		t.Errorf("got %q", got)
	}
	if got := readProgress("convert", 25e6, 0, 5*time.Second); got != "convert: 25.0 MB read, 5.0 MB/s, ETA unknown (input size not known)" {
		t.Errorf("stdin: got %q", got)
	}
	if got := readProgress("convert", 0, 100, 0); !strings.Contains(got, "ETA unknown") {
		t.Errorf("at the start: got %q", got)
	}
}
