// Command demo runs feedpipe's main job end to end on the local stack: it
// brings up the stack, runs the worker and the starter (listening to the
// source bucket's events) as processes, uploads a generated customers feed
// with a few bad lines, follows the run, and prints its result. It exits
// non-zero unless the run reconciles: read = loaded + rejected.
//
//	go run ./cmd/demo -records 100000
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/harness"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	records := flag.Int("records", 100000, "lines in the generated feed")
	badEvery := flag.Int("bad-every", 20000, "every Nth line is malformed (0: none)")
	mode := flag.String("pipeline", "customers", "pipeline to run: customers (local Parquet) or customers-glue (Glue job)")
	runDir := flag.String("run-dir", ".run/demo", "directory for logs and data")
	keep := flag.Bool("keep", false, "keep the stack running after the run, for the Temporal UI, until Ctrl-C")
	feeds := flag.Int("feeds", 0, "load mode: upload this many feeds of -records lines at once, reconcile each, print per-stage percentiles and a LOAD line")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.FindRoot()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*runDir)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	cfgPath := filepath.Join(root, "pipelines.local.toml")
	cfg, err := pipeline.Load(cfgPath)
	if err != nil {
		return err
	}
	p, err := cfg.Get(*mode)
	if err != nil {
		return err
	}

	t0 := time.Now()
	fmt.Println("starting the local stack (Temporal + UI, MiniStack, fakesnow)…")
	s, err := devstack.Start(ctx, devstack.Options{RunDir: dir, Root: root})
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Printf("  up in %s; Temporal UI %s; logs in %s\n", time.Since(t0).Round(time.Millisecond), s.UIURL, dir)

	bins, err := harness.Build(ctx, root, filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	env := append(os.Environ(), s.Env()...)
	env = append(env, "FEEDPIPE_CONFIG="+cfgPath)
	worker, err := devstack.StartProcess("worker", filepath.Join(dir, "worker.log"), env, bins.Worker, "-config", cfgPath)
	if err != nil {
		return err
	}
	defer worker.Stop(10 * time.Second)
	listener, err := devstack.StartProcess("starter", filepath.Join(dir, "starter.log"), env, bins.Starter, "listen", "-config", cfgPath, "-queue", s.AWS.FeedQueueURL)
	if err != nil {
		return err
	}
	defer listener.Stop(10 * time.Second)
	fmt.Printf("  worker (pid %d) and starter listening on %s (pid %d)\n", worker.PID(), s.Names.FeedQueue, listener.PID())
	c := provision.NewAWSClients(s.AWSConfig(), true)
	tc, err := client.Dial(client.Options{HostPort: s.TemporalAddress, Namespace: s.TemporalNamespace, Logger: harness.QuietLogger{}})
	if err != nil {
		return err
	}
	defer tc.Close()
	if *feeds > 0 {
		db, err := s.OpenSnowflake(s.Names.Snowflake.Database, s.Names.Snowflake.Schema)
		if err != nil {
			return err
		}
		defer db.Close()
		return runLoad(ctx, loadEnv{p: p, s3: c.S3, tc: tc, db: db, worker: worker, procs: []*devstack.Process{worker, listener}},
			*feeds, *records, *badEvery)
	}

	var body bytes.Buffer
	st, err := feedgen.Write(&body, feedgen.Options{Records: *records, BadEvery: *badEvery, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%sdemo-%s.ndjson", p.SourcePrefix, time.Now().UTC().Format("20060102T150405"))
	put, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.SourceBucket, Key: &key, Body: bytes.NewReader(body.Bytes())})
	if err != nil {
		return fmt.Errorf("upload the feed: %w", err)
	}
	ref := feed.Ref{Bucket: p.SourceBucket, Key: key, ETag: strings.Trim(aws.ToString(put.ETag), `"`), Size: int64(body.Len())}
	fmt.Printf("uploaded s3://%s/%s: %d lines (%d malformed), %.1f MB\n", ref.Bucket, ref.Key, st.Lines, st.Bad, float64(st.Bytes)/1e6)

	res, runID, runErr := follow(ctx, tc, ref, worker, listener)
	runURL := fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", s.UIURL, s.TemporalNamespace, url.PathEscape(ref.WorkflowID()), runID)

	db, err := s.OpenSnowflake(s.Names.Snowflake.Database, s.Names.Snowflake.Schema)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+p.Snowflake.Table+" WHERE _FEED_ID = ?", ref.ID()).Scan(&rows); err != nil {
		return fmt.Errorf("count the feed's rows in Snowflake: %w", err)
	}

	fmt.Println()
	fmt.Printf("feed        %s (feed id %s, pipeline %s)\n", ref, ref.ID(), p.Name)
	fmt.Printf("workflow    %s\n", runURL)
	if runErr != nil {
		fmt.Printf("FAILED      %v\n", runErr)
	}
	cn := res.Counts
	fmt.Printf("counts      read %d · rejected %d · put %d · delivered %d · converted %d · loaded %d\n",
		cn.Read, cn.Rejected, cn.Put, cn.Delivered, cn.Converted, cn.Loaded)
	fmt.Printf("            duplicates delivered and dropped %d · PutRecords entries re-sent %d · staging objects read %d\n", res.Duplicates, res.Resends, res.StagingReads)
	for _, stage := range []string{workflows.StagePut, workflows.StageDelivery, workflows.StageConvert, workflows.StageConfirm} {
		fmt.Printf("  %-18s %s\n", stage, res.Durations[stage].Round(time.Millisecond))
	}
	fmt.Printf("snowflake   %d rows of this feed in %s.%s.%s (checked with %s)\n", rows, p.Snowflake.Database, p.Snowflake.Schema, p.Snowflake.Table, res.Confirmation)
	if res.QuarantineKey != "" {
		fmt.Printf("quarantine  s3://%s/%s (%d lines, first: line %d)\n", p.QuarantineBucket, res.QuarantineKey, cn.Rejected, firstBad(st))
	}
	switch n := len(res.ParquetKeys); {
	case n == 1:
		fmt.Printf("parquet     s3://%s/%s\n", p.DestBucket, res.ParquetKeys[0])
	case n > 1:
		fmt.Printf("parquet     %d parts under s3://%s/%s (one per ~5 s of conversion)\n", n, p.DestBucket, path.Dir(res.ParquetKeys[0])+"/")
	}
	if res.GlueRunID != "" {
		fmt.Printf("glue run    %s\n", res.GlueRunID)
	}
	fmt.Printf("worker      peak RSS %.0f MiB\n", float64(worker.PeakRSS())/(1<<20))
	fmt.Printf("total       %s from stack start\n", time.Since(t0).Round(time.Millisecond))

	reconciled := runErr == nil && cn.Read == int64(st.Lines) && cn.Read == cn.Loaded+cn.Rejected && rows == cn.Loaded
	if reconciled {
		fmt.Printf("RECONCILED  read %d = loaded %d + rejected %d\n", cn.Read, cn.Loaded, cn.Rejected)
	}
	if *keep {
		fmt.Println("the stack stays up for the Temporal UI; Ctrl-C stops it")
		<-ctx.Done()
	}
	if !reconciled {
		return fmt.Errorf("the run does not reconcile: lines %d, read %d, loaded %d, rejected %d, rows in Snowflake %d (see %s)", st.Lines, cn.Read, cn.Loaded, cn.Rejected, rows, dir)
	}
	return nil
}

func firstBad(st feedgen.Stats) int {
	if len(st.BadLines) == 0 {
		return 0
	}
	return st.BadLines[0]
}

// follow waits for the run the listener starts for ref, printing each stage
// as it begins, and returns its result.
func follow(ctx context.Context, tc client.Client, ref feed.Ref, procs ...*devstack.Process) (workflows.FeedResult, string, error) {
	id := ref.WorkflowID()
	var runID, stage string
	start := time.Now()
	for {
		for _, p := range procs {
			if done, err := p.Exited(); done {
				return workflows.FeedResult{}, runID, fmt.Errorf("a demo process exited (%v):\n%s", err, p.Tail(2000))
			}
		}
		desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err == nil {
			runID = desc.WorkflowExecutionInfo.Execution.RunId
			if v, qerr := tc.QueryWorkflow(ctx, id, "", workflows.ProgressQuery); qerr == nil {
				var prog workflows.Progress
				if v.Get(&prog) == nil && prog.Stage != stage {
					stage = prog.Stage
					fmt.Printf("  %6.1fs  %s\n", time.Since(start).Seconds(), stage)
				}
			}
			if desc.WorkflowExecutionInfo.CloseTime != nil {
				var res workflows.FeedResult
				err := tc.GetWorkflow(ctx, id, runID).Get(ctx, &res)
				if d, ok := workflows.Details(err); ok {
					res = d // a failed run tells what it had
				}
				return res, runID, err
			}
		}
		select {
		case <-ctx.Done():
			return workflows.FeedResult{}, runID, errors.New("interrupted")
		case <-time.After(250 * time.Millisecond):
		}
	}
}
