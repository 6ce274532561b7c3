package deploy

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
)

// GrafanaDashboard is deploy/grafana/feedpipe.json: a Grafana dashboard of
// the worker's and the starter's Prometheus metrics (import it, and pick the
// Prometheus data source that scrapes their -metrics-addr).
//
//go:embed grafana/feedpipe.json
var GrafanaDashboard []byte

// metricName matches a metric selected in a PromQL expression: a name
// followed by its label matcher or its range.
var metricName = regexp.MustCompile(`\b([a-z_][a-z0-9_]*)\s*[{\[]`)

// DashboardMetrics returns the metric families the dashboard's queries read
// (histogram series _bucket/_count/_sum as their family), sorted.
func DashboardMetrics() ([]string, error) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(GrafanaDashboard, &d); err != nil {
		return nil, fmt.Errorf("deploy/grafana/feedpipe.json: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("deploy/grafana/feedpipe.json: panel %q has no query", p.Title)
		}
		for _, t := range p.Targets {
			ms := metricName.FindAllStringSubmatch(t.Expr, -1)
			if len(ms) == 0 {
				return nil, fmt.Errorf("deploy/grafana/feedpipe.json: panel %q: no metric in %s", p.Title, t.Expr)
			}
			for _, m := range ms {
				seen[histogramFamily.ReplaceAllString(m[1], "")] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

var histogramFamily = regexp.MustCompile(`_(bucket|count|sum)$`)
