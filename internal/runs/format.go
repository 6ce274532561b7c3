package runs

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/feedpipe/feedpipe/workflows"
)

// WriteTable writes runs as an aligned table, one run a line.
func WriteTable(w io.Writer, rs []Run) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW ID\tPIPELINE\tSTAGE\tSTATUS\tREAD\tREJECTED\tLOADED\tSTARTED\tDURATION")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, dash(r.Pipeline), dash(r.Stage), r.Status,
			Count(r.Read), Count(r.Rejected), Count(r.Loaded), r.Start.Local().Format("2006-01-02 15:04:05"), r.Duration)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write runs: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteText writes st for people, one field a line.
func WriteText(w io.Writer, st Status) error {
	var b strings.Builder
	f := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-15s "+format+"\n", append([]any{name}, args...)...)
	}
	f("workflow", "%s (run %s)", st.WorkflowID, st.RunID)
	if st.Running() {
		f("status", "%s for %s", st.Status, st.Elapsed)
	} else {
		f("status", "%s after %s (started %s, ended %s)", st.Status, st.Elapsed, st.Start.Local().Format(time.DateTime), st.Close.Local().Format(time.DateTime))
	}
	f("pipeline", "%s", dash(st.Pipeline))
	if st.InputError != "" {
		f("feed", "not known: %s", st.InputError)
	} else {
		f("feed", "%s (feed id %s, %s)", st.Feed, st.FeedID, Bytes(st.FeedBytes))
	}
	stage := st.Stage
	if st.FailedIn != "" {
		stage += " (failed in " + st.FailedIn + ")"
	}
	f("stage", "%s", dash(stage))
	c := st.Counts
	f("records", "read %s, rejected %s, put %s, delivered %s, converted %s, loaded %s",
		Count(c.Read), Count(c.Rejected), Count(c.Put), Count(c.Delivered), Count(c.Converted), Count(c.Loaded))
	if d := stageDurations(st.Durations); d != "" {
		f("durations", "%s", d)
	}
	if st.Error != nil {
		f("error", "%s", st.Error)
	}
	if st.QuarantineKey != "" {
		f("quarantine", "s3://%s/%s", st.QuarantineBucket, st.QuarantineKey)
	}
	for _, k := range st.ParquetKeys {
		f("parquet", "%s", k)
	}
	if st.Duplicates > 0 || st.Resends > 0 {
		f("duplicates", "%s dropped; %s PutRecords entries re-sent", Count(st.Duplicates), Count(st.Resends))
	}
	if st.GlueRunID != "" {
		f("glue run", "%s", st.GlueRunID)
	}
	for _, a := range st.Activities {
		line := fmt.Sprintf("%s, attempt %d", a.Type, a.Attempt)
		if a.Started.IsZero() {
			line += ", " + strings.ToLower(a.State) + ", not started"
		}
		if !a.Started.IsZero() {
			line += fmt.Sprintf(", started %s ago", Duration(a.Observed.Sub(a.Started)))
		}
		if a.HeartbeatAge != nil {
			line += fmt.Sprintf(", last heartbeat %s ago", *a.HeartbeatAge)
		}
		f("activity", "%s", line)
		f("  progress", "%s", a.Summary)
		if a.Unit != "" {
			if a.Rate > 0 || a.RateFrom != "" {
				f("  rate", "%s (from %s); ETA %s", RateString(a.Rate, a.Unit), a.RateFrom, a.ETAText)
			} else {
				f("  rate", "unknown; ETA %s", a.ETAText)
			}
		}
		if a.LastFailure != nil {
			f("  last failure", "%s", a.LastFailure)
		}
		if !a.NextAttempt.IsZero() {
			f("  next attempt", "in %s", Duration(time.Until(a.NextAttempt)))
		}
	}
	if st.Waiting != "" {
		f("waiting", "%s", st.Waiting)
	}
	if p := st.Progress; p != nil {
		pc := p.Counts
		f("workflow's view", "stage %s; read %s, rejected %s, put %s, delivered %s, converted %s, loaded %s",
			p.Stage, Count(pc.Read), Count(pc.Rejected), Count(pc.Put), Count(pc.Delivered), Count(pc.Converted), Count(pc.Loaded))
		for _, bad := range p.FirstBad {
			f("  bad line", "%d: %s", bad.Line, bad.Reason)
		}
		if p.LastError != "" && st.Error == nil {
			f("  last error", "%s", p.LastError)
		}
	} else if st.ProgressError != "" {
		f("workflow's view", "not available: %s", st.ProgressError)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// stageDurations lists the stages' durations in stage order.
func stageDurations(m map[string]Duration) string {
	order := map[string]int{}
	for i, s := range workflows.RunningStages() {
		order[s] = i
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, iok := order[names[i]]
		oj, jok := order[names[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + m[n].String()
	}
	return strings.Join(parts, ", ")
}

// Line is st on one line, for a log of changes (status -watch in a pipe).
func Line(st Status) string {
	s := fmt.Sprintf("%s %s", st.Status, dash(st.Stage))
	c := st.Counts
	s += fmt.Sprintf(" read %s rejected %s loaded %s", Count(c.Read), Count(c.Rejected), Count(c.Loaded))
	for _, a := range st.Activities {
		s += fmt.Sprintf(" | %s attempt %d: %s", a.Type, a.Attempt, a.Summary)
		if a.Unit != "" {
			s += ", ETA " + a.ETAText
		}
	}
	if st.Error != nil {
		s += " | " + st.Error.String()
	}
	return s
}

// Key is what Line says without the parts that change with every look
// (rate, ETA, ages): a new Key is a change worth a line.
func Key(st Status) string {
	s := fmt.Sprintf("%s %s %+v", st.Status, st.Stage, st.Counts)
	for _, a := range st.Activities {
		s += fmt.Sprintf(" %s/%d/%d", a.Type, a.Attempt, a.Done)
	}
	return s
}
