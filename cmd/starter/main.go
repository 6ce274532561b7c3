// Command starter starts FeedWorkflow runs, exactly once per feed version.
//
//	starter start    -bucket B -key K          start one object
//	starter listen   -queue URL                start a run for every S3 Object Created event on the queue
//	starter backfill -bucket B -prefix P [-rate 5]   start every object under a prefix (idempotent)
//
// All take -config (or FEEDPIPE_CONFIG); Temporal and AWS come from the
// standard environment (see internal/clients).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/metrics"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/starter"
	"github.com/feedpipe/feedpipe/internal/termprogress"
)

const usage = `usage:
  starter start    [-config F] -bucket B -key K
  starter listen   [-config F] -queue URL [-metrics-addr HOST:PORT]
  starter backfill [-config F] -bucket B [-prefix P] [-rate N] [-metrics-addr HOST:PORT]`

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("FEEDPIPE_CONFIG"), "pipelines config file (default pipelines.toml)")
	bucket := fs.String("bucket", "", "S3 bucket")
	key := fs.String("key", "", "object key (start)")
	prefix := fs.String("prefix", "", "key prefix (backfill)")
	queue := fs.String("queue", os.Getenv("FEEDPIPE_QUEUE_URL"), "SQS queue URL of the source bucket's events (listen)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while the command runs, e.g. 127.0.0.1:9465 (listen, backfill; empty: none)")
	rate := fs.Float64("rate", 5, "runs started per second at most (backfill)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		*cfgPath = "pipelines.toml"
	}
	cfg, err := pipeline.Load(*cfgPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := clients.Env(os.LookupEnv)
	var handler client.MetricsHandler
	if *metricsAddr != "" {
		reg, err := metrics.New()
		if err != nil {
			return err
		}
		at, err := reg.Serve(ctx, *metricsAddr, logger)
		if err != nil {
			return err
		}
		logger.Info("serving metrics", "url", "http://"+at.String()+"/metrics")
		handler = reg.Handler()
	}
	tc, awsc, err := clients.Connect(ctx, env, logger, handler)
	if err != nil {
		return err
	}
	defer tc.Close()
	s := &starter.Starter{Temporal: tc, S3: awsc.S3, SQS: awsc.SQS, Config: cfg, Logger: logger, Metrics: handler}

	switch cmd {
	case "start":
		if *bucket == "" || *key == "" {
			return errors.New("start needs -bucket and -key")
		}
		st, err := s.StartObject(ctx, *bucket, *key)
		if err != nil {
			return err
		}
		verb := "started"
		if st.Existed {
			verb = "already started (nothing done)"
		}
		fmt.Printf("%s: workflow %s run %s (pipeline %s)\n", verb, st.WorkflowID, st.RunID, st.Pipeline)
		return nil
	case "listen":
		if *queue == "" {
			return errors.New("listen needs -queue (or FEEDPIPE_QUEUE_URL)")
		}
		logger.Info("listening", "queue", *queue)
		return s.Listen(ctx, *queue)
	case "backfill":
		if *bucket == "" {
			return errors.New("backfill needs -bucket")
		}
		// On a terminal: one line redrawn on stderr. In a pipe: quiet until
		// the total (-metrics-addr shows a long backfill's starts as it goes).
		progress := termprogress.ForStderr(nil, 0)
		st, err := s.Backfill(ctx, *bucket, *prefix, *rate, func(st starter.BackfillStats) {
			progress.Set(fmt.Sprintf("backfill: %d listed, %d started, %d already started, %d failed", st.Listed, st.Started, st.Existed, st.Failed))
		})
		progress.Clear()
		fmt.Printf("backfill done: %d listed, %d started, %d already started, %d failed\n", st.Listed, st.Started, st.Existed, st.Failed)
		if err == nil && st.Failed > 0 {
			err = fmt.Errorf("%d objects could not be started; run the backfill again to retry them", st.Failed)
		}
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}
