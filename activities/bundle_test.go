package activities

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// deliverInTwoPasses runs AwaitDelivery's passes over stage's objects, with
// object c arriving between them, and returns the last pass's state.
func deliverInTwoPasses(t *testing.T, m *countingS3) DeliveryState {
	t.Helper()
	stage(m.memS3)
	c := m.objs["st/raw/feed=f1/2026/01/01/00/c"]
	delete(m.objs, "st/raw/feed=f1/2026/01/01/00/c")
	a := &Activities{S3: m}
	in := DeliveryInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3}
	st, err := checkDelivery(t, a, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.objs["st/raw/feed=f1/2026/01/01/00/c"] = c
	in.State = st
	if st, err = checkDelivery(t, a, in, nil); err != nil || !st.Done(3) {
		t.Fatalf("second pass %+v, %v", st, err)
	}
	return st
}

func convertLocal(t *testing.T, a *Activities, in ConvertInput, heartbeat any) ConvertResult {
	t.Helper()
	var res ConvertResult
	if err := runActivity(a, a.ConvertLocal, in, heartbeat, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// publishedLines counts each line in the feed's published Parquet files.
func publishedLines(t *testing.T, m *memS3, res ConvertResult) map[int64]int {
	t.Helper()
	lines := map[int64]int{}
	for _, f := range res.Files {
		err := parquetconv.ReadRecords(m.objs["dst/"+f.Key], stagingPipeline().Schema, func(_ string, line int64, _ []schema.Value) error {
			lines[line]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return lines
}

// Convert reads what AwaitDelivery read from its bundles, not from staging
// again. Objects no bundle holds can hold only duplicates (delivery had every
// line), here one that arrived after the last line: Convert does not even
// list them. It removes the bundles once the Parquet is published.
func TestConvertReadsDeliveryBundlesNotStagingAgain(t *testing.T) {
	m := &countingS3{memS3: newMemS3()}
	st := deliverInTwoPasses(t, m)
	m.objs["st/raw/feed=f1/2026/01/01/00/d"] = []byte(`{"_feed_id":"f1","_line":2,"id":2}` + "\n") // late duplicate
	before := m.gets.Load()
	a := &Activities{S3: m, TempDir: t.TempDir()}
	res := convertLocal(t, a, ConvertInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3, Delivered: st.Checkpoint}, nil)
	if got := m.gets.Load() - before; got != 0 || res.Reads != 2 {
		t.Errorf("convert %+v made %d staging GETs; want the 2 bundles read, nothing from staging", res, got)
	}
	if res.Rows != 3 || res.Duplicates != 1 {
		t.Errorf("convert %+v, want 3 rows and the 1 duplicate the bundles hold", res)
	}
	if l := publishedLines(t, m.memS3, res); len(l) != 3 || l[1] != 1 || l[2] != 1 || l[3] != 1 {
		t.Errorf("published lines %v, want 1, 2 and 3 once each", l)
	}
	for k := range m.objs {
		if strings.HasPrefix(k, "st/checkpoints/") {
			t.Errorf("%s left behind after the conversion was published", k)
		}
	}
}

// A bundle removed by hand (or damaged) is read from the staging objects it
// names: slower, never wrong.
func TestConvertReadsALostBundlesObjectsFromStaging(t *testing.T) {
	for _, damage := range []string{"removed", "damaged", "wrong keys"} {
		t.Run(damage, func(t *testing.T) {
			m := &countingS3{memS3: newMemS3()}
			st := deliverInTwoPasses(t, m)
			var bundles []string
			for k := range m.objs {
				if strings.Contains(k, "/bundle-") {
					bundles = append(bundles, k)
				}
			}
			if len(bundles) != 2 {
				t.Fatalf("bundles %v, want one per pass", bundles)
			}
			first := bundles[0]
			if strings.Compare(bundles[1], first) < 0 {
				first = bundles[1]
			}
			switch damage {
			case "removed":
				delete(m.objs, first)
			case "damaged":
				m.objs[first] = m.objs[first][:len(m.objs[first])/2]
			case "wrong keys":
				w := newBundleWriter()
				_ = w.add("2026/01/01/00/zz", []byte(`{"_feed_id":"f1","_line":1,"id":1}`))
				_ = w.zw.Close()
				m.objs[first] = w.buf.Bytes()
			}
			before := m.gets.Load()
			a := &Activities{S3: m, TempDir: t.TempDir()}
			res := convertLocal(t, a, ConvertInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3, Delivered: st.Checkpoint}, nil)
			if got := m.gets.Load() - before; got != 2 {
				t.Errorf("%d staging GETs, want the first pass's 2 objects read from staging", got)
			}
			if l := publishedLines(t, m.memS3, res); res.Rows != 3 || res.Duplicates != 1 || len(l) != 3 || l[1] != 1 || l[2] != 1 || l[3] != 1 {
				t.Errorf("convert %+v, lines %v; want 3 rows, 1 duplicate, each line once", res, l)
			}
		})
	}
}

// A retried Convert whose last part ended inside a bundle goes on with that
// bundle's next frame.
func TestConvertResumesInsideABundle(t *testing.T) {
	m, a, in, bundles := convertAfterTwoPasses(t)
	p := in.Pipeline

	// The killed attempt wrote part 1 from the first pass's first object.
	firstKey := FeedStagingPrefix(p, "f1") + bundles[0].Keys[0]
	part1 := firstPart(t, a, in, firstKey, m.objs["st/"+firstKey])

	before := m.gets.Load()
	res := convertLocal(t, a, in, ConvertProgress{Parts: []ConvertPart{part1.ConvertPart}, Dups: part1.dups, Reads: 1})
	if res.ResumedAtPart != 2 || m.gets.Load() != before || res.Reads != 3 {
		t.Errorf("convert %+v after %d staging GETs; want it resumed at part 2 from the 2 bundles", res, m.gets.Load()-before)
	}
	if l := publishedLines(t, m.memS3, res); res.Rows != 3 || res.Duplicates != 1 || len(l) != 3 || l[1] != 1 || l[2] != 1 || l[3] != 1 {
		t.Errorf("convert %+v, lines %v; want 3 rows, 1 duplicate, each line once", res, l)
	}
}

// slowS3 answers GETs of keys containing "slow" after a delay.
type slowS3 struct {
	*countingS3
	delay time.Duration
}

func (s *slowS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if strings.Contains(aws.ToString(in.Key), "slow") {
		time.Sleep(s.delay)
	}
	return s.countingS3.GetObject(ctx, in, o...)
}

// A pass that saves mid-way (a long one after a short one) names its bundles
// apart from the last save of the pass before: Convert finds every bundle
// its checkpoint names and reads nothing from staging again.
func TestDeliveryPassesNameTheirBundlesApart(t *testing.T) {
	if testing.Short() {
		t.Skip("takes one checkpoint interval")
	}
	m := &slowS3{countingS3: &countingS3{memS3: newMemS3()}, delay: 450 * time.Millisecond}
	const lines = 202
	obj := func(l int) []byte {
		return []byte(fmt.Sprintf(`{"_feed_id":"f1","_line":%d,"id":%d,"name":"x"}`+"\n", l, l))
	}
	m.objs["st/raw/feed=f1/2026/01/01/00/a1"] = obj(1)
	m.objs["st/raw/feed=f1/2026/01/01/00/a2"] = obj(2)
	a := &Activities{S3: m}
	in := DeliveryInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: lines, Lines: lines}
	st, err := checkDelivery(t, a, in, nil)
	if err != nil || st.Delivered != 2 {
		t.Fatalf("first pass %+v, %v", st, err)
	}
	// 200 objects at 450 ms each, 16 at a time: over checkpointEvery.
	for l := 3; l <= lines; l++ {
		m.objs[fmt.Sprintf("st/raw/feed=f1/2026/01/01/00/slow%03d", l)] = obj(l)
	}
	in.State = st
	if st, err = checkDelivery(t, a, in, nil); err != nil || !st.Done(lines) {
		t.Fatalf("second pass %+v, %v", st, err)
	}
	cp, err := a.loadDeliveryCheckpoint(context.Background(), in.Pipeline, "f1", st.Checkpoint, lines)
	if err != nil || len(cp.bundles) < 3 {
		t.Fatalf("checkpoint %+v, %v; want the first pass's bundle and at least two of the second's", cp, err)
	}
	before := m.gets.Load()
	res := convertLocal(t, &Activities{S3: m, TempDir: t.TempDir()}, ConvertInput{FeedID: "f1", Pipeline: in.Pipeline, Expected: lines, Lines: lines, Delivered: st.Checkpoint}, nil)
	if got := m.gets.Load() - before; got != 0 || res.Rows != lines {
		t.Errorf("convert %+v read %d staging objects; want every line from the %d bundles", res, got, len(cp.bundles))
	}
}

// A retry whose parts followed the bundles, when the bundles are gone, does
// not guess which staging objects the parts covered (key order is not
// bundle order): it converts the feed again from the start.
func TestConvertStartsOverWhenItsBundlesAreLost(t *testing.T) {
	m, a, in, bundles := convertAfterTwoPasses(t)
	p := in.Pipeline
	// Part 1 covered the second pass's object c (line 2), the last key.
	lastKey := FeedStagingPrefix(p, "f1") + bundles[1].Keys[0]
	part1 := firstPart(t, a, in, lastKey, m.objs["st/"+lastKey])
	delete(m.objs, "st/"+in.Delivered) // the delivery checkpoint, and with it the bundle list

	res := convertLocal(t, a, in, ConvertProgress{Parts: []ConvertPart{part1.ConvertPart}, Reads: 1, Bundled: true})
	if l := publishedLines(t, m.memS3, res); res.Rows != 3 || res.ResumedAtPart != 0 || len(l) != 3 || l[1] != 1 || l[2] != 1 || l[3] != 1 {
		t.Errorf("convert %+v, lines %v; want it started over: 3 rows, each line once", res, l)
	}
}

// firstPart is what a killed attempt of Convert had written: part 1, from
// the one staging object key, checkpointed in the staging bucket.
func firstPart(t *testing.T, a *Activities, in ConvertInput, key string, body []byte) finishedPart {
	t.Helper()
	seen := newBitset(in.Lines)
	w, err := a.newPartWriter(in, seen, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sink.add(context.Background(), key, body); err != nil {
		t.Fatal(err)
	}
	w.last = key
	part, err := a.finishPart(context.Background(), in, w, seen, 1)
	if err != nil {
		t.Fatal(err)
	}
	return part
}

// convertAfterTwoPasses delivers stage's objects in two passes and returns
// Convert's input with the last checkpoint, and the bundles it lists: the
// first pass's 2 objects, then c.
func convertAfterTwoPasses(t *testing.T) (*countingS3, *Activities, ConvertInput, []bundleRef) {
	t.Helper()
	m := &countingS3{memS3: newMemS3()}
	st := deliverInTwoPasses(t, m)
	a := &Activities{S3: m, TempDir: t.TempDir()}
	in := ConvertInput{FeedID: "f1", Pipeline: stagingPipeline(), Expected: 3, Lines: 3, Delivered: st.Checkpoint}
	bundles, err := a.deliveryBundles(context.Background(), in)
	if err != nil || len(bundles) != 2 || len(bundles[0].Keys) != 2 {
		t.Fatalf("bundles %+v, %v; want the first pass's 2 objects, then c", bundles, err)
	}
	return m, a, in, bundles
}
