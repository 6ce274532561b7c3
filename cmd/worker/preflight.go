package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/doctor"
	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// preflight checks, before the worker takes any task, that what its
// pipelines call is there and answers: the buckets, the streams, the Glue
// jobs of Glue pipelines, Snowflake and its tables (the checks of `feedpipe
// doctor` that concern a worker). A worker that could not do its work would
// otherwise start, take runs and retry them until their deadlines. Failures
// are looked at again every few seconds until wait has passed (a part that
// is restarting), then the worker refuses to start with each check's fix.
func preflight(ctx context.Context, cfg *pipeline.Config, awsc clients.AWS, sf *sql.DB, sfErr error, wait time.Duration, logger *slog.Logger) error {
	d := doctor.Deps{S3: awsc.S3, Kinesis: awsc.Kinesis, Glue: awsc.Glue, Snowflake: sf, SnowflakeErr: sfErr}
	deadline := time.Now().Add(wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		checks := doctor.Run(cctx, d, cfg, doctor.Options{ForWorker: true})
		cancel()
		var failed []doctor.Check
		for _, c := range checks {
			if !c.OK {
				failed = append(failed, c)
			}
		}
		if len(failed) == 0 {
			logger.Info("preflight: the pipelines' resources answer", "checks", len(checks))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if sf == nil || time.Now().Add(5*time.Second).After(deadline) {
			var b strings.Builder
			for _, c := range failed {
				fmt.Fprintf(&b, "\n  ✗ %s: %s", c.Name, c.Problem)
				if c.Fix != "" {
					fmt.Fprintf(&b, "\n      fix: %s", c.Fix)
				}
			}
			return fmt.Errorf("%d of %d checks of what the pipelines in the config need failed, so the worker would fail every run:%s\n(`feedpipe doctor -config FILE` runs the same checks; -preflight=false starts the worker without them)",
				len(failed), len(checks), b.String())
		}
		logger.Warn("preflight: some of the pipelines' resources do not answer yet; looking again", "failed", len(failed), "first", failed[0].Name+": "+failed[0].Problem, "until", deadline.Format(time.RFC3339))
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}
