package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/harness"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/termprogress"
	"github.com/feedpipe/feedpipe/workflows"
)

// loadEnv is what the load mode drives: the pipeline, the stack's clients
// and the worker process.
type loadEnv struct {
	p      *pipeline.Pipeline
	s3     *s3.Client
	tc     client.Client
	db     *sql.DB
	worker *devstack.Process
	procs  []*devstack.Process
}

// loadRun is one feed of the load and how its run ended.
type loadRun struct {
	ref   feed.Ref
	st    feedgen.Stats
	res   workflows.FeedResult
	err   error
	rows  int64
	ended time.Duration // from the uploads to the run's close
}

func (r loadRun) reconciled() bool {
	c := r.res.Counts
	return r.err == nil && c.Read == int64(r.st.Lines) && c.Read == c.Loaded+c.Rejected && r.rows == c.Loaded
}

// runLoad uploads n feeds at once through the real event path (S3 event →
// EventBridge → SQS → starter), waits for every run, reconciles each against
// Snowflake, and prints per-stage p50/p95, the wall time, the staging objects
// read per feed and the worker's peak RSS, ending with one LOAD line. It
// fails unless every feed reconciles.
func runLoad(ctx context.Context, e loadEnv, n, records, badEvery int) error {
	feeds, err := harness.Generate(e.p, "load-"+time.Now().UTC().Format("20060102T150405"), n, records, badEvery)
	if err != nil {
		return err
	}
	runs := make([]loadRun, n)
	fmt.Printf("uploading %d feeds of %d lines at once…\n", n, records)
	t0 := time.Now()
	if err := harness.Upload(ctx, e.s3, feeds); err != nil {
		return err
	}
	for i, f := range feeds {
		runs[i].ref, runs[i].st = f.Ref, f.Stats
	}
	var mu sync.Mutex
	done := 0
	progress := termprogress.ForStderr(nil, 0)
	defer progress.Clear()
	g, gctx := errgroup.WithContext(ctx)
	for i := range runs {
		g.Go(func() error {
			r := &runs[i]
			r.res, r.err = harness.WaitClosed(gctx, e.tc, r.ref, func() error { return exited(e.procs) })
			r.ended = time.Since(t0)
			if errors.Is(r.err, context.Canceled) || errors.Is(r.err, errProcessExited) {
				return r.err
			}
			var err error
			if r.rows, _, err = harness.Rows(gctx, e.db, e.p, r.ref.ID()); err != nil {
				return err
			}
			mu.Lock()
			done++
			if r.reconciled() {
				// On a terminal, a line redrawn; in a pipe, quiet until the table.
				progress.Set(fmt.Sprintf("  %6.1fs  %d/%d closed", r.ended.Seconds(), done, n))
			} else {
				progress.Clear()
				fmt.Printf("  %6.1fs  %d/%d  %s  %s\n", r.ended.Seconds(), done, n, r.ref.Key, outcome(*r))
			}
			mu.Unlock()
			return nil
		})
	}
	err = g.Wait()
	progress.Clear()
	if err != nil {
		return err
	}
	wall := time.Since(t0)

	reconciled, reads := 0, int64(0)
	for _, r := range runs {
		if r.reconciled() {
			reconciled++
		}
		reads += r.res.StagingReads
	}
	fmt.Println()
	fmt.Printf("%-18s %10s %10s %10s\n", "stage", "p50", "p95", "max")
	for _, stage := range []string{workflows.StagePut, workflows.StageDelivery, workflows.StageConvert, workflows.StageConfirm} {
		var ds []time.Duration
		for _, r := range runs {
			ds = append(ds, r.res.Durations[stage])
		}
		fmt.Printf("%-18s %10s %10s %10s\n", stage, pct(ds, 50), pct(ds, 95), pct(ds, 100))
	}
	var ends []time.Duration
	for _, r := range runs {
		ends = append(ends, r.ended)
	}
	fmt.Printf("%-18s %10s %10s %10s\n", "upload to close", pct(ends, 50), pct(ends, 95), pct(ends, 100))
	rss := float64(e.worker.PeakRSS()) / (1 << 20)
	perFeed := float64(reads) / float64(n)
	fmt.Printf("staging objects read per feed %.0f (records per feed %d); worker peak RSS %.0f MiB; wall %s\n", perFeed, records, rss, wall.Round(time.Millisecond))
	fmt.Printf("LOAD feeds=%d reconciled=%d failed=%d wall_s=%.1f staging_reads_per_feed=%.0f worker_rss_mib=%.0f\n",
		n, reconciled, n-reconciled, wall.Seconds(), perFeed, rss)
	if reconciled != n {
		return fmt.Errorf("%d of %d feeds did not reconcile", n-reconciled, n)
	}
	return nil
}

func outcome(r loadRun) string {
	c := r.res.Counts
	if r.reconciled() {
		return fmt.Sprintf("reconciled: read %d = loaded %d + rejected %d", c.Read, c.Loaded, c.Rejected)
	}
	return fmt.Sprintf("NOT reconciled: %v (read %d, loaded %d, rejected %d, rows in Snowflake %d)", r.err, c.Read, c.Loaded, c.Rejected, r.rows)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)].Round(10 * time.Millisecond)
}

var errProcessExited = errors.New("a load process exited")

// exited returns an error naming the first of procs that has exited.
func exited(procs []*devstack.Process) error {
	for _, p := range procs {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%w (%v):\n%s", errProcessExited, err, p.Tail(2000))
		}
	}
	return nil
}
