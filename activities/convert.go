package activities

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"

	"github.com/feedpipe/feedpipe/internal/convert"
	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// ConvertInput names a feed's staged records and where its Parquet goes.
type ConvertInput struct {
	FeedID   string            `json:"feed_id"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
	Expected int64             `json:"expected"` // distinct records delivered
	Lines    int64             `json:"lines"`    // the feed's line count
	// Delivered is the checkpoint AwaitDelivery finished with
	// (DeliveryState.Checkpoint): Convert reads the bundles it lists instead
	// of the staging objects they hold. Empty: read the staging prefix.
	Delivered string `json:"delivered,omitempty"`
}

// ParquetFile is one Parquet file of a feed in the destination bucket.
type ParquetFile struct {
	Key  string `json:"key"`
	Rows int64  `json:"rows"`
}

// ConvertResult is the feed's Parquet files.
type ConvertResult struct {
	Rows       int64         `json:"rows"`
	Duplicates int64         `json:"duplicates"`
	Files      []ParquetFile `json:"files"`
	Reads      int64         `json:"reads,omitempty"`  // staging objects read
	Reused     bool          `json:"reused,omitempty"` // a previous attempt had published them
	// ResumedAtPart is the first part this attempt wrote when it continued an
	// earlier attempt's conversion (0: it started from the beginning).
	ResumedAtPart int `json:"resumed_at_part,omitempty"`
}

// ConvertPart is one finished part of a conversion, kept in the staging
// bucket until every part is done.
type ConvertPart struct {
	Key     string `json:"key"`      // in the staging bucket
	Rows    int64  `json:"rows"`     //
	LastKey string `json:"last_key"` // the last staging object the part covers
}

// ConvertProgress is ConvertLocal's checkpoint (its heartbeat details): the
// parts written so far; the set of lines they hold is in an S3 object per
// part (ConvertCheckpointPrefix).
type ConvertProgress struct {
	Parts     []ConvertPart `json:"parts,omitempty"`
	Published int           `json:"published"` // parts copied to the destination
	Dups      int64         `json:"duplicates"`
	Reads     int64         `json:"reads"`
	// Bundled says the parts followed the order of delivery's bundles, not
	// key order: without the bundles, a retry must start over.
	Bundled bool `json:"bundled,omitempty"`
}

func (p ConvertProgress) rows() int64 {
	n := int64(0)
	for _, pt := range p.Parts {
		n += pt.Rows
	}
	return n
}

// partEvery is how much conversion work one part (and one checkpoint)
// holds: a killed attempt loses at most this much. At the converter's speed
// on real staging objects that is a file of ~100 MiB or more, the size
// Snowflake loads best; partMaxBytes bounds it (as written to the file: the
// Parquet writer holds up to two row groups more, at most 128 MiB).
const (
	partEvery    = 5 * time.Second
	partMaxBytes = 256 << 20
)

// ParquetPrefix is where a feed's Parquet files go in the destination
// bucket: PREFIX<feed id>/part-NNNNN.parquet. The names are deterministic,
// so a retried or reset run writes the same objects, which Snowflake will
// not load twice.
func ParquetPrefix(p pipeline.Pipeline, feedID string) string {
	return p.DestPrefix + feedID + "/"
}

func parquetPartKey(p pipeline.Pipeline, feedID string, n int) string {
	return fmt.Sprintf("%spart-%05d.parquet", ParquetPrefix(p, feedID), n)
}

// ConvertCheckpointPrefix is where ConvertLocal keeps its parts and line
// sets until the conversion is published, in the staging bucket.
func ConvertCheckpointPrefix(p pipeline.Pipeline, feedID string) string {
	return fmt.Sprintf("checkpoints/%s/%s/convert/", p.Name, feedID)
}

const feedIDMetadata = "feedpipe-feed-id"

// ConvertLocal reads the feed's staging prefix in key order (NDJSON
// records, or Parquet that Firehose converted them to), drops duplicate line
// numbers, and writes the feed's Parquet with the internal/convert engine as
// parts of about partEvery of work each. Each part is uploaded to the
// staging bucket and checkpointed with the set of lines written so far; a
// retried attempt goes on after the last part. Once every line is converted,
// the parts are copied to the destination bucket, where Snowpipe loads them:
// nothing reaches Snowflake before the whole feed is converted.
func (a *Activities) ConvertLocal(ctx context.Context, in ConvertInput) (ConvertResult, error) {
	p := in.Pipeline
	var prog ConvertProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &prog); err != nil {
			activity.GetLogger(ctx).Warn("convert: unreadable checkpoint, converting from the start", "feed", in.FeedID, "err", err)
			prog = ConvertProgress{}
		}
	}
	ctx, b := startBeat(ctx, prog)
	defer b.Stop()
	if res, ok, err := a.publishedParquet(ctx, in); err != nil || ok {
		if ok {
			a.dropCheckpoints(ctx, p, in.FeedID)
		}
		return res, err
	}

	seen := newBitset(in.Lines)
	resumedAt := 0
	if len(prog.Parts) > 0 {
		err := a.loadLines(ctx, p, in.FeedID, len(prog.Parts), seen)
		var lost *lostCheckpoint
		switch {
		case errors.As(err, &lost):
			activity.GetLogger(ctx).Warn("convert: checkpoint lost, converting again from the start", "feed", in.FeedID, "why", lost.why)
			prog, seen = ConvertProgress{Reads: prog.Reads}, newBitset(in.Lines)
		case err != nil:
			return ConvertResult{}, err
		default:
			resumedAt = len(prog.Parts) + 1
			activity.GetLogger(ctx).Info("convert: resuming", "feed", in.FeedID, "parts_done", len(prog.Parts), "rows", prog.rows())
		}
	}
	if prog.rows() < in.Expected {
		var err error
		var restarted bool
		if prog, restarted, err = a.convertParts(ctx, in, prog, seen, b); err != nil {
			return ConvertResult{}, err
		}
		if restarted {
			resumedAt = 0
		}
	}
	if rows := prog.rows(); rows != in.Expected {
		return ConvertResult{}, nonRetryable(ErrRowCount, "convert feed %s: %d distinct records under s3://%s/%s, want %d",
			in.FeedID, rows, p.StagingBucket, FeedStagingPrefix(p, in.FeedID), in.Expected)
	}

	// Publish: copy each part to the destination (server side).
	res := ConvertResult{Rows: prog.rows(), Duplicates: prog.Dups, Reads: prog.Reads, ResumedAtPart: resumedAt}
	for i, pt := range prog.Parts {
		key := parquetPartKey(p, in.FeedID, i+1)
		res.Files = append(res.Files, ParquetFile{Key: key, Rows: pt.Rows})
		if i < prog.Published {
			continue
		}
		cctx, cancel := callContext(ctx)
		_, err := a.S3.CopyObject(cctx, &s3.CopyObjectInput{Bucket: &p.DestBucket, Key: &key,
			CopySource: aws.String(p.StagingBucket + "/" + pt.Key), MetadataDirective: "REPLACE",
			Metadata: map[string]string{feedIDMetadata: in.FeedID}})
		cancel()
		if err != nil {
			return ConvertResult{}, classifyAWS(err, fmt.Sprintf("convert feed %s: publish s3://%s/%s", in.FeedID, p.DestBucket, key))
		}
		prog.Published = i + 1
		b.Progress(prog)
	}
	a.dropCheckpoints(ctx, p, in.FeedID)
	return res, nil
}

// dropCheckpoints removes what Convert and delivery kept of a feed (parts,
// line sets, bundles) once its Parquet is published.
func (a *Activities) dropCheckpoints(ctx context.Context, p pipeline.Pipeline, feedID string) {
	a.dropPrefix(ctx, p.StagingBucket, ConvertCheckpointPrefix(p, feedID))
	a.dropPrefix(ctx, p.StagingBucket, DeliveryCheckpointPrefix(p, feedID))
}

// convertParts converts the feed's staged objects after the last part's,
// closing a part every partEvery of work, and returns the progress with
// every part. It reads the bundles AwaitDelivery left (in their order), then
// the staging objects no bundle holds, in key order.
func (a *Activities) convertParts(ctx context.Context, in ConvertInput, prog ConvertProgress, seen bitset, b *beat) (_ ConvertProgress, restarted bool, err error) {
	p := in.Pipeline
	prefix := FeedStagingPrefix(p, in.FeedID)
	bundles, err := a.deliveryBundles(ctx, in)
	if err != nil {
		return prog, false, err
	}
	if restarted = prog.Bundled && len(bundles) == 0 && len(prog.Parts) > 0; restarted {
		// The parts followed the bundles' order, which is gone with them:
		// which staging objects they cover is unknown. Nothing is published
		// yet, so convert again from the start.
		activity.GetLogger(ctx).Warn("convert: delivery's bundles are lost; converting again from the start", "feed", in.FeedID, "parts_done", len(prog.Parts))
		prog = ConvertProgress{Reads: prog.Reads}
		clear(seen)
	}
	prog.Bundled = len(bundles) > 0
	type at struct{ bundle, frame int }
	where := map[string]at{}
	for i, bd := range bundles {
		for j, k := range bd.Keys {
			where[prefix+k] = at{i, j}
		}
	}
	// Where the last part ended: within a bundle, or among the other
	// objects (every bundle done).
	from, after := at{0, -1}, ""
	if n := len(prog.Parts); n > 0 {
		if w, ok := where[prog.Parts[n-1].LastKey]; ok {
			from = w
		} else {
			from, after = at{len(bundles), 0}, prog.Parts[n-1].LastKey
		}
	}
	// The staging objects no bundle holds. With bundles they can hold only
	// duplicates (delivery bundled every object it read, and it read until
	// it had every line), so they are listed only if the bundles fall short.
	listRest := func() ([]string, error) {
		var rest []string
		err := a.listFeed(ctx, p, in.FeedID, func(page []string) error {
			for _, k := range page {
				if _, ok := where[k]; !ok && k > after { // objects before it are in parts already, or hold only duplicates
					rest = append(rest, k)
				}
			}
			b.Touch()
			return nil
		})
		return rest, err
	}

	var part *partWriter
	defer func() {
		if part != nil {
			part.abort()
		}
	}()
	errEnough := errors.New("every row converted")
	finish := func() error {
		done, err := a.finishPart(ctx, in, part, seen, len(prog.Parts)+1)
		if err != nil {
			return err
		}
		part = nil
		prog.Dups += done.dups
		if done.Rows > 0 {
			prog.Parts = append(prog.Parts, done.ConvertPart)
		} else if n := len(prog.Parts); n > 0 {
			prog.Parts = slices.Clone(prog.Parts)  // the heartbeat may hold the old slice
			prog.Parts[n-1].LastKey = done.LastKey // only duplicates: the last part covers them
		}
		b.Progress(prog)
		if prog.rows() >= in.Expected {
			return errEnough // the rest can only hold duplicates
		}
		return nil
	}
	convert := func(key string, body []byte) error {
		if part == nil {
			var err error
			if part, err = a.newPartWriter(in, seen, len(prog.Parts)+1); err != nil {
				return err
			}
		}
		if err := part.sink.add(ctx, "s3://"+p.StagingBucket+"/"+key, body); err != nil {
			if isNonRetryable(err) || ctx.Err() != nil {
				return err // a cancellation is not the feed's fault
			}
			return nonRetryable(ErrBadInput, "convert feed %s: %s", in.FeedID, withoutValues(err))
		}
		part.last = key
		b.Touch()
		if time.Since(part.started) >= partEvery || part.size() >= partMaxBytes {
			return finish()
		}
		return nil
	}

	err = a.readBundles(ctx, in, bundles[min(from.bundle, len(bundles)):], from.frame, &prog, convert)
	if err == nil && seen.count() < in.Expected { // seen: lines in the parts and the open one
		var rest []string
		if rest, err = listRest(); err == nil {
			err = a.readStaged(ctx, p.StagingBucket, rest, &prog, convert)
		}
	}
	if err == nil && part != nil {
		err = finish()
	}
	if errors.Is(err, errEnough) {
		err = nil
	}
	return prog, restarted, err
}

// deliveryBundles returns the bundles AwaitDelivery's last checkpoint lists.
// Without one, or when it is lost, Convert reads the staging objects.
func (a *Activities) deliveryBundles(ctx context.Context, in ConvertInput) ([]bundleRef, error) {
	if in.Delivered == "" {
		return nil, nil
	}
	cp, err := a.loadDeliveryCheckpoint(ctx, in.Pipeline, in.FeedID, in.Delivered, in.Lines)
	var lost *lostCheckpoint
	if errors.As(err, &lost) {
		activity.GetLogger(ctx).Warn("convert: delivery's bundles are lost, reading the staging objects", "feed", in.FeedID, "why", lost.why)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("convert feed %s: %w", in.FeedID, err)
	}
	return cp.bundles, nil
}

// readBundles hands fn each staging object the bundles hold, skipping the
// first bundle's frames through skip. A bundle that is missing or damaged
// is read from the staging objects it names instead.
func (a *Activities) readBundles(ctx context.Context, in ConvertInput, bundles []bundleRef, skip int, prog *ConvertProgress, fn func(key string, body []byte) error) error {
	p := in.Pipeline
	prefix := FeedStagingPrefix(p, in.FeedID)
	keys := make([]string, len(bundles))
	for i, bd := range bundles {
		keys[i] = bd.Key
	}
	bodies, stop := a.prefetch(ctx, p.StagingBucket, keys, 2)
	defer stop()
	for i, bd := range bundles {
		got := take(ctx, bodies[i])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		done := skip // the last frame handed over
		lost := got.err != nil && ErrorTypeOf(got.err) == ErrNotFound
		err := got.err
		if err == nil {
			prog.Reads++
			err = eachBundled(got.body, bd.Keys, func(j int, rel string, obj []byte) error {
				if j <= skip {
					return nil
				}
				if err := fn(prefix+rel, obj); err != nil {
					return &convertError{err}
				}
				done = j
				return nil
			})
			var damaged *lostCheckpoint
			lost = errors.As(err, &damaged)
			var ce *convertError
			if errors.As(err, &ce) {
				err = ce.err
			}
		}
		if lost {
			activity.GetLogger(ctx).Warn("convert: reading a lost bundle's staging objects", "feed", in.FeedID, "bundle", bd.Key, "why", err)
			staged := make([]string, 0, len(bd.Keys))
			for _, k := range bd.Keys[done+1:] {
				staged = append(staged, prefix+k)
			}
			err = a.readStaged(ctx, p.StagingBucket, staged, prog, fn)
		}
		if err != nil {
			return err
		}
		skip = -1
	}
	return nil
}

// convertError carries an error of the conversion itself out of a bundle's
// frames, so that it is not taken for a damaged bundle.
type convertError struct{ err error }

func (e *convertError) Error() string { return e.err.Error() }

// readStaged hands fn each of keys' bodies in order, reading ahead.
func (a *Activities) readStaged(ctx context.Context, bucket string, keys []string, prog *ConvertProgress, fn func(key string, body []byte) error) error {
	bodies, stop := a.prefetch(ctx, bucket, keys, stagingReaders)
	defer stop()
	for i, k := range keys {
		got := take(ctx, bodies[i])
		if got.err != nil {
			return got.err
		}
		prog.Reads++
		if err := fn(k, got.body); err != nil {
			return err
		}
	}
	return nil
}

// partWriter is one part being written to a local file.
type partWriter struct {
	f       *os.File
	cw      *countingWriter
	sink    *stagedSink
	started time.Time
	last    string
}

// countingWriter counts the bytes written through it. The Parquet writer
// writes row groups on a goroutine of its own while the activity reads the
// count: n is atomic.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (w *partWriter) size() int64 { return w.cw.n.Load() }

func (w *partWriter) abort() {
	w.sink.abort()
	w.f.Close()
	os.Remove(w.f.Name())
}

func (a *Activities) newPartWriter(in ConvertInput, seen bitset, n int) (*partWriter, error) {
	dir := a.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf("feedpipe-%s-part-%05d-*.parquet", in.FeedID, n))
	if err != nil {
		return nil, fmt.Errorf("convert feed %s: temp file: %w", in.FeedID, err)
	}
	cw := &countingWriter{w: f}
	sink, err := newStagedSink(cw, in.Pipeline, in, seen)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nonRetryable(ErrBadInput, "convert feed %s: %s", in.FeedID, withoutValues(err))
	}
	return &partWriter{f: f, cw: cw, sink: sink, started: time.Now()}, nil
}

type finishedPart struct {
	ConvertPart
	dups int64
}

// finishPart closes the part, uploads it and the line set to the staging
// bucket, and removes the local file. A part without rows is not uploaded.
func (a *Activities) finishPart(ctx context.Context, in ConvertInput, w *partWriter, seen bitset, n int) (finishedPart, error) {
	p := in.Pipeline
	defer func() { w.f.Close(); os.Remove(w.f.Name()) }()
	rows, dups, err := w.sink.close()
	if err != nil {
		if ctx.Err() != nil {
			return finishedPart{}, err
		}
		// A bad record a parse worker found late is reported here.
		return finishedPart{}, nonRetryable(ErrBadInput, "convert feed %s: %s", in.FeedID, withoutValues(err))
	}
	done := finishedPart{ConvertPart: ConvertPart{Rows: rows, LastKey: w.last}, dups: dups}
	if rows == 0 {
		return done, nil
	}
	if err := w.f.Sync(); err != nil {
		return done, fmt.Errorf("convert feed %s: write %s: %w", in.FeedID, w.f.Name(), err)
	}
	prefix := ConvertCheckpointPrefix(p, in.FeedID)
	done.Key = fmt.Sprintf("%spart-%05d.parquet", prefix, n)
	// A part is uploaded whole by one attempt: an upload a failed attempt
	// leaves is aborted (a killed worker's is removed by the bucket's
	// AbortIncompleteMultipartUpload rule).
	var up UploadState
	if err := a.uploadFile(ctx, p.StagingBucket, done.Key, w.f.Name(), nil, &up, func(UploadState) {}); err != nil {
		a.abortUpload(ctx, p.StagingBucket, done.Key, up)
		return done, err
	}
	if err := a.saveLines(ctx, p, in.FeedID, n, seen); err != nil {
		return done, err
	}
	return done, nil
}

func linesKey(p pipeline.Pipeline, feedID string, n int) string {
	return fmt.Sprintf("%slines-%05d.gz", ConvertCheckpointPrefix(p, feedID), n)
}

// saveLines writes the set of lines written through part n.
func (a *Activities) saveLines(ctx context.Context, p pipeline.Pipeline, feedID string, n int, seen bitset) error {
	err := a.putCheckpoint(ctx, p.StagingBucket, linesKey(p, feedID, n), seen.write)
	if err != nil && !isNonRetryable(err) {
		err = fmt.Errorf("convert feed %s: %w", feedID, err)
	}
	return err
}

// loadLines reads the set of lines written through part n into seen.
func (a *Activities) loadLines(ctx context.Context, p pipeline.Pipeline, feedID string, n int, seen bitset) error {
	return a.getCheckpoint(ctx, p.StagingBucket, linesKey(p, feedID, n), func(r *bufio.Reader) error {
		if err := seen.read(r); err != nil {
			return err
		}
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			return errors.New("longer than the feed's line set")
		}
		return nil
	})
}

// publishedParquet returns the result of a conversion already published to
// the destination (a retry after the last copy, or a reset run). Parts of an
// unfinished publish that this attempt has no checkpoint of are an error:
// Snowpipe may have loaded them, and converting again could change them.
func (a *Activities) publishedParquet(ctx context.Context, in ConvertInput) (ConvertResult, bool, error) {
	p := in.Pipeline
	prefix := ParquetPrefix(p, in.FeedID)
	var files []ParquetFile
	var total int64
	out, err := a.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &p.DestBucket, Prefix: &prefix})
	if err != nil {
		return ConvertResult{}, false, classifyAWS(err, fmt.Sprintf("convert feed %s: list s3://%s/%s", in.FeedID, p.DestBucket, prefix))
	}
	for _, o := range out.Contents {
		key := aws.ToString(o.Key)
		if !strings.HasSuffix(key, ".parquet") {
			continue
		}
		rows, ok, err := a.existingParquet(ctx, p.DestBucket, key, in.FeedID)
		if err != nil {
			return ConvertResult{}, false, err
		}
		if ok {
			files = append(files, ParquetFile{Key: key, Rows: rows})
			total += rows
		}
	}
	switch {
	case len(files) == 0:
		return ConvertResult{}, false, nil
	case total == in.Expected && !aws.ToBool(out.IsTruncated):
		return ConvertResult{Rows: total, Files: files, Reused: true}, true, nil
	case activity.HasHeartbeatDetails(ctx):
		return ConvertResult{}, false, nil // publishing resumes from the checkpoint
	}
	return ConvertResult{}, false, nonRetryable(ErrRowCount,
		"convert feed %s: s3://%s/%s holds %d Parquet files with %d rows, want %d, from an earlier run that did not finish publishing; Snowpipe may have loaded them. Delete the feed's rows (DELETE FROM %s.%s.%s WHERE _FEED_ID = '%s') and those files, then run Convert again (feedpipe reset -stage Convert)",
		in.FeedID, p.DestBucket, prefix, len(files), total, in.Expected, p.Snowflake.Database, p.Snowflake.Schema, p.Snowflake.Table, in.FeedID)
}

// dropPrefix removes a finished stage's checkpoints; a failure only leaves
// them for a lifecycle rule.
func (a *Activities) dropPrefix(ctx context.Context, bucket, prefix string) {
	a.dropWhere(ctx, bucket, prefix, func(string) bool { return true })
}

// dropWhere removes the objects under prefix that drop says to.
func (a *Activities) dropWhere(ctx context.Context, bucket, prefix string, drop func(key string) bool) {
	err := a.listKeys(ctx, bucket, prefix, func(keys []string) error {
		for _, k := range keys {
			if !drop(k) {
				continue
			}
			if _, err := a.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil {
				a.log(ctx).Warn("could not remove an old checkpoint", "key", k, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		a.log(ctx).Warn("could not list old checkpoints", "prefix", prefix, "err", err)
	}
}

type fetched struct {
	body []byte
	err  error
}

// take waits for one of prefetch's bodies, or for ctx to end.
func take(ctx context.Context, ch <-chan fetched) fetched {
	select {
	case got := <-ch:
		return got
	case <-ctx.Done():
		return fetched{err: ctx.Err()}
	}
}

// prefetch reads keys with up to n objects in flight or waiting to be taken,
// ahead of the reader, and hands the bodies over in key order; memory stays
// bounded by n objects. Stop ends it early.
func (a *Activities) prefetch(ctx context.Context, bucket string, keys []string, n int) ([]chan fetched, func()) {
	ctx, cancel := context.WithCancel(ctx)
	out := make([]chan fetched, len(keys))
	for i := range out {
		out[i] = make(chan fetched)
	}
	sem := make(chan struct{}, n)
	go func() {
		for i, k := range keys {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				b, err := a.readObject(ctx, bucket, k)
				select {
				case out[i] <- fetched{b, err}: // held until the reader takes it
				case <-ctx.Done():
				}
			}()
		}
	}()
	return out, cancel
}

// stagedSink turns staged objects into one Parquet file: NDJSON records
// through the internal/convert engine, or Parquet that Firehose converted
// through parquetconv's reader. Lines in seen are duplicates; the lines it
// writes are added to seen.
type stagedSink struct {
	ndjson  *convert.Staged
	parquet *parquetconv.Writer
	feedID  string
	lines   int64
	schema  schema.Schema
	seen    bitset
	dups    int64
}

func newStagedSink(w io.Writer, p pipeline.Pipeline, in ConvertInput, seen bitset) (*stagedSink, error) {
	s := &stagedSink{feedID: in.FeedID, lines: in.Lines, schema: p.Schema, seen: seen}
	var err error
	if p.Conversion == pipeline.ConvertFirehose {
		s.parquet, err = parquetconv.NewWriter(w, p.Schema, parquetconv.Options{PlainIntegers: p.ParquetPlainIntegers})
	} else {
		s.ndjson, err = convert.NewStaged(w, convert.StagedOptions{Schema: p.Schema, FeedID: in.FeedID, Lines: in.Lines, Seen: seen,
			PlainIntegers: p.ParquetPlainIntegers})
	}
	return s, err
}

func (s *stagedSink) add(ctx context.Context, name string, body []byte) error {
	if s.ndjson != nil {
		return s.ndjson.Add(ctx, name, body)
	}
	err := parquetconv.ReadRecords(body, s.schema, func(feedID string, line int64, vals []schema.Value) error {
		if feedID != s.feedID {
			return nil
		}
		if line < 1 || line > s.lines {
			return fmt.Errorf("staged %s holds line %d, outside 1..%d", name, line, s.lines)
		}
		if !s.seen.set(line) {
			s.dups++
			return nil
		}
		return s.parquet.Write(feedID, line, vals)
	})
	if err != nil {
		return fmt.Errorf("staged Parquet %s: %w", name, err)
	}
	return nil
}

func (s *stagedSink) close() (rows, dups int64, err error) {
	if s.ndjson != nil {
		st, err := s.ndjson.Close()
		return st.Rows, st.Duplicates, err
	}
	rows, err = s.parquet.Close()
	return rows, s.dups, err
}

func (s *stagedSink) abort() {
	if s.ndjson != nil {
		s.ndjson.Abort()
	} else {
		s.parquet.Abort()
	}
}

// existingParquet reports the row count of a Parquet file a previous attempt
// wrote for this feed, if there is one.
func (a *Activities) existingParquet(ctx context.Context, bucket, key, feedID string) (int64, bool, error) {
	head, err := a.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		if c := apiCode(err); c == "NotFound" || c == "NoSuchKey" {
			return 0, false, nil
		}
		return 0, false, classifyAWS(err, fmt.Sprintf("head s3://%s/%s", bucket, key))
	}
	if id := head.Metadata[feedIDMetadata]; id != "" && id != feedID {
		return 0, false, nonRetryable(ErrBadInput, "s3://%s/%s belongs to feed %s, not %s", bucket, key, id, feedID)
	}
	rows, err := a.parquetRows(ctx, bucket, key, aws.ToInt64(head.ContentLength))
	if err != nil {
		return 0, false, err
	}
	return rows, true, nil
}

// parquetRows reads the row count from a Parquet file's footer in S3 with
// ranged reads; the file is not downloaded.
func (a *Activities) parquetRows(ctx context.Context, bucket, key string, size int64) (int64, error) {
	rows, err := parquetconv.RowCount(&s3ReaderAt{ctx: ctx, s3: a.S3, bucket: bucket, key: key}, size)
	if err != nil {
		return 0, fmt.Errorf("read Parquet footer of s3://%s/%s: %w", bucket, key, err)
	}
	return rows, nil
}

// s3ReaderAt reads an S3 object with ranged GETs.
type s3ReaderAt struct {
	ctx         context.Context
	s3          S3API
	bucket, key string
}

func (r *s3ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	out, err := r.s3.GetObject(r.ctx, &s3.GetObjectInput{Bucket: &r.bucket, Key: &r.key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))})
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// withoutValues is err's text for history: a schema.LineError in it gives
// its reason without the offending value (which stays in the staged
// record), the rest (the object, the line) as is.
func withoutValues(err error) string {
	var le *schema.LineError
	if errors.As(err, &le) {
		return strings.Replace(err.Error(), le.Error(), le.Reason, 1)
	}
	return err.Error()
}
