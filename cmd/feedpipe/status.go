package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/feedpipe/feedpipe/internal/runs"
	"github.com/feedpipe/feedpipe/internal/termprogress"
)

const statusUsage = "usage: feedpipe status (-workflow-id ID | -bucket B -key K) [-sample 2s] [-json] [-watch [-every 3s]]"

// runStatus prints one run's status and, while it runs, the live progress
// of its running activity.
func runStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	id := fs.String("workflow-id", "", "the run's workflow id (feed/<bucket>/<key>@<etag or version>)")
	bucket := fs.String("bucket", "", "with -key: the newest run of this object (instead of -workflow-id)")
	key := fs.String("key", "", "with -bucket: the newest run of this object")
	sample := fs.Duration("sample", 2*time.Second, "for a running run, look again after this long for a rate and ETA from two heartbeats (0: use the attempt's start)")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh until the run ends (on a terminal the view is redrawn; in a pipe a line is printed per change)")
	every := fs.Duration("every", 3*time.Second, "with -watch: how often to look")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), statusUsage)
	}
	switch {
	case *id != "" && (*bucket != "" || *key != ""):
		return fmt.Errorf("give either -workflow-id or -bucket and -key, not both\n%s", statusUsage)
	case *id == "" && (*bucket == "" || *key == ""):
		return errors.New(statusUsage)
	case *sample < 0:
		return fmt.Errorf("-sample %s: give a positive duration such as 2s, or 0", *sample)
	case *every < 500*time.Millisecond:
		return fmt.Errorf("-every %s: give at least 500ms, such as -every 3s", *every)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, opts, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if *id == "" {
		rs, err := runs.List(ctx, c, opts.Namespace, runs.Filter{Bucket: *bucket, Key: *key}, 1, time.Now())
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("no run of s3://%s/%s found in Temporal namespace %s; check the bucket and key (feedpipe runs lists runs)", *bucket, *key, opts.Namespace)
		}
		*id = rs[0].WorkflowID
	}
	d := &runs.Describer{Client: c, Namespace: opts.Namespace, DataConverter: opts.DataConverter, FailureConverter: opts.FailureConverter}
	if *watch {
		return watchStatus(ctx, d, *id, *every, *asJSON)
	}
	st, err := d.Describe(ctx, *id)
	if err != nil {
		return err
	}
	if st.Running() && *sample > 0 && len(st.Activities) > 0 && !st.HasRate() {
		// A second sample gives a rate from two heartbeats; a stage that
		// checkpoints every few seconds may need a few more looks.
		end := time.Now().Add(*sample + 8*time.Second)
		for wait := *sample; ; wait = time.Second {
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			if st, err = d.Describe(ctx, *id); err != nil {
				return err
			}
			if !st.Running() || st.HasRate() || time.Now().After(end) {
				break
			}
		}
	}
	if *asJSON {
		return writeJSON(st)
	}
	return runs.WriteText(os.Stdout, st)
}

// watchStatus looks at the run every so often until it ends. On a terminal
// it redraws the whole view; otherwise it prints a line (or a JSON object)
// whenever something other than the time changed, and the full view at the
// end.
func watchStatus(ctx context.Context, d *runs.Describer, id string, every time.Duration, asJSON bool) error {
	tty := !asJSON && termprogress.IsTerminal(os.Stdout)
	shown, lastKey := 0, ""
	for {
		st, err := d.Describe(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case tty:
			var b strings.Builder
			if err := runs.WriteText(&b, st); err != nil {
				return err
			}
			if shown > 0 {
				fmt.Printf("\x1b[%dA\x1b[J", shown) // up to the view's first line, clear below
			}
			fmt.Print(b.String())
			shown = strings.Count(b.String(), "\n")
		case runs.Key(st) != lastKey || !st.Running():
			lastKey = runs.Key(st)
			if asJSON {
				b, err := json.Marshal(st)
				if err != nil {
					return fmt.Errorf("write JSON: %w", err)
				}
				fmt.Println(string(b))
			} else if st.Running() {
				fmt.Println(time.Now().Format(time.TimeOnly), runs.Line(st))
			} else if err := runs.WriteText(os.Stdout, st); err != nil {
				return err
			}
		}
		if !st.Running() {
			return nil
		}
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
