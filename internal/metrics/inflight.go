package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/feedpipe/feedpipe/internal/searchattr"
)

// CountFunc counts the workflow executions a visibility query matches
// (client.Client.CountWorkflow, narrowed to its count).
type CountFunc func(ctx context.Context, query string) (int64, error)

// InFlight is a Prometheus collector of feedpipe_feeds_in_flight: for each
// pipeline and stage, the running runs that Temporal's visibility counts in
// it. It asks on scrape, at most once per MaxAge; every worker of a task
// queue reports the same numbers (aggregate with max, not sum).
type InFlight struct {
	Count     CountFunc
	Workflow  string   // the workflow type, FeedWorkflow
	TaskQueue string   // the worker's task queue: another deployment's runs in the namespace are not counted
	Pipelines []string // the pipelines to count
	Stages    []string // the stages a running run can be in
	MaxAge    time.Duration
	Timeout   time.Duration // each scrape's visibility queries together
	Logger    *slog.Logger

	desc *prometheus.Desc
	mu   sync.Mutex
	at   time.Time
	last map[[2]string]int64
}

// NewInFlight makes the collector; MaxAge is 10 s and Timeout 5 s.
func NewInFlight(count CountFunc, workflowType, taskQueue string, pipelines, stages []string, logger *slog.Logger) *InFlight {
	return &InFlight{
		Count: count, Workflow: workflowType, TaskQueue: taskQueue, Pipelines: pipelines, Stages: stages,
		MaxAge: 10 * time.Second, Timeout: 5 * time.Second, Logger: logger,
		desc: prometheus.NewDesc(FeedsInFlight, "Running feed runs in each stage, as Temporal's visibility counts them.", []string{"pipeline", "stage"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (f *InFlight) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector. A visibility query that fails
// leaves its series out of the scrape (with a warning) rather than report 0.
func (f *InFlight) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last == nil || time.Since(f.at) >= f.MaxAge {
		f.last = f.count()
		f.at = time.Now()
	}
	for k, n := range f.last {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

func (f *InFlight) count() map[[2]string]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
	defer cancel()
	out := make(map[[2]string]int64, len(f.Pipelines)*len(f.Stages))
	for _, p := range f.Pipelines {
		for _, s := range f.Stages {
			q := InFlightQuery(f.Workflow, f.TaskQueue, p, s)
			n, err := f.Count(ctx, q)
			if err != nil {
				f.Logger.Warn("metrics: could not count the runs in flight", "pipeline", p, "stage", s, "query", q, "err", err)
				continue
			}
			out[[2]string{p, s}] = n
		}
	}
	return out
}

// InFlightQuery is the visibility query of the running runs of a pipeline
// in a stage on a task queue: the one to paste into the Temporal UI or
// `temporal workflow count` to see the same number.
func InFlightQuery(workflowType, taskQueue, pipeline, stage string) string {
	return fmt.Sprintf("WorkflowType = %s AND TaskQueue = %s AND ExecutionStatus = 'Running' AND FeedPipeline = %s AND FeedStage = %s",
		searchattr.Quote(workflowType), searchattr.Quote(taskQueue), searchattr.Quote(pipeline), searchattr.Quote(stage))
}
