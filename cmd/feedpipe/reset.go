package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/feedpipe/feedpipe/internal/reset"
)

// runReset resets a failed run to the stage it failed in, or an earlier one.
func runReset(args []string) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	id := fs.String("workflow-id", "", "the run's workflow id (feed/<bucket>/<key>@<etag or version>), as its failure message names it")
	stage := fs.String("stage", "", "the stage to run again: "+strings.Join(reset.Stages, ", ")+" (default: the stage it failed in)")
	reason := fs.String("reason", "", "why, for the run's history (default: feedpipe reset to STAGE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" || fs.NArg() != 0 {
		return errors.New("usage: feedpipe reset -workflow-id ID [-stage STAGE] [-reason TEXT]")
	}
	if *stage != "" && !slices.Contains(reset.Stages, *stage) {
		return fmt.Errorf("-stage %q: want one of %s", *stage, strings.Join(reset.Stages, ", "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, opts, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := reset.Run(ctx, c, opts.Namespace, *id, *stage, *reason)
	if err != nil {
		return err
	}
	fmt.Printf("reset %s to %s (event %d): run %s replaced by run %s\n", *id, res.Stage, res.EventID, res.OldRunID, res.NewRunID)
	return nil
}
