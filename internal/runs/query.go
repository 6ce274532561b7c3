// Package runs lists FeedWorkflow runs from Temporal visibility and
// describes one run: its status, counts, durations, last error and, while it
// runs, the live progress of its running activity (from the activity's
// heartbeat details), with a rate and an ETA. cmd/feedpipe's runs and status
// subcommands print what it returns.
package runs

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/workflows"
)

// Filter selects runs. Its zero value selects every FeedWorkflow run.
type Filter struct {
	Pipeline string    // FeedPipeline equals this (empty: any)
	Bucket   string    // FeedBucket equals this (empty: any)
	Key      string    // FeedKey equals this (empty: any)
	Stage    string    // FeedStage equals this (empty: any); see Stages
	Failed   bool      // only failed runs (ExecutionStatus Failed)
	Running  bool      // only running runs (ExecutionStatus Running)
	Since    time.Time // only runs started at or after this (zero: any)
}

// Stages are the values FeedStage takes, the ones -stage accepts.
func Stages() []string {
	return append(workflows.RunningStages(), workflows.StageDone, workflows.StageFailed, workflows.StageCanceled)
}

// Validate says what is wrong with f, naming the flag that sets the field
// and how to fix it.
func (f Filter) Validate() error {
	if f.Failed && f.Running {
		return fmt.Errorf("-failed and -running exclude each other: a run is either running or failed; give one of them")
	}
	if f.Stage != "" && !slices.Contains(Stages(), f.Stage) {
		// Accept any case for convenience in the message, but say the exact name.
		for _, s := range Stages() {
			if strings.EqualFold(s, f.Stage) {
				return fmt.Errorf("-stage %q: stage names are case-sensitive; use -stage %s", f.Stage, s)
			}
		}
		return fmt.Errorf("-stage %q: want one of %s", f.Stage, strings.Join(Stages(), ", "))
	}
	for _, v := range []struct{ flag, value string }{{"-pipeline", f.Pipeline}, {"-bucket", f.Bucket}, {"-key", f.Key}} {
		if err := checkValue(v.flag, v.value); err != nil {
			return err
		}
	}
	return nil
}

// checkValue refuses values no pipeline name or search attribute value has:
// control characters (a newline pasted by accident, say).
func checkValue(flag, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s %q: not valid UTF-8", flag, v)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q: contains a control character; give the name as configured in the pipelines file", flag, v)
		}
	}
	return nil
}

// Query is f as a Temporal visibility query (ListWorkflowExecutions),
// built from the typed search attributes that FeedWorkflow upserts. Every
// value is quoted with Quote.
func (f Filter) Query() (string, error) {
	if err := f.Validate(); err != nil {
		return "", err
	}
	conds := []string{"WorkflowType = " + searchattr.Quote(workflows.FeedWorkflowName)}
	if f.Pipeline != "" {
		conds = append(conds, searchattr.FeedPipeline.GetName()+" = "+searchattr.Quote(f.Pipeline))
	}
	if f.Bucket != "" {
		conds = append(conds, searchattr.FeedBucket.GetName()+" = "+searchattr.Quote(f.Bucket))
	}
	if f.Key != "" {
		conds = append(conds, searchattr.FeedKey.GetName()+" = "+searchattr.Quote(f.Key))
	}
	if f.Stage != "" {
		conds = append(conds, searchattr.FeedStage.GetName()+" = "+searchattr.Quote(f.Stage))
	}
	switch {
	case f.Failed:
		conds = append(conds, "ExecutionStatus = "+searchattr.Quote("Failed"))
	case f.Running:
		conds = append(conds, "ExecutionStatus = "+searchattr.Quote("Running"))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "StartTime >= "+searchattr.Quote(f.Since.UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(conds, " AND "), nil
}

// ParseSince reads the -since flag: a duration before now ("90m", "1h",
// "2d", "1w"), a date ("2026-12-01", midnight UTC) or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := parseAgo(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("-since %q: give a positive duration such as 1h or 2d", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("-since %q: want a duration (30m, 1h, 2d, 1w), a date (2026-12-01) or an RFC 3339 time (2026-12-01T15:04:05Z)", s)
}

// parseAgo is time.ParseDuration plus whole days (d) and weeks (w).
func parseAgo(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			var k int
			if _, err := fmt.Sscanf(n, "%d", &k); err != nil || fmt.Sprint(k) != n {
				return 0, fmt.Errorf("not a number of %s: %q", suffix, n)
			}
			return time.Duration(k) * unit, nil
		}
	}
	return time.ParseDuration(s)
}
