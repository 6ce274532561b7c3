package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
}

// ConvertResult is the Parquet file written.
type ConvertResult struct {
	Rows       int64  `json:"rows"`
	Duplicates int64  `json:"duplicates"`
	ParquetKey string `json:"parquet_key"`
	Reads      int64  `json:"reads,omitempty"`  // staging objects read
	Reused     bool   `json:"reused,omitempty"` // a previous attempt had written it
	// ResumedAtPart is the first part this attempt uploaded when it continued
	// an earlier attempt's multipart upload (0: it did not).
	ResumedAtPart int32 `json:"resumed_at_part,omitempty"`
}

// ConvertProgress is ConvertLocal's heartbeat checkpoint.
type ConvertProgress struct {
	Phase   string `json:"phase"`   // "convert" or "upload"
	Objects int    `json:"objects"` // staging objects converted so far
	Rows    int64  `json:"rows"`
	Dups    int64  `json:"duplicates"`
	// The Parquet file, once written; an upload resumes from it when the
	// retry runs on the same host.
	File   string      `json:"file,omitempty"`
	Size   int64       `json:"size,omitempty"`
	Upload UploadState `json:"upload,omitempty"`
	Reads  int64       `json:"reads"`
}

// ParquetKey is the feed's deterministic destination key: a retried or
// reset run writes the same object, which Snowflake will not load twice.
func ParquetKey(p pipeline.Pipeline, feedID string) string {
	return p.DestPrefix + feedID + ".parquet"
}

const feedIDMetadata = "feedpipe-feed-id"

// ConvertLocal reads the feed's staging prefix (NDJSON records, or Parquet
// that Firehose converted them to), drops duplicate line numbers, writes the
// feed's one Parquet file with the internal/convert engine, and uploads it
// to the destination bucket (multipart, resumable). It heartbeats on a clock
// throughout; a retry on the same host whose file is complete resumes the
// upload at the first part not yet uploaded.
func (a *Activities) ConvertLocal(ctx context.Context, in ConvertInput) (ConvertResult, error) {
	p := in.Pipeline
	key := ParquetKey(p, in.FeedID)
	if rows, ok, err := a.existingParquet(ctx, p.DestBucket, key, in.FeedID); err != nil {
		return ConvertResult{}, err
	} else if ok && rows == in.Expected {
		return ConvertResult{Rows: rows, ParquetKey: key, Reused: true}, nil
	}
	var prog ConvertProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prog)
	}
	b := startBeat(ctx, prog)
	defer b.Stop()

	resumed := false
	if prog.Phase == "upload" && prog.File != "" {
		if st, err := os.Stat(prog.File); err == nil && st.Size() == prog.Size {
			resumed = true
			activity.GetLogger(ctx).Info("convert: resuming the upload", "feed", in.FeedID, "file", prog.File, "parts_done", len(prog.Upload.Parts))
		}
	}
	if !resumed {
		reads := prog.Reads
		a.abortUpload(ctx, p.DestBucket, key, prog.Upload)
		prog = ConvertProgress{Phase: "convert", Reads: reads}
		var err error
		if prog, err = a.convertStaged(ctx, in, prog, b); err != nil {
			return ConvertResult{}, err
		}
		prog.Phase = "upload"
		b.Progress(prog)
	}
	first := int32(len(prog.Upload.Parts)) + 1
	if err := a.uploadFile(ctx, p.DestBucket, key, prog.File, map[string]string{feedIDMetadata: in.FeedID}, &prog.Upload, func(u UploadState) {
		prog.Upload = u
		b.Progress(prog)
	}); err != nil {
		if isNonRetryable(err) {
			return ConvertResult{}, err
		}
		return ConvertResult{}, fmt.Errorf("convert feed %s: upload s3://%s/%s: %w", in.FeedID, p.DestBucket, key, err)
	}
	os.Remove(prog.File)
	res := ConvertResult{Rows: prog.Rows, Duplicates: prog.Dups, ParquetKey: key, Reads: prog.Reads}
	if resumed && first > 1 {
		res.ResumedAtPart = first
	}
	return res, nil
}

// convertStaged writes the feed's staged records to a local Parquet file
// and returns the progress with the file's path, size, rows and duplicates.
func (a *Activities) convertStaged(ctx context.Context, in ConvertInput, prog ConvertProgress, b *beat) (ConvertProgress, error) {
	p := in.Pipeline
	path := filepath.Join(cmpOr(a.TempDir, os.TempDir()), "feedpipe-"+in.FeedID+".parquet")
	f, err := os.Create(path)
	if err != nil {
		return prog, fmt.Errorf("convert feed %s: temp file: %w", in.FeedID, err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(path)
		}
	}()
	sink, err := newStagedSink(f, p, in)
	if err != nil {
		return prog, nonRetryable(ErrBadInput, "convert feed %s: %v", in.FeedID, err)
	}
	defer sink.abort()

	var keys []string
	if err := a.listFeed(ctx, p, in.FeedID, func(page []string) error {
		keys = append(keys, page...)
		b.Touch()
		return nil
	}); err != nil {
		return prog, err
	}
	bodies, stop := a.prefetch(ctx, p.StagingBucket, keys, stagingReaders)
	defer stop()
	for i, k := range keys {
		var got fetched
		select {
		case got = <-bodies[i]:
		case <-ctx.Done():
			return prog, ctx.Err()
		}
		if got.err != nil {
			return prog, got.err
		}
		prog.Reads++
		if err := sink.add(ctx, "s3://"+p.StagingBucket+"/"+k, got.body); err != nil {
			if isNonRetryable(err) || ctx.Err() != nil {
				return prog, err // a cancellation is not the feed's fault
			}
			return prog, nonRetryable(ErrBadInput, "convert feed %s: %v", in.FeedID, err)
		}
		prog.Objects = i + 1
		if i%64 == 0 {
			b.Progress(prog)
		}
	}
	rows, dups, err := sink.close()
	if err != nil {
		if ctx.Err() != nil {
			return prog, err
		}
		// A bad record a parse worker found late is reported here.
		return prog, nonRetryable(ErrBadInput, "convert feed %s: %v", in.FeedID, err)
	}
	prog.Rows, prog.Dups = rows, dups
	if rows != in.Expected {
		return prog, nonRetryable(ErrRowCount, "convert feed %s: %d distinct records in the %d staged objects under s3://%s/%s, want %d",
			in.FeedID, rows, len(keys), p.StagingBucket, FeedStagingPrefix(p, in.FeedID), in.Expected)
	}
	if err := f.Sync(); err != nil {
		return prog, fmt.Errorf("convert feed %s: write %s: %w", in.FeedID, path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return prog, err
	}
	prog.File, prog.Size = path, st.Size()
	ok = true
	return prog, nil
}

// stagedSink turns staged objects into the feed's Parquet file: NDJSON
// records through the internal/convert engine, or Parquet that Firehose
// converted through parquetconv's reader.
type stagedSink struct {
	ndjson  *convert.Staged
	parquet *parquetconv.Writer
	feedID  string
	lines   int64
	schema  schema.Schema
	seen    bitset
	dups    int64
}

func newStagedSink(w io.Writer, p pipeline.Pipeline, in ConvertInput) (*stagedSink, error) {
	s := &stagedSink{feedID: in.FeedID, lines: in.Lines, schema: p.Schema}
	var err error
	if p.Conversion == pipeline.ConvertFirehose {
		s.seen = newBitset(in.Lines)
		s.parquet, err = parquetconv.NewWriter(w, p.Schema, parquetconv.Options{})
	} else {
		s.ndjson, err = convert.NewStaged(w, convert.StagedOptions{Schema: p.Schema, FeedID: in.FeedID, Lines: in.Lines})
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

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type fetched struct {
	body []byte
	err  error
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
