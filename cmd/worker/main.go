// Command worker runs feedpipe's Temporal worker: FeedWorkflow and its
// activities, on the task queue of the pipelines config.
//
//	worker -config pipelines.toml
//
// Temporal, AWS and Snowflake are configured by the standard environment (see
// internal/clients). SIGINT or SIGTERM stops it gracefully: it takes no new
// tasks and lets running activities finish for up to -stop-timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/metrics"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/scratch"
	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/workflows"

	_ "github.com/snowflakedb/gosnowflake"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		// Plain text: the error may hold a list of checks with their fixes.
		fmt.Fprintln(os.Stderr, "worker stopped:", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	cfgPath := flag.String("config", envOr("FEEDPIPE_CONFIG", "pipelines.toml"), "pipelines config file")
	def := workflows.WorkerOptions()
	activitiesMax := flag.Int("max-activities", def.MaxConcurrentActivityExecutionSize, "activities run at once by this worker")
	workflowsMax := flag.Int("max-workflow-tasks", def.MaxConcurrentWorkflowTaskExecutionSize, "workflow tasks run at once by this worker")
	stopTimeout := flag.Duration("stop-timeout", def.WorkerStopTimeout, "how long running activities may finish on shutdown")
	throttle := flag.Duration("heartbeat-throttle", def.MaxHeartbeatThrottleInterval, "the most the SDK holds back a heartbeat: a stage's checkpoint reaches the server within this")
	ensureSA := flag.Bool("ensure-search-attributes", true, "add feedpipe's search attributes to the namespace at start if missing (the starter's runs need them); off where the worker may not, after `feedpipe setup temporal`")
	metricsAddr := flag.String("metrics-addr", "", "serve Prometheus metrics (the SDK's and feedpipe's) at http://ADDR/metrics, e.g. 127.0.0.1:9464 or :9464 (empty: no metrics)")
	preflightOn := flag.Bool("preflight", true, "before taking tasks, check that the pipelines' buckets, streams, Glue jobs and Snowflake tables answer, and refuse to start if not")
	preflightWait := flag.Duration("preflight-wait", time.Minute, "how long a failing preflight check is looked at again before the worker refuses to start")
	buildID := flag.String("build-id", os.Getenv("FEEDPIPE_BUILD_ID"), "this worker's build in Temporal's Worker Deployment Versioning (e.g. the git commit); empty: unversioned. A versioned build takes tasks once made current: feedpipe setup current-version -build-id ID")
	deployment := flag.String("deployment-name", "feedpipe", "the Worker Deployment this build belongs to (with -build-id)")
	tempDir := flag.String("temp-dir", os.TempDir(), "where the local converter writes Parquet files before upload, in a directory of this worker's own (needs room for the largest feed's file); a killed worker's directory is removed by the next worker started here")
	flag.Parse()

	cfg, err := pipeline.Load(*cfgPath)
	if err != nil {
		return err
	}
	// SIGINT/SIGTERM from here on stop the worker in order, whatever it is
	// doing: during startup too, so that its scratch directory is removed
	// (the default action would end the process at once).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := clients.Env(os.LookupEnv)
	var reg *metrics.Registry
	var handler client.MetricsHandler
	if *metricsAddr != "" {
		if reg, err = metrics.New(); err != nil {
			return err
		}
		handler = reg.Handler()
	}
	tc, awsc, err := clients.Connect(ctx, env, logger, handler)
	if err != nil {
		return err
	}
	defer tc.Close()
	if reg != nil {
		// Served until the worker has stopped, its last tasks included.
		mctx, stopMetrics := context.WithCancel(context.Background())
		defer stopMetrics()
		defer func() { _ = reg.Close(context.Background()) }()
		if err := serveMetrics(mctx, reg, tc, clients.TemporalNamespace(env), cfg, *metricsAddr, logger); err != nil {
			return err
		}
	}
	if *ensureSA {
		ns := clients.TemporalNamespace(os.LookupEnv)
		added, err := searchattr.Ensure(ctx, tc.OperatorService(), ns)
		if err != nil {
			return fmt.Errorf("worker: %w (or start the worker with -ensure-search-attributes=false once they exist)", err)
		}
		if len(added) > 0 {
			logger.Info("added search attributes to the namespace", "namespace", ns, "attributes", added)
		}
	}
	sf, err := clients.OpenSnowflake(env)
	if err != nil {
		return err
	}
	if sf != nil {
		defer sf.Close()
	}
	if *preflightOn {
		if err := preflight(ctx, cfg, awsc, sf, nil, *preflightWait, logger); err != nil {
			return err
		}
	} else if sf == nil {
		logger.Warn("no Snowflake connection configured (SNOWFLAKE_DSN or SNOWFLAKE_ACCOUNT); ConfirmIngestion will fail")
	}

	scratchDir, removed, err := scratch.Open(*tempDir)
	for _, r := range removed {
		logger.Info("removed the scratch directory of a worker that stopped without cleaning up", "dir", r.Path, "files", r.Files, "bytes", r.Bytes)
	}
	if err != nil {
		return fmt.Errorf("worker: -temp-dir %s: %w", *tempDir, err)
	}
	defer func() {
		if err := scratchDir.Close(); err != nil {
			logger.Warn("could not remove the scratch directory", "err", err)
		}
	}()

	opts := def
	opts.MaxConcurrentActivityExecutionSize, opts.MaxConcurrentWorkflowTaskExecutionSize = *activitiesMax, *workflowsMax
	opts.WorkerStopTimeout, opts.MaxHeartbeatThrottleInterval = *stopTimeout, *throttle
	if *buildID != "" {
		// Runs move to the current build at their next task (AutoUpgrade):
		// a new build must replay the runs in flight, as FeedWorkflow's
		// GetVersion calls and the replay corpus make sure (see
		// workflows/versioning_test.go).
		opts.DeploymentOptions = worker.DeploymentOptions{
			UseVersioning:             true,
			Version:                   worker.WorkerDeploymentVersion{DeploymentName: *deployment, BuildID: *buildID},
			DefaultVersioningBehavior: workflow.VersioningBehaviorAutoUpgrade,
		}
	}
	w := worker.New(tc, cfg.TaskQueue, opts)
	workflows.Register(w, &activities.Activities{S3: awsc.S3, Kinesis: awsc.Kinesis, Glue: awsc.Glue, Snowflake: sf, Logger: logger, TempDir: scratchDir.Path})
	logger.Info("worker starting", "task_queue", cfg.TaskQueue, "pipelines", len(cfg.Pipelines), "deployment", *deployment, "build_id", *buildID)
	interrupt := make(chan any)
	go func() { <-ctx.Done(); close(interrupt) }()
	if err := w.Run(interrupt); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// serveMetrics serves the registry, with the runs in flight per pipeline and
// stage counted from Temporal's visibility, for the life of the process.
func serveMetrics(ctx context.Context, reg *metrics.Registry, tc client.Client, ns string, cfg *pipeline.Config, addr string, logger *slog.Logger) error {
	var names []string
	for _, p := range cfg.Pipelines {
		names = append(names, p.Name)
	}
	count := func(ctx context.Context, q string) (int64, error) {
		resp, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: q})
		return resp.GetCount(), err
	}
	if err := reg.Register(metrics.NewInFlight(count, workflows.FeedWorkflowName, cfg.TaskQueue, names, workflows.RunningStages(), logger)); err != nil {
		return fmt.Errorf("worker: metrics: %w", err)
	}
	at, err := reg.Serve(ctx, addr, logger)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	logger.Info("serving metrics", "url", "http://"+at.String()+"/metrics")
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
