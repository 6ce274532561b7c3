package activities

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

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
	Delivered  int64 `json:"delivered"`  // distinct lines seen
	Duplicates int64 `json:"duplicates"` // records seen more than once (dropped at conversion)
	Objects    int   `json:"objects"`    // staging objects read that hold this feed's records
	Reads      int64 `json:"reads"`      // GETs of staging objects, every pass and attempt
	Passes     int   `json:"passes"`     // passes finished
	// Checkpoint is the S3 checkpoint object of the last save. When the
	// stage is done and Convert runs on the worker, it is kept for Convert:
	// it lists the bundles that hold what delivery read (bundle.go).
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
	// Checkpoints and bundles are named by pass, attempt and save, fixed
	// here: the last save of a pass comes after Passes counts it, and must
	// not take the name of the next pass's first save.
	pass, seq := st.Passes, 0
	// Convert reads what this stage read from the bundles (see bundle.go);
	// a Glue job reads the staging prefix itself.
	var bundle *bundleWriter
	if p.Conversion != pipeline.ConvertGlue {
		bundle = newBundleWriter()
	}
	save := func(ctx context.Context) error {
		seq++
		name := fmt.Sprintf("%d-%d-%d", pass, attempt, seq)
		if bundle != nil && bundle.objects() > 0 {
			ref, err := a.putBundle(ctx, p, in.FeedID, bundle, name)
			if err != nil {
				return err
			}
			cp.bundles = append(cp.bundles, ref)
			bundle = newBundleWriter()
		}
		key, err := a.saveDeliveryCheckpoint(ctx, p, in.FeedID, cp, name)
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
		full := bundle != nil && bundle.size() >= bundleMaxBytes
		if !done && dirty && (full || time.Since(saved) >= checkpointEvery) {
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
			if bundle != nil {
				if err := bundle.add(strings.TrimPrefix(k, FeedStagingPrefix(p, in.FeedID)), body); err != nil {
					return fmt.Errorf("await delivery of feed %s: bundle: %w", in.FeedID, err)
				}
			}
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
	if st.Done(in.Expected) && bundle == nil {
		a.dropPrefix(ctx, p.StagingBucket, DeliveryCheckpointPrefix(p, in.FeedID))
		st.Checkpoint = ""
		return st, nil
	}
	if dirty || st.Checkpoint == "" {
		if err := save(ctx); err != nil {
			return st, err
		}
	}
	if st.Done(in.Expected) {
		// The last checkpoint lists the bundles for Convert, which removes
		// them; the earlier checkpoints are of no more use.
		a.dropCheckpointsBut(ctx, p, in.FeedID, st.Checkpoint)
	}
	return st, nil
}

// dropCheckpointsBut removes feedID's delivery checkpoints other than keep
// (bundles stay); a failure only leaves them for Convert to remove.
func (a *Activities) dropCheckpointsBut(ctx context.Context, p pipeline.Pipeline, feedID, keep string) {
	prefix := DeliveryCheckpointPrefix(p, feedID)
	a.dropWhere(ctx, p.StagingBucket, prefix, func(k string) bool {
		return k != keep && strings.HasPrefix(k, prefix+"delivery-")
	})
}

// deliveryCheckpoint is what a pass has read: the staging keys, the set of
// lines seen, and the bundles that hold copies of the objects read.
type deliveryCheckpoint struct {
	read    map[string]struct{} // full staging keys
	lines   bitset
	bundles []bundleRef
}

// bundleLine starts a bundle's entry in a checkpoint object; the keys it
// holds follow, one per line. No Firehose key starts with it.
const bundleLine = "bundle\t"

// DeliveryCheckpointPrefix is where AwaitDelivery keeps its checkpoints for
// a feed, in the staging bucket (outside the staging prefix).
func DeliveryCheckpointPrefix(p pipeline.Pipeline, feedID string) string {
	return fmt.Sprintf("checkpoints/%s/%s/delivery/", p.Name, feedID)
}

// The checkpoint object is gzip of the line set's words (bitset.write),
// then the keys read, relative to the feed's prefix, one per line: first
// those in no bundle, then each bundle as a bundleLine and its keys in order.
func (a *Activities) saveDeliveryCheckpoint(ctx context.Context, p pipeline.Pipeline, feedID string, cp *deliveryCheckpoint, name string) (string, error) {
	key := fmt.Sprintf("%sdelivery-%s.gz", DeliveryCheckpointPrefix(p, feedID), name)
	prefix := FeedStagingPrefix(p, feedID)
	err := a.putCheckpoint(ctx, p.StagingBucket, key, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if err := cp.lines.write(bw); err != nil {
			return err
		}
		bundled := map[string]bool{}
		for _, b := range cp.bundles {
			for _, k := range b.Keys {
				bundled[k] = true
			}
		}
		for k := range cp.read {
			if rel := strings.TrimPrefix(k, prefix); !bundled[rel] {
				bw.WriteString(rel)
				bw.WriteByte('\n')
			}
		}
		for _, b := range cp.bundles {
			bw.WriteString(bundleLine + b.Key + "\n")
			for _, k := range b.Keys {
				bw.WriteString(k)
				bw.WriteByte('\n')
			}
		}
		return bw.Flush()
	})
	if err != nil && !isNonRetryable(err) {
		err = fmt.Errorf("await delivery of feed %s: %w", feedID, err)
	}
	return key, err
}

func (a *Activities) loadDeliveryCheckpoint(ctx context.Context, p pipeline.Pipeline, feedID, key string, lines int64) (*deliveryCheckpoint, error) {
	cp := &deliveryCheckpoint{read: map[string]struct{}{}, lines: newBitset(lines)}
	if key == "" {
		return cp, nil
	}
	prefix := FeedStagingPrefix(p, feedID)
	err := a.getCheckpoint(ctx, p.StagingBucket, key, func(r *bufio.Reader) error {
		if err := cp.lines.read(r); err != nil {
			return err
		}
		for {
			k, err := r.ReadString('\n')
			if errors.Is(err, io.EOF) && k == "" {
				return nil
			}
			if err != nil {
				return err
			}
			k = strings.TrimSuffix(k, "\n")
			if b, ok := strings.CutPrefix(k, bundleLine); ok {
				cp.bundles = append(cp.bundles, bundleRef{Key: b})
				continue
			}
			cp.read[prefix+k] = struct{}{}
			if n := len(cp.bundles); n > 0 {
				cp.bundles[n-1].Keys = append(cp.bundles[n-1].Keys, k)
			}
		}
	})
	var lost *lostCheckpoint
	switch {
	case err == nil:
		return cp, nil
	case isNonRetryable(err) || errors.As(err, &lost):
		return nil, err
	}
	return nil, fmt.Errorf("await delivery of feed %s: load checkpoint: %w", feedID, err)
}
