package activities

import (
	"context"
	"sort"
	"testing"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// A cancelled run's quarantine parts and checkpoints go; what finished
// stages published, the staging records and other feeds' objects stay.
func TestCleanUpCanceledRemovesOnlyTheRunsLeftovers(t *testing.T) {
	m := newMemS3()
	p := pipeline.Pipeline{Name: "customers", StagingBucket: "stg", QuarantineBucket: "q", DestBucket: "dst", DestPrefix: "customers/", StagingPrefix: "raw/"}
	for _, k := range []string{
		"q/" + quarantinePartPrefix(p, "f1") + "part-000000000010.ndjson",
		"q/" + quarantinePartPrefix(p, "f1") + "part-000000000090.ndjson",
		"q/" + QuarantineKey(p, "f1"),
		"q/" + quarantinePartPrefix(p, "f2") + "part-000000000010.ndjson",
		"stg/" + DeliveryCheckpointPrefix(p, "f1") + "lines",
		"stg/" + ConvertCheckpointPrefix(p, "f1") + "part-00001.parquet",
		"stg/" + ConvertCheckpointPrefix(p, "f2") + "part-00001.parquet",
		"stg/" + FeedStagingPrefix(p, "f1") + "2026/12/06/rec-1",
		"dst/" + ParquetPrefix(p, "f1") + "part-00001.parquet",
	} {
		m.objs[k] = []byte("x")
	}
	a := &Activities{S3: m}
	res, err := a.CleanUpCanceled(context.Background(), CleanupInput{FeedID: "f1", Pipeline: p})
	if err != nil {
		t.Fatal(err)
	}
	if res.QuarantineParts != 2 || res.Checkpoints != 2 {
		t.Errorf("removed %+v, want 2 quarantine parts and 2 checkpoints", res)
	}
	var left []string
	for k := range m.objs {
		left = append(left, k)
	}
	sort.Strings(left)
	want := []string{
		"dst/" + ParquetPrefix(p, "f1") + "part-00001.parquet",
		"q/" + QuarantineKey(p, "f1"),
		"q/" + quarantinePartPrefix(p, "f2") + "part-000000000010.ndjson",
		"stg/" + ConvertCheckpointPrefix(p, "f2") + "part-00001.parquet",
		"stg/" + FeedStagingPrefix(p, "f1") + "2026/12/06/rec-1",
	}
	sort.Strings(want)
	if len(left) != len(want) {
		t.Fatalf("left %q, want %q", left, want)
	}
	for i := range want {
		if left[i] != want[i] {
			t.Errorf("left %q, want %q", left, want)
			break
		}
	}
	// Again: nothing to do, no error.
	if res, err := a.CleanUpCanceled(context.Background(), CleanupInput{FeedID: "f1", Pipeline: p}); err != nil || res != (CleanupResult{}) {
		t.Errorf("second cleanup: %+v, %v", res, err)
	}
}
