package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/feedpipe/feedpipe/internal/runs"
)

const runsUsage = "usage: feedpipe runs [-pipeline P] [-stage S] [-failed | -running] [-since 1h|2026-12-01] [-limit N] [-json]"

// runRuns lists runs from Temporal visibility, newest first.
func runRuns(args []string) error {
	fs := flag.NewFlagSet("runs", flag.ContinueOnError)
	pipelineName := fs.String("pipeline", "", "only runs of this pipeline (FeedPipeline)")
	stage := fs.String("stage", "", "only runs in this stage (FeedStage): one of "+fmt.Sprint(runs.Stages()))
	failed := fs.Bool("failed", false, "only failed runs")
	running := fs.Bool("running", false, "only running runs")
	since := fs.String("since", "", "only runs started since: a duration before now (30m, 1h, 2d, 1w), a date (2026-12-01, UTC) or an RFC 3339 time")
	limit := fs.Int("limit", 50, "at most this many runs")
	asJSON := fs.Bool("json", false, "print a JSON array of runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), runsUsage)
	}
	now := time.Now()
	f := runs.Filter{Pipeline: *pipelineName, Stage: *stage, Failed: *failed, Running: *running}
	var err error
	if f.Since, err = runs.ParseSince(*since, now); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	if *limit <= 0 {
		return fmt.Errorf("-limit %d: give a positive number of runs, such as -limit 50", *limit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, opts, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	rs, err := runs.List(ctx, c, opts.Namespace, f, *limit, now)
	if err != nil {
		return err
	}
	if *asJSON {
		if rs == nil {
			rs = []runs.Run{} // [] rather than null
		}
		return writeJSON(rs)
	}
	if len(rs) == 0 {
		fmt.Println("no runs match")
		return nil
	}
	return runs.WriteTable(os.Stdout, rs)
}

// writeJSON prints v as indented JSON on stdout.
func writeJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
