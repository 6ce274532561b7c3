package activities

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"
	"golang.org/x/sync/errgroup"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// DeliveryInput says which records to look for, and where the previous pass
// stopped.
type DeliveryInput struct {
	FeedID   string            `json:"feed_id"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
	// Expected is the number of records PutToKinesis put (distinct lines).
	Expected int64 `json:"expected"`
	// Lines is the feed's line count: line numbers run from 1 to Lines.
	Lines int64 `json:"lines"`
	// State is what the passes before this one found; zero for the first.
	State DeliveryState `json:"state"`
}

// DeliveryState is how far AwaitDelivery has got: what one pass returns,
// the next pass's starting point, and the heartbeat checkpoint within a pass.
// The set of staging objects read and of lines seen is kept in an S3
// checkpoint object (Checkpoint) so that it survives a retry on another worker.
type DeliveryState struct {
	Delivered  int64  `json:"delivered"`  // distinct lines seen
	Duplicates int64  `json:"duplicates"` // records seen more than once (dropped at conversion)
	Objects    int    `json:"objects"`    // staging objects read that hold this feed's records
	Reads      int64  `json:"reads"`      // GETs of staging objects, every pass and attempt
	Passes     int    `json:"passes"`     // passes finished
	Checkpoint string `json:"checkpoint,omitempty"`
	Resumed    bool   `json:"resumed,omitempty"` // this pass continued from an interrupted attempt's checkpoint
}

// Done reports whether every expected record has been seen.
func (s DeliveryState) Done(expected int64) bool { return s.Delivered >= expected }

// checkpointEvery is how often a pass saves what it has read to S3 and
// heartbeats the pointer: what a killed attempt can lose.
const checkpointEvery = 5 * time.Second

// stagingReaders is how many staging objects a pass reads at once.
const stagingReaders = 16

// CheckDelivery is one pass of AwaitDelivery: it lists the feed's staging
// prefix, reads the objects no earlier pass has read, and counts the distinct
// line numbers of the feed. Firehose has no acknowledgement API; this count
// is the proof. The workflow calls it again after a timer until every record
// is there, so waiting holds no worker slot; within a pass, progress is
// saved every few seconds and a retried attempt resumes from it.
func (a *Activities) CheckDelivery(ctx context.Context, in DeliveryInput) (DeliveryState, error) {
	p := in.Pipeline
	st := in.State
	st.Resumed = false
	if activity.HasHeartbeatDetails(ctx) {
		var hb DeliveryState
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil && hb.Checkpoint != "" {
			st, st.Resumed = hb, true
			activity.GetLogger(ctx).Info("delivery: resuming from checkpoint", "feed", in.FeedID, "delivered", st.Delivered, "objects_read", st.Reads)
		}
	}
	ctx, b := startBeat(ctx, st)
	defer b.Stop()
	cp, err := a.loadDeliveryCheckpoint(ctx, p, in.FeedID, st.Checkpoint, in.Lines)
	var lost *lostCheckpoint
	if errors.As(err, &lost) {
		// Removed by hand, or damaged: count again from zero (slower, never wrong).
		activity.GetLogger(ctx).Warn("delivery: counting again from zero", "feed", in.FeedID, "checkpoint", st.Checkpoint, "why", lost.why)
		st = DeliveryState{Reads: st.Reads, Passes: st.Passes}
		cp, err = a.loadDeliveryCheckpoint(ctx, p, in.FeedID, "", in.Lines)
	}
	if err != nil {
		return st, err
	}
	// The line set is the truth; a count from a heartbeat could be older.
	st.Delivered = cp.lines.count()
	b.Progress(st)

	var todo []string
	if err := a.listFeed(ctx, p, in.FeedID, func(keys []string) error {
		for _, k := range keys {
			if _, ok := cp.read[k]; !ok {
				todo = append(todo, k)
			}
		}
		b.Touch()
		return nil
	}); err != nil {
		return st, err
	}

	var mu sync.Mutex
	saved := time.Now()
	dirty := false
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	seq := 0
	save := func(ctx context.Context) error {
		seq++
		key, err := a.saveDeliveryCheckpoint(ctx, p, in.FeedID, cp, fmt.Sprintf("%d-%d-%d", st.Passes, attempt, seq))
		if err != nil {
			return err
		}
		st.Checkpoint, saved, dirty = key, time.Now(), false
		b.Progress(st)
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(stagingReaders)
	errDone := errors.New("all delivered")
	var saveErr error
	for _, k := range todo {
		mu.Lock()
		done := st.Done(in.Expected)
		if !done && dirty && time.Since(saved) >= checkpointEvery {
			saveErr = save(gctx)
		}
		mu.Unlock()
		if done || saveErr != nil || gctx.Err() != nil {
			break // when done, the rest can only hold duplicates
		}
		g.Go(func() error {
			body, err := a.readObject(gctx, p.StagingBucket, k)
			if err != nil {
				return err
			}
			lines, err := stagedLines(body, p, in.FeedID)
			if err != nil {
				return nonRetryable(ErrBadInput, "await delivery of feed %s: staging object s3://%s/%s: %v", in.FeedID, p.StagingBucket, k, err)
			}
			mu.Lock()
			defer mu.Unlock()
			st.Reads++
			cp.read[k] = struct{}{}
			dirty = true
			if len(lines) > 0 {
				st.Objects++
			}
			for _, l := range lines {
				if l < 1 || l > in.Lines {
					return nonRetryable(ErrBadInput, "await delivery of feed %s: s3://%s/%s holds line %d, outside 1..%d", in.FeedID, p.StagingBucket, k, l, in.Lines)
				}
				if cp.lines.set(l) {
					st.Delivered++
				} else {
					st.Duplicates++
				}
			}
			if st.Done(in.Expected) {
				return errDone
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil && !errors.Is(err, errDone) {
		return st, err
	}
	if saveErr != nil {
		return st, saveErr
	}
	st.Passes++
	if st.Done(in.Expected) {
		a.dropDeliveryCheckpoints(ctx, p, in.FeedID)
		st.Checkpoint = ""
		return st, nil
	}
	if dirty || st.Checkpoint == "" {
		if err := save(ctx); err != nil {
			return st, err
		}
	}
	return st, nil
}

// lostCheckpoint says a checkpoint cannot be used, and why.
type lostCheckpoint struct{ why string }

func (e *lostCheckpoint) Error() string { return "delivery checkpoint lost: " + e.why }

// deliveryCheckpoint is what a pass has read: the staging keys (relative to
// the feed's prefix) and the set of lines seen.
type deliveryCheckpoint struct {
	read  map[string]struct{}
	lines bitset
}

// DeliveryCheckpointPrefix is where AwaitDelivery keeps its checkpoints for
// a feed, in the staging bucket (outside the staging prefix).
func DeliveryCheckpointPrefix(p pipeline.Pipeline, feedID string) string {
	return fmt.Sprintf("checkpoints/%s/%s/", p.Name, feedID)
}

// The checkpoint object is gzip of: the line count (uvarint), the line set's
// words (8 bytes each, little endian), then the keys read, one per line.
// Checkpoints are never overwritten or deleted while the stage runs (a retry
// may hold a pointer to any of them); they are removed when it finishes.
func (a *Activities) saveDeliveryCheckpoint(ctx context.Context, p pipeline.Pipeline, feedID string, cp *deliveryCheckpoint, name string) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	var hdr [binary.MaxVarintLen64]byte
	zw.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(cp.lines)))])
	words := make([]byte, 8*len(cp.lines))
	for i, w := range cp.lines {
		binary.LittleEndian.PutUint64(words[8*i:], w)
	}
	zw.Write(words)
	prefix := FeedStagingPrefix(p, feedID)
	for k := range cp.read {
		zw.Write([]byte(strings.TrimPrefix(k, prefix)))
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	key := fmt.Sprintf("%sdelivery-%s.gz", DeliveryCheckpointPrefix(p, feedID), name)
	if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.StagingBucket, Key: &key, Body: bytes.NewReader(buf.Bytes())}); err != nil {
		return "", classifyAWS(err, fmt.Sprintf("await delivery of feed %s: save checkpoint s3://%s/%s", feedID, p.StagingBucket, key))
	}
	return key, nil
}

func (a *Activities) loadDeliveryCheckpoint(ctx context.Context, p pipeline.Pipeline, feedID, key string, lines int64) (*deliveryCheckpoint, error) {
	cp := &deliveryCheckpoint{read: map[string]struct{}{}, lines: newBitset(lines)}
	if key == "" {
		return cp, nil
	}
	body, err := a.readObject(ctx, p.StagingBucket, key)
	if err != nil {
		if ErrorTypeOf(err) == ErrNotFound {
			return nil, &lostCheckpoint{"not found"}
		}
		if isNonRetryable(err) {
			return nil, err
		}
		return nil, fmt.Errorf("await delivery of feed %s: load checkpoint: %w", feedID, err)
	}
	bad := func(why string) error {
		return &lostCheckpoint{fmt.Sprintf("s3://%s/%s is damaged: %s", p.StagingBucket, key, why)}
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, bad(err.Error())
	}
	br := bufio.NewReader(zr)
	n, err := binary.ReadUvarint(br)
	if err != nil || n != uint64(len(cp.lines)) {
		return nil, bad(fmt.Sprintf("line set of %d words, want %d", n, len(cp.lines)))
	}
	words := make([]byte, 8*n)
	if _, err := io.ReadFull(br, words); err != nil {
		return nil, bad(err.Error())
	}
	for i := range cp.lines {
		cp.lines[i] = binary.LittleEndian.Uint64(words[8*i:])
	}
	prefix := FeedStagingPrefix(p, feedID)
	for {
		k, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && k == "" {
			break
		}
		if err != nil {
			return nil, bad(err.Error())
		}
		cp.read[prefix+strings.TrimSuffix(k, "\n")] = struct{}{}
	}
	return cp, nil
}

// dropDeliveryCheckpoints removes the feed's delivery checkpoints once the
// stage is done; a failure only leaves them for a lifecycle rule.
func (a *Activities) dropDeliveryCheckpoints(ctx context.Context, p pipeline.Pipeline, feedID string) {
	prefix := DeliveryCheckpointPrefix(p, feedID)
	out, err := a.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &p.StagingBucket, Prefix: &prefix})
	if err != nil {
		activity.GetLogger(ctx).Warn("delivery: could not list old checkpoints", "prefix", prefix, "err", err)
		return
	}
	for _, o := range out.Contents {
		if _, err := a.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &p.StagingBucket, Key: o.Key}); err != nil {
			activity.GetLogger(ctx).Warn("delivery: could not remove an old checkpoint", "key", aws.ToString(o.Key), "err", err)
		}
	}
}
