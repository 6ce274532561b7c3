package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The registry serves the SDK handler's instruments under Prometheus names:
// counters with _total, timers as histograms in seconds on DurationBuckets.
func TestServeShowsHandlerMetricsByPrometheusNames(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler().WithTags(map[string]string{"pipeline": "p"})
	h.Counter(RecordsRead).Inc(7)
	h.WithTags(map[string]string{"stage": "Convert", "outcome": "ok"}).Timer(StageDuration).Record(90 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	at, err := r.Serve(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + at.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`feedpipe_records_read_total{pipeline="p"} 7`,
		`feedpipe_stage_duration_seconds_bucket{outcome="ok",pipeline="p",stage="Convert",le="60"} 0`,
		`feedpipe_stage_duration_seconds_bucket{outcome="ok",pipeline="p",stage="Convert",le="120"} 1`,
		`feedpipe_stage_duration_seconds_sum{outcome="ok",pipeline="p",stage="Convert"} 90`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %q in\n%s", want, b)
		}
	}
	if _, err := r.Serve(ctx, at.String(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "-metrics-addr") {
		t.Errorf("serving on a taken address: %v, want an error naming -metrics-addr", err)
	}
}

// InFlight asks visibility once per pipeline and stage, at most once per
// MaxAge, and leaves out the series whose query failed.
func TestInFlightCountsEachStageAndCaches(t *testing.T) {
	var calls atomic.Int64
	count := func(_ context.Context, q string) (int64, error) {
		calls.Add(1)
		switch {
		case strings.Contains(q, "FeedStage = 'Put'") && strings.Contains(q, "FeedPipeline = 'a'"):
			return 3, nil
		case strings.Contains(q, "FeedPipeline = 'b'") && strings.Contains(q, "FeedStage = 'Load'"):
			return 0, errors.New("visibility down")
		}
		return 1, nil
	}
	f := NewInFlight(count, "FeedWorkflow", "feedpipe", []string{"a", "b"}, []string{"Put", "Load"}, slog.New(slog.DiscardHandler))
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(f); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		fams, err := r.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, fam := range fams {
			if fam.GetName() != FeedsInFlight {
				continue
			}
			for _, m := range fam.GetMetric() {
				ls := m.GetLabel()
				got[ls[0].GetValue()+"/"+ls[1].GetValue()] = m.GetGauge().GetValue()
			}
		}
		want := map[string]float64{"a/Put": 3, "a/Load": 1, "b/Put": 1}
		if len(got) != len(want) {
			t.Fatalf("in flight = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("in flight %s = %v, want %v", k, got[k], v)
			}
		}
	}
	if calls.Load() != 4 {
		t.Errorf("%d visibility queries for two scrapes within MaxAge, want 4", calls.Load())
	}
}

func TestInFlightQueryQuotes(t *testing.T) {
	got := InFlightQuery("FeedWorkflow", "feedpipe", "o'brien", "Convert")
	want := `WorkflowType = 'FeedWorkflow' AND TaskQueue = 'feedpipe' AND ExecutionStatus = 'Running' AND FeedPipeline = 'o\'brien' AND FeedStage = 'Convert'`
	if got != want {
		t.Errorf("query = %s, want %s", got, want)
	}
}
