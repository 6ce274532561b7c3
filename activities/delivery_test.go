package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// Staging holds this feed's records (one delivered twice, one written by
// another tool with its fields in another order) and another feed's.
func stage(m *memS3) {
	m.objs["st/raw/2026/01/01/00/a"] = []byte(`{"_feed_id":"f1","_line":1,"id":1,"name":"a"}` + "\n" + `{"_feed_id":"zz","_line":1,"id":9}` + "\n")
	m.objs["st/raw/2026/01/01/00/b"] = []byte(`{"_feed_id":"f1","_line":1,"id":1,"name":"a"}` + "\n" + `{"id":3,"_line":3,"_feed_id":"f1"}`)
	m.objs["st/raw/2026/01/01/00/c"] = []byte(`{"_feed_id":"f1","_line":2,"id":2,"name":null}` + "\n")
	m.objs["st/raw/2026/01/01/00/d"] = []byte(`{"_feed_id":"other","_line":2,"id":2}` + "\n")
}

func TestAwaitDeliveryCountsDistinctLinesAndWritesManifest(t *testing.T) {
	m := newMemS3()
	stage(m)
	p := testPipeline()
	p.StagingBucket, p.StagingPrefix = "st", "raw/"
	a := &Activities{S3: m, PollInterval: time.Millisecond}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.AwaitDelivery, DeliveryInput{FeedID: "f1", Pipeline: p, Expected: 3, Lines: 3,
		Since: time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var res DeliveryResult
	_ = v.Get(&res)
	if res.Delivered != 3 || res.Duplicates != 1 || res.Objects != 3 {
		t.Errorf("result %+v, want 3 delivered, 1 duplicate, 3 objects", res)
	}
	var man Manifest
	if err := json.Unmarshal(m.objs["st/"+res.ManifestKey], &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Keys) != 3 || man.Keys[0] != "raw/2026/01/01/00/a" || man.FeedID != "f1" {
		t.Errorf("manifest %+v", man)
	}

	// ConvertLocal turns the manifest into Parquet with one row per line.
	env = s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	p.DestBucket, p.DestPrefix = "dst", "c/"
	v, err = env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, ManifestKey: res.ManifestKey, Expected: 3, Lines: 3})
	if err != nil {
		t.Fatal(err)
	}
	var conv ConvertResult
	_ = v.Get(&conv)
	if conv.Rows != 3 || conv.Duplicates != 1 || conv.ParquetKey != "c/f1.parquet" {
		t.Errorf("convert %+v", conv)
	}
	type row struct {
		FeedID string  `parquet:"_feed_id"`
		Line   int64   `parquet:"_line"`
		ID     int64   `parquet:"id"`
		Name   *string `parquet:"name,optional"`
	}
	pq := m.objs["dst/c/f1.parquet"]
	rows, err := parquet.Read[row](bytes.NewReader(pq), int64(len(pq)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]row{}
	for _, r := range rows {
		got[r.Line] = r
	}
	if len(rows) != 3 || got[1].ID != 1 || *got[1].Name != "a" || got[2].Name != nil || got[3].ID != 3 || got[3].FeedID != "f1" {
		t.Errorf("parquet rows %+v", rows)
	}

	// A retry finds the file written and reuses it.
	v, err = env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, ManifestKey: res.ManifestKey, Expected: 3, Lines: 3})
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Get(&conv)
	if !conv.Reused || conv.Rows != 3 {
		t.Errorf("second convert %+v, want the existing file reused", conv)
	}
}

func TestAwaitDeliveryGivesUpWithTheMissingCount(t *testing.T) {
	m := newMemS3()
	stage(m)
	p := testPipeline()
	p.StagingBucket, p.StagingPrefix = "st", "raw/"
	a := &Activities{S3: m, PollInterval: 10 * time.Millisecond}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	// The activity gives up shortly before its own deadline.
	deadline, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: deadline})
	_, err := env.ExecuteActivity(a.AwaitDelivery, DeliveryInput{FeedID: "f1", Pipeline: p, Expected: 5, Lines: 5,
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("delivered 3 of 5 records")) || !bytes.Contains([]byte(err.Error()), []byte(ErrDelivery)) {
		t.Fatalf("err = %v, want DeliveryIncomplete with 3 of 5", err)
	}
}

func parquetObject(t *testing.T, p pipeline.Pipeline, rows ...[3]any) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := parquetconv.NewWriter(&b, p.Schema, parquetconv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		vals := []schema.Value{{I: r[2].(int64)}, {Null: true}}
		if err := w.Write(r[0].(string), r[1].(int64), vals); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Firehose mode: the staged objects are Parquet (Firehose's record format
// conversion); delivery counts and conversion dedups this feed's rows there.
func TestFirehoseModeReadsParquetStaging(t *testing.T) {
	m := newMemS3()
	p := testPipeline()
	p.Conversion, p.StagingBucket, p.StagingPrefix, p.DestBucket, p.DestPrefix = pipeline.ConvertFirehose, "st", "raw/", "dst", "c/"
	m.objs["st/raw/2026/01/01/00/a.parquet"] = parquetObject(t, p, [3]any{"f1", int64(1), int64(10)}, [3]any{"zz", int64(1), int64(99)})
	m.objs["st/raw/2026/01/01/00/b.parquet"] = parquetObject(t, p, [3]any{"f1", int64(2), int64(20)}, [3]any{"f1", int64(1), int64(10)})
	a := &Activities{S3: m, PollInterval: time.Millisecond}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.AwaitDelivery, DeliveryInput{FeedID: "f1", Pipeline: p, Expected: 2, Lines: 2, Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var del DeliveryResult
	_ = v.Get(&del)
	if del.Delivered != 2 || del.Duplicates != 1 || del.Objects != 2 {
		t.Fatalf("delivery %+v", del)
	}
	v, err = env.ExecuteActivity(a.ConvertLocal, ConvertInput{FeedID: "f1", Pipeline: p, ManifestKey: del.ManifestKey, Expected: 2, Lines: 2})
	if err != nil {
		t.Fatal(err)
	}
	var conv ConvertResult
	_ = v.Get(&conv)
	var got []string
	err = parquetconv.ReadRecords(m.objs["dst/"+conv.ParquetKey], p.Schema, func(id string, line int64, vals []schema.Value) error {
		got = append(got, fmt.Sprintf("%s:%d:%d", id, line, vals[0].I))
		return nil
	})
	if err != nil || conv.Rows != 2 || conv.Duplicates != 1 || strings.Join(got, ",") != "f1:1:10,f1:2:20" {
		t.Errorf("convert %+v, rows %v, %v", conv, got, err)
	}
}
