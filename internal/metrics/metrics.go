// Package metrics serves feedpipe's Prometheus metrics. The Temporal SDK's own
// metrics (workflow and activity task latencies, schedule-to-start, polls,
// failures) reach Prometheus through the SDK's OpenTelemetry contrib handler;
// feedpipe's metrics are recorded through the same handler, from the workflow
// (workflow.GetMetricsHandler, which stays silent during replay) and the
// starter, so that one endpoint and one set of labels serve both.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"

	"go.temporal.io/sdk/client"
)

// DurationBuckets are the bounds, in seconds, of every duration histogram:
// the SDK's task latencies (milliseconds to seconds) and feedpipe's stage
// durations (seconds to hours) on one scale.
func DurationBuckets() []float64 {
	return []float64{0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
}

// Registry holds one process's metrics.
type Registry struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
	handler  client.MetricsHandler
}

// New makes a Registry with the Go runtime and process collectors.
func New() (*Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	seconds := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: DurationBuckets()}},
	)
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(seconds))
	handler := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                provider.Meter("feedpipe"),
		UseMonotonicCounters: true,
		// An instrument the exporter refuses (a name clash) must not stop a
		// worker: the metric is dropped and the process goes on.
		OnError: func(err error) { slog.Default().Warn("metrics: instrument dropped", "err", err) },
	})
	return &Registry{reg: reg, provider: provider, handler: handler}, nil
}

// Handler is the Temporal metrics handler that records into the registry;
// give it to client.Options.MetricsHandler.
func (r *Registry) Handler() client.MetricsHandler { return r.handler }

// Register adds a Prometheus collector (e.g. a Counter of visibility).
func (r *Registry) Register(c prometheus.Collector) error { return r.reg.Register(c) }

// Gather returns the registry's current metric families.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) { return r.reg.Gather() }

// Serve listens on addr (host:port; port 0 picks a free one) and serves
// /metrics until ctx ends. It returns the address it listens on.
func (r *Registry) Serve(ctx context.Context, addr string, logger *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on -metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return ln.Addr(), nil
}

// Close flushes and stops the meter provider.
func (r *Registry) Close(ctx context.Context) error { return r.provider.Shutdown(ctx) }
