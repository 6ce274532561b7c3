package runs

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/codec"
	"github.com/feedpipe/feedpipe/internal/searchattr"
)

func payloads(t *testing.T, v any) *commonpb.Payloads {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecodeHeartbeatPerActivity(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	put := activities.PutProgress{Offset: 500_000, Line: 2000, Read: 2000, Rejected: 3, Put: 1997, Resends: 4, StartedAt: start}
	for _, tc := range []struct {
		name     string
		activity string
		details  any
		totals   Totals
		unit     string
		done     int64
		total    int64
		summary  []string
	}{
		{"put, plain file: bytes", "PutToKinesis", put, Totals{SourceBytes: 1_000_000},
			"bytes", 500_000, 1_000_000, []string{"500.0 KB of 1.0 MB (50.0%)", "2,000 lines read", "1,997 put", "3 rejected", "4 re-sent"}},
		{"put, gzip: lines, total unknown", "PutToKinesis", put, Totals{SourceBytes: 1_000_000, Gzip: true},
			"lines", 2000, 0, []string{"2,000 lines read", "total lines not known"}},
		{"put, size unknown", "PutToKinesis", put, Totals{},
			"lines", 2000, 0, []string{"2,000 lines read"}},
		{"delivery: records of put", "CheckDelivery", activities.DeliveryState{Delivered: 750, Duplicates: 2, Objects: 760, Passes: 1, Resumed: true}, Totals{Put: 1000},
			"records", 750, 1000, []string{"750 of 1,000 records delivered (75.0%)", "760 staging objects read", "2 duplicates", "pass 2", "resumed"}},
		{"convert: rows of delivered", "ConvertLocal", activities.ConvertProgress{Parts: []activities.ConvertPart{{Rows: 300}, {Rows: 200}}, Published: 1, Reads: 9}, Totals{Delivered: 1000},
			"rows", 500, 1000, []string{"500 of 1,000 rows in 2 Parquet parts (50.0%)", "1 published"}},
		{"convert, total unknown", "ConvertLocal", activities.ConvertProgress{}, Totals{},
			"rows", 0, 0, []string{"0 of ? rows"}},
		{"a look: no progress", "CheckIngestion", nil, Totals{Put: 5},
			"", 0, 0, []string{"does not report progress"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *commonpb.Payloads
			if tc.details != nil {
				p = payloads(t, tc.details)
			}
			m, err := DecodeHeartbeat(nil, tc.activity, p, tc.totals)
			if err != nil {
				t.Fatal(err)
			}
			if m.Unit != tc.unit || m.Done != tc.done || m.Total != tc.total {
				t.Errorf("measure %s %d of %d, want %s %d of %d", m.Unit, m.Done, m.Total, tc.unit, tc.done, tc.total)
			}
			for _, s := range tc.summary {
				if !strings.Contains(m.Summary, s) {
					t.Errorf("summary %q does not say %q", m.Summary, s)
				}
			}
		})
	}
	// The details keep their type, for -json.
	m, _ := DecodeHeartbeat(nil, "PutToKinesis", payloads(t, put), Totals{})
	if got, ok := m.Details.(activities.PutProgress); !ok || got.Offset != put.Offset || !got.StartedAt.Equal(start) {
		t.Errorf("details %#v, want the PutProgress sent", m.Details)
	}
	// No heartbeat yet.
	if m, err := DecodeHeartbeat(nil, "PutToKinesis", nil, Totals{SourceBytes: 10}); err != nil || m.Done != 0 || m.Summary != "no heartbeat yet" {
		t.Errorf("no details: %+v, %v", m, err)
	}
	// Details of another shape are an error that names the type.
	if _, err := DecodeHeartbeat(nil, "CheckDelivery", payloads(t, "not a state"), Totals{}); err == nil || !strings.Contains(err.Error(), "DeliveryState") {
		t.Errorf("wrong details: %v", err)
	}
}

func TestRateAndETA(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if r, ok := Rate(Sample{t0, 1000}, Sample{t0.Add(2 * time.Second), 3000}); !ok || r != 1000 {
		t.Errorf("rate %v %v, want 1000/s", r, ok)
	}
	for _, tc := range [][2]Sample{
		{{t0, 1000}, {t0, 3000}},                   // same instant
		{{t0, 1000}, {t0.Add(-time.Second), 3000}}, // out of order
		{{t0, 3000}, {t0.Add(time.Second), 1000}},  // went back (a retry started over)
	} {
		if _, ok := Rate(tc[0], tc[1]); ok {
			t.Errorf("Rate(%v) ok, want no rate", tc)
		}
	}
	if eta, ok := ETA(3000, 10000, 1000); !ok || eta != 7*time.Second {
		t.Errorf("ETA %v %v, want 7s", eta, ok)
	}
	if eta, ok := ETA(10000, 10000, 1000); !ok || eta != 0 {
		t.Errorf("ETA at the end %v %v, want 0", eta, ok)
	}
	if _, ok := ETA(3000, 0, 1000); ok {
		t.Error("ETA with no total: want unknown")
	}
	if _, ok := ETA(3000, 10000, 0); ok {
		t.Error("ETA with no rate: want unknown")
	}
}

// The describer's rate comes from two heartbeats of the same activity type;
// with one, a put falls back on its start, the others have no ETA.
func TestDescriberRateFromTwoHeartbeats(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	pa := func(typ string, at time.Time, details any) *workflowpb.PendingActivityInfo {
		return &workflowpb.PendingActivityInfo{ActivityType: &commonpb.ActivityType{Name: typ}, ActivityId: "5", Attempt: 2,
			State: enumspb.PENDING_ACTIVITY_STATE_STARTED, LastStartedTime: timestamppb.New(t0), LastHeartbeatTime: timestamppb.New(at),
			HeartbeatDetails: payloads(t, details)}
	}
	d := &Describer{}
	totals := Totals{Put: 10000, SourceBytes: 1_000_000}

	a, err := d.activity(pa("CheckDelivery", t0.Add(10*time.Second), activities.DeliveryState{Delivered: 2000}), totals, t0.Add(11*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a.ETA != nil || !strings.Contains(a.ETAText, "unknown") || a.Attempt != 2 || *a.HeartbeatAge != Duration(time.Second) {
		t.Errorf("first sample: %+v", a)
	}
	// The same heartbeat again: still no rate.
	a, _ = d.activity(pa("CheckDelivery", t0.Add(10*time.Second), activities.DeliveryState{Delivered: 2000}), totals, t0.Add(12*time.Second))
	if a.ETA != nil {
		t.Errorf("same heartbeat twice: ETA %v", *a.ETA)
	}
	a, _ = d.activity(pa("CheckDelivery", t0.Add(14*time.Second), activities.DeliveryState{Delivered: 4000}), totals, t0.Add(15*time.Second))
	if a.Rate != 500 || a.RateFrom != "heartbeats" || a.ETA == nil || *a.ETA != Duration(12*time.Second) || a.ETAText != "12s" {
		t.Errorf("second heartbeat: rate %v from %q, ETA %q", a.Rate, a.RateFrom, a.ETAText)
	}

	// A put's first sample: rate since the put began.
	a, _ = d.activity(pa("PutToKinesis", t0.Add(10*time.Second), activities.PutProgress{Offset: 250_000, StartedAt: t0}), totals, t0.Add(10*time.Second))
	if a.RateFrom != "put start" || math.Abs(a.Rate-25_000) > 1e-6 || a.ETAText != "30s" {
		t.Errorf("put: rate %v from %q, ETA %q", a.Rate, a.RateFrom, a.ETAText)
	}
	// A gzip put: no total, so no ETA, and it says why.
	a, _ = d.activity(pa("PutToKinesis", t0.Add(20*time.Second), activities.PutProgress{Line: 9, StartedAt: t0}), Totals{Gzip: true}, t0.Add(20*time.Second))
	if a.ETA != nil || a.ETAText != "unknown: the total is not known" {
		t.Errorf("gzip put: ETA %q", a.ETAText)
	}
}

func TestDurationIsAStringInJSON(t *testing.T) {
	b, err := json.Marshal(map[string]Duration{"a": Duration(92 * time.Second), "b": Duration(1234567 * time.Microsecond), "c": Duration(1500 * time.Microsecond)})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"a":"1m32s","b":"1.2s","c":"2ms"}` {
		t.Errorf("JSON %s", b)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"1m32s"`), &d); err != nil || d != Duration(92*time.Second) {
		t.Errorf("unmarshal: %v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`92000000000`), &d); err == nil {
		t.Error("an integer duration was accepted")
	}
}

type fakeLister struct {
	pages [][]*workflowpb.WorkflowExecutionInfo
	reqs  []*workflowservice.ListWorkflowExecutionsRequest
}

func (f *fakeLister) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.reqs = append(f.reqs, req)
	i := len(f.reqs) - 1
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: f.pages[i]}
	if i+1 < len(f.pages) {
		resp.NextPageToken = []byte{byte(i + 1)}
	}
	return resp, nil
}

func TestListReadsSearchAttributes(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	sa := func(stage string, read int64) *commonpb.SearchAttributes {
		dc := converter.GetDefaultDataConverter()
		f := map[string]*commonpb.Payload{}
		for k, v := range map[string]any{searchattr.FeedPipeline.GetName(): "customers", searchattr.FeedStage.GetName(): stage,
			searchattr.FeedKey.GetName(): "customers/a.ndjson", searchattr.FeedRecordsRead.GetName(): read,
			searchattr.FeedRecordsBad.GetName(): int64(1), searchattr.FeedRecordsLoad.GetName(): read - 1} {
			p, err := dc.ToPayload(v)
			if err != nil {
				t.Fatal(err)
			}
			f[k] = p
		}
		return &commonpb.SearchAttributes{IndexedFields: f}
	}
	exec := func(id string, start time.Time, status enumspb.WorkflowExecutionStatus, stage string) *workflowpb.WorkflowExecutionInfo {
		e := &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "r"}, Status: status,
			StartTime: timestamppb.New(start), SearchAttributes: sa(stage, 300)}
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			e.CloseTime = timestamppb.New(start.Add(92 * time.Second))
		}
		return e
	}
	f := &fakeLister{pages: [][]*workflowpb.WorkflowExecutionInfo{
		{exec("old", t0, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "Done")},
		{exec("new", t0.Add(time.Hour), enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "Convert"), exec("x", t0, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "Failed")},
	}}
	rs, err := List(context.Background(), f, "ns", Filter{Pipeline: "customers"}, 2, t0.Add(time.Hour+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].WorkflowID != "new" || rs[1].WorkflowID != "old" {
		t.Fatalf("runs %+v, want new then old (limit 2, newest first)", rs)
	}
	if r := rs[1]; r.Status != "Completed" || r.Stage != "Done" || r.Pipeline != "customers" || r.Read != 300 || r.Rejected != 1 || r.Loaded != 299 || r.Duration.String() != "1m32s" {
		t.Errorf("old run %+v", r)
	}
	if r := rs[0]; r.Status != "Running" || r.Duration.String() != "1m0s" || !r.Close.IsZero() {
		t.Errorf("running run %+v", r)
	}
	if q := f.reqs[0].Query; q != "WorkflowType = 'FeedWorkflow' AND FeedPipeline = 'customers'" || f.reqs[0].Namespace != "ns" || f.reqs[0].PageSize != 2 {
		t.Errorf("request %v", f.reqs[0])
	}
	if _, err := List(context.Background(), f, "ns", Filter{}, 0, t0); err == nil || !strings.Contains(err.Error(), "-limit 0") {
		t.Errorf("limit 0: %v", err)
	}
}

func TestLiveCounts(t *testing.T) {
	c := Counts{Read: 10, Put: 10, Delivered: 3}
	liveCounts(&c, activities.PutProgress{Read: 2000, Rejected: 2, Put: 1998})
	liveCounts(&c, activities.DeliveryState{Delivered: 1})
	liveCounts(&c, activities.ConvertProgress{Parts: []activities.ConvertPart{{Rows: 5}, {Rows: 6}}})
	liveCounts(&c, nil)
	if want := (Counts{Read: 2000, Rejected: 2, Put: 1998, Delivered: 3, Converted: 11}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
}

// An attempt's last failure whose message the payload codec encrypted is
// shown decoded.
func TestLastFailureDecodedThroughTheCodec(t *testing.T) {
	key, err := codec.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := codec.NewKeyring("test", key)
	if err != nil {
		t.Fatal(err)
	}
	fc := temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: codec.DataConverter(codec.New(keys)), EncodeCommonAttributes: true})
	f := fc.ErrorToFailure(temporal.NewApplicationError("s3://src/customers/a.ndjson: GetObject failed", "NotFound"))
	if f.GetMessage() == "" || strings.Contains(f.GetMessage(), "s3://") {
		t.Fatalf("the stored message is %q, want it encoded", f.GetMessage())
	}
	plain := (&Describer{}).failure(f)
	got := (&Describer{FailureConverter: fc}).failure(f)
	if got.Type != "NotFound" || got.Message != "s3://src/customers/a.ndjson: GetObject failed" {
		t.Errorf("decoded failure %+v (undecoded %+v)", got, plain)
	}
}
