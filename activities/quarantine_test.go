package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// quarantineS3 adds to memS3 what the merge tests need: user metadata, call
// counts, and an attempt killed at a chosen call. The S3API methods the
// merge does not call are left to the nil embedded interface.
type quarantineS3 struct {
	S3API
	mem     *memS3
	mu      sync.Mutex
	puts    int // successful PutObject calls
	deletes int // successful DeleteObject calls

	failPutKey       string // PutObject of this key fails (killed before the write)
	failDeletesAfter int    // DeleteObject fails after this many deletes; < 0: never
	cancel           func() // called when a delete fails: the attempt is killed
}

func newQuarantineS3() *quarantineS3 {
	return &quarantineS3{mem: newMemS3(), failDeletesAfter: -1}
}

func (q *quarantineS3) obj(key string) ([]byte, bool) {
	q.mem.mu.Lock()
	defer q.mem.mu.Unlock()
	b, ok := q.mem.objs[key]
	return b, ok
}

func (q *quarantineS3) setObj(key string, b []byte) {
	q.mem.mu.Lock()
	defer q.mem.mu.Unlock()
	q.mem.objs[key] = b
}

func (q *quarantineS3) deleteObj(key string) {
	q.mem.mu.Lock()
	defer q.mem.mu.Unlock()
	delete(q.mem.objs, key)
}

func (q *quarantineS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return q.mem.ListObjectsV2(ctx, in, opts...)
}

func (q *quarantineS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if q.failPutKey != "" && aws.ToString(in.Key) == q.failPutKey {
		return nil, errors.New("killed before the write")
	}
	out, err := q.mem.PutObject(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.puts++
	return out, nil
}

// GetObject and HeadObject: memS3's, which keep user metadata.
func (q *quarantineS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return q.mem.GetObject(ctx, in, opts...)
}

func (q *quarantineS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return q.mem.HeadObject(ctx, in, opts...)
}

func (q *quarantineS3) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	q.mu.Lock()
	if q.failDeletesAfter >= 0 && q.deletes >= q.failDeletesAfter {
		q.mu.Unlock()
		if q.cancel != nil {
			q.cancel()
			return nil, ctx.Err()
		}
		return nil, errors.New("delete failed")
	}
	q.deletes++
	q.mu.Unlock()
	return q.mem.DeleteObject(ctx, in, opts...)
}

// heal lets every call succeed again, as a retried attempt on a healthy worker.
func (q *quarantineS3) heal() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failPutKey, q.failDeletesAfter, q.cancel = "", -1, nil
}

const qFeed = "f0123456789abcde"

// qSegments are the feed's rejected lines, by the checkpoint segment (part)
// that wrote them.
var qSegments = [][]int64{{3, 5, 8}, {2001, 2500}, {4003}, {6000, 6001, 6002}}

func qLine(n int64) quarantined {
	return quarantined{Feed: "s3://src/k@v1", Line: n, Reason: fmt.Sprintf("reason %d", n), Raw: fmt.Sprintf(`{"bad":%d`, n)}
}

func encodeLines(t *testing.T, lines ...quarantined) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// seedParts writes the parts as PutToKinesis's checkpoints do and returns
// the number of lines in them.
func seedParts(t *testing.T, q *quarantineS3, p pipeline.Pipeline, segments [][]int64) int64 {
	t.Helper()
	n := int64(0)
	for _, seg := range segments {
		var lines []quarantined
		for _, l := range seg {
			lines = append(lines, qLine(l))
		}
		n += int64(len(seg))
		q.setObj(partKey(p, seg[0]), encodeLines(t, lines...))
	}
	return n
}

func partKey(p pipeline.Pipeline, first int64) string {
	return fmt.Sprintf("%s/%spart-%012d.ndjson", p.QuarantineBucket, quarantinePartPrefix(p, qFeed), first)
}

func (q *quarantineS3) partsLeft(p pipeline.Pipeline) int {
	q.mem.mu.Lock()
	defer q.mem.mu.Unlock()
	n := 0
	for k := range q.mem.objs {
		if strings.HasPrefix(k, p.QuarantineBucket+"/"+quarantinePartPrefix(p, qFeed)) {
			n++
		}
	}
	return n
}

// checkMerged fails the test unless the merged object holds exactly the
// lines of segments, once each, in order, as the parts had them.
func checkMerged(t *testing.T, q *quarantineS3, p pipeline.Pipeline, segments [][]int64, when string) {
	t.Helper()
	var want []quarantined
	for _, seg := range segments {
		for _, l := range seg {
			want = append(want, qLine(l))
		}
	}
	body, ok := q.obj(p.QuarantineBucket + "/" + QuarantineKey(p, qFeed))
	if !ok {
		t.Fatalf("%s: no merged quarantine object", when)
	}
	if !bytes.Equal(body, encodeLines(t, want...)) {
		t.Errorf("%s: merged quarantine is\n%s\nwant the %d lines\n%s", when, body, len(want), encodeLines(t, want...))
	}
}

func mergeErrType(err error) (string, bool) {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type(), app.NonRetryable()
	}
	return "", false
}

// An attempt killed at any point of the merge (before the write, after it,
// after any number of part deletes) leaves a quarantine from which the retry
// writes the same complete object, never fewer lines; a merge that is done
// is not redone.
func TestMergeQuarantineRetryAfterAnyInterruption(t *testing.T) {
	p := testPipeline()
	nParts := len(qSegments)
	type kill struct {
		name        string
		failPut     bool // killed before the merged object is written
		afterDelete int  // else killed after this many parts are deleted; -1: not killed
		cancel      bool // the kill cancels the attempt's context (else a delete just fails)
	}
	kills := []kill{{name: "before the write", failPut: true}}
	for k := 0; k < nParts; k++ {
		kills = append(kills,
			kill{name: fmt.Sprintf("killed after %d of %d deletes", k, nParts), afterDelete: k, cancel: true},
			kill{name: fmt.Sprintf("delete %d of %d fails", k+1, nParts), afterDelete: k})
	}
	kills = append(kills, kill{name: "not killed", afterDelete: -1})
	for _, kl := range kills {
		t.Run(kl.name, func(t *testing.T) {
			q := newQuarantineS3()
			want := seedParts(t, q, p, qSegments)
			a := &Activities{S3: q}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			mergedKey := QuarantineKey(p, qFeed)
			if kl.failPut {
				q.failPutKey = mergedKey
			} else {
				q.failDeletesAfter = kl.afterDelete
			}
			if kl.cancel {
				q.cancel = cancel
			}

			key, err := a.mergeQuarantine(ctx, p, qFeed, want, nil)
			switch {
			case kl.failPut:
				if err == nil {
					t.Fatal("the write failed, yet the merge reports success")
				}
				if _, ok := q.obj(p.QuarantineBucket + "/" + mergedKey); ok {
					t.Fatal("a merged object exists though its write failed")
				}
				if left := q.partsLeft(p); left != nParts {
					t.Fatalf("%d parts left after a failed write, want all %d", left, nParts)
				}
			case kl.cancel:
				if err == nil {
					t.Fatal("the attempt was killed, yet the merge reports success")
				}
				checkMerged(t, q, p, qSegments, "after the kill")
				if left := q.partsLeft(p); left != nParts-kl.afterDelete {
					t.Errorf("%d parts left, want %d", left, nParts-kl.afterDelete)
				}
			default:
				// A failed delete leaves a part behind, harmlessly.
				if err != nil || key != mergedKey {
					t.Fatalf("merge = %q, %v", key, err)
				}
				checkMerged(t, q, p, qSegments, "after the first attempt")
			}

			// The retry.
			q.heal()
			key, err = a.mergeQuarantine(context.Background(), p, qFeed, want, nil)
			if err != nil || key != mergedKey {
				t.Fatalf("retry: merge = %q, %v", key, err)
			}
			checkMerged(t, q, p, qSegments, "after the retry")
			if left := q.partsLeft(p); left != 0 {
				t.Errorf("%d parts left after the retry", left)
			}
			if got := q.mem.meta[p.QuarantineBucket+"/"+mergedKey][quarantineLinesMeta]; got != fmt.Sprint(want) {
				t.Errorf("metadata %s = %q, want %d", quarantineLinesMeta, got, want)
			}
			if q.puts != 1 {
				t.Errorf("the merged object was written %d times, want once", q.puts)
			}

			// Once more: nothing to do, nothing rewritten.
			puts := q.puts
			if key, err := a.mergeQuarantine(context.Background(), p, qFeed, want, nil); err != nil || key != mergedKey {
				t.Fatalf("third merge = %q, %v", key, err)
			}
			if q.puts != puts {
				t.Error("a complete merged object was written again")
			}
			checkMerged(t, q, p, qSegments, "after a third merge")
		})
	}
}

// The object an attempt of the old merge left (no line count in its
// metadata) is kept: merged with the remaining parts, or given its count.
func TestMergeQuarantineAdoptsAnObjectWithoutCount(t *testing.T) {
	p := testPipeline()
	mergedKey := p.QuarantineBucket + "/" + QuarantineKey(p, qFeed)
	for _, remaining := range []int{2, 0} {
		t.Run(fmt.Sprintf("%d parts remain", remaining), func(t *testing.T) {
			q := newQuarantineS3()
			want := seedParts(t, q, p, qSegments)
			var all []quarantined
			for _, seg := range qSegments {
				for _, l := range seg {
					all = append(all, qLine(l))
				}
			}
			q.setObj(mergedKey, encodeLines(t, all...))
			for _, seg := range qSegments[:len(qSegments)-remaining] {
				q.deleteObj(partKey(p, seg[0]))
			}
			if _, err := (&Activities{S3: q}).mergeQuarantine(context.Background(), p, qFeed, want, nil); err != nil {
				t.Fatal(err)
			}
			checkMerged(t, q, p, qSegments, "after the merge")
			if q.puts != 1 || q.mem.meta[mergedKey][quarantineLinesMeta] != fmt.Sprint(want) {
				t.Errorf("%d writes, metadata %v; want one write with the line count", q.puts, q.mem.meta[mergedKey])
			}
			if left := q.partsLeft(p); left != 0 {
				t.Errorf("%d parts left", left)
			}
		})
	}
}

// A line found both in the merged object and in a part (or in two parts) is
// kept once; a part's newer reason wins; different raw lines under one line
// number are an error.
func TestMergeQuarantineKeepsEachLineOnce(t *testing.T) {
	p := testPipeline()
	mergedKey := p.QuarantineBucket + "/" + QuarantineKey(p, qFeed)
	q := newQuarantineS3()
	seedParts(t, q, p, [][]int64{{3, 5}, {8}})
	q.setObj(partKey(p, 5), encodeLines(t, qLine(5))) // overlaps the first part
	newer := qLine(8)
	newer.Reason = "a clearer reason"
	q.setObj(partKey(p, 8), encodeLines(t, newer))
	q.setObj(mergedKey, encodeLines(t, qLine(3), qLine(8)))
	if _, err := (&Activities{S3: q}).mergeQuarantine(context.Background(), p, qFeed, 3, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.obj(mergedKey); !bytes.Equal(got, encodeLines(t, qLine(3), qLine(5), newer)) {
		t.Errorf("merged\n%s\nwant\n%s", got, encodeLines(t, qLine(3), qLine(5), newer))
	}

	q = newQuarantineS3()
	seedParts(t, q, p, [][]int64{{3, 5}})
	changed := qLine(5)
	changed.Raw = "another line"
	q.setObj(mergedKey, encodeLines(t, changed))
	_, err := (&Activities{S3: q}).mergeQuarantine(context.Background(), p, qFeed, 2, nil)
	if typ, nonRetryable := mergeErrType(err); typ != ErrQuarantine || !nonRetryable || !strings.Contains(err.Error(), "feed line 5") {
		t.Errorf("merging two different lines 5: err = %v", err)
	}
	if got, _ := q.obj(mergedKey); q.partsLeft(p) != 1 || !bytes.Equal(got, encodeLines(t, changed)) {
		t.Error("a failed merge changed the quarantine")
	}
}

// A quarantine that does not hold the number of lines the run counted is a
// non-retryable error naming the feed, both counts and the fix, and changes
// nothing.
func TestMergeQuarantineWantMismatch(t *testing.T) {
	p := testPipeline()
	mergedKey := p.QuarantineBucket + "/" + QuarantineKey(p, qFeed)
	for _, want := range []int64{10, 8} {
		q := newQuarantineS3()
		have := seedParts(t, q, p, qSegments) // 9
		_, err := (&Activities{S3: q}).mergeQuarantine(context.Background(), p, qFeed, want, nil)
		if err == nil {
			t.Fatalf("want %d with %d lines quarantined: no error", want, have)
		}
		msg := err.Error()
		for _, s := range []string{qFeed, fmt.Sprintf("hold %d distinct rejected lines", have), fmt.Sprintf("the run counted %d", want),
			"Delete s3://q/quarantine/customers/" + qFeed + ".ndjson", "start the feed again"} {
			if !strings.Contains(msg, s) {
				t.Errorf("error %q does not say %q", msg, s)
			}
		}
		if typ, nonRetryable := mergeErrType(err); typ != ErrQuarantine || !nonRetryable {
			t.Errorf("error type %q non-retryable %v, want %s non-retryable", typ, nonRetryable, ErrQuarantine)
		}
		if _, ok := q.obj(mergedKey); ok || q.partsLeft(p) != len(qSegments) {
			t.Error("a failed merge wrote the merged object or removed parts")
		}
	}

	// Done before with 9 lines; a run that counted 10 is not told it is done.
	q := newQuarantineS3()
	want := seedParts(t, q, p, qSegments)
	a := &Activities{S3: q}
	if _, err := a.mergeQuarantine(context.Background(), p, qFeed, want, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.mergeQuarantine(context.Background(), p, qFeed, want+1, nil); err == nil || !strings.Contains(err.Error(), "the run counted 10") {
		t.Errorf("a complete merge of 9 lines accepted for 10: err = %v", err)
	}
}

// The merge touches the heartbeat clock as it reads and removes parts.
func TestMergeQuarantineTouchesTheBeat(t *testing.T) {
	p := testPipeline()
	q := newQuarantineS3()
	want := seedParts(t, q, p, qSegments)
	_, hb := startBeat(context.Background(), nil)
	defer hb.Stop()
	old := time.Now().Add(-time.Hour)
	hb.mu.Lock()
	hb.moved = old
	hb.mu.Unlock()
	if _, err := (&Activities{S3: q}).mergeQuarantine(context.Background(), p, qFeed, want, hb); err != nil {
		t.Fatal(err)
	}
	hb.mu.Lock()
	moved := hb.moved
	hb.mu.Unlock()
	if !moved.After(old) {
		t.Error("the merge never touched the heartbeat clock")
	}
}
