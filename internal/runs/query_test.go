package runs

import (
	"strings"
	"testing"
	"time"

	"github.com/temporalio/sqlparser"
)

// parseWhere parses a visibility query the way the Temporal server does (it
// puts it after "select * from t where") and returns its comparisons'
// column = value pairs, in order.
func parseWhere(t *testing.T, q string) [][2]string {
	t.Helper()
	stmt, err := sqlparser.Parse("select * from t where " + q)
	if err != nil {
		t.Fatalf("query %s does not parse: %v", q, err)
	}
	var out [][2]string
	var walk func(e sqlparser.Expr)
	walk = func(e sqlparser.Expr) {
		switch e := e.(type) {
		case *sqlparser.AndExpr:
			walk(e.Left)
			walk(e.Right)
		case *sqlparser.ComparisonExpr:
			col := sqlparser.String(e.Left)
			val, ok := e.Right.(*sqlparser.SQLVal)
			if !ok {
				t.Fatalf("query %s: right side of %s is %T, not a value", q, col, e.Right)
			}
			out = append(out, [2]string{col + " " + e.Operator, string(val.Val)})
		default:
			t.Fatalf("query %s: unexpected %T (%s): a value escaped its quotes", q, e, sqlparser.String(e))
		}
	}
	walk(stmt.(*sqlparser.Select).Where.Expr)
	return out
}

func TestQuoteSurvivesTheServersParser(t *testing.T) {
	for _, v := range []string{
		"customers",
		"it's",
		`back\slash`,
		`trailing\`,
		`x' OR FeedStage = 'Done`,
		`x\' OR 1=1 --`,
		`"double" quotes`,
		"ünïcode ✓",
		`\n is not a newline`,
	} {
		q, err := Filter{Pipeline: v}.Query()
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		got := parseWhere(t, q)
		if len(got) != 2 || got[1][0] != "FeedPipeline =" || got[1][1] != v {
			t.Errorf("value %q: query %s parses as %q", v, q, got)
		}
	}
}

func TestFilterQuery(t *testing.T) {
	since := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	q, err := Filter{Pipeline: "customers", Stage: "Done", Failed: true, Since: since, Bucket: "b", Key: "k/x.ndjson"}.Query()
	if err != nil {
		t.Fatal(err)
	}
	want := "WorkflowType = 'FeedWorkflow' AND FeedPipeline = 'customers' AND FeedBucket = 'b' AND FeedKey = 'k/x.ndjson' AND FeedStage = 'Done' AND ExecutionStatus = 'Failed' AND StartTime >= '2026-12-01T00:00:00Z'"
	if q != want {
		t.Errorf("query\n got %s\nwant %s", q, want)
	}
	parseWhere(t, q)
	if q, _ := (Filter{Running: true}).Query(); q != "WorkflowType = 'FeedWorkflow' AND ExecutionStatus = 'Running'" {
		t.Errorf("running: %s", q)
	}
	if q, _ := (Filter{}).Query(); q != "WorkflowType = 'FeedWorkflow'" {
		t.Errorf("no filter: %s", q)
	}
}

func TestFilterValidateNamesFlagAndFix(t *testing.T) {
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{Failed: true, Running: true}, []string{"-failed", "-running"}},
		{Filter{Stage: "done"}, []string{`-stage "done"`, "-stage Done"}},
		{Filter{Stage: "Loading"}, []string{`-stage "Loading"`, "PutToKinesis", "AwaitDelivery", "Convert", "ConfirmIngestion", "Done", "Failed"}},
		{Filter{Pipeline: "cust\nomers"}, []string{"-pipeline", "control character"}},
		{Filter{Key: "a\x00b"}, []string{"-key", "control character"}},
		{Filter{Bucket: "\xff"}, []string{"-bucket", "UTF-8"}},
	} {
		_, err := tc.f.Query()
		if err == nil {
			t.Errorf("%+v: no error", tc.f)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not say %q", tc.f, err, w)
			}
		}
	}
	for _, s := range Stages() {
		if err := (Filter{Stage: s}).Validate(); err != nil {
			t.Errorf("stage %s: %v", s, err)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"1h":                   now.Add(-time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2d":                   now.Add(-48 * time.Hour),
		"1w":                   now.Add(-7 * 24 * time.Hour),
		"2026-12-01":           time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"2026-12-01T15:04:05Z": time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC),
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "0s", "1.5d", "2026-13-01", "d"} {
		_, err := ParseSince(in, now)
		if err == nil || !strings.Contains(err.Error(), "-since") {
			t.Errorf("ParseSince(%q): error %v, want one naming -since", in, err)
		}
	}
}
