package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// ConvertInput names a feed's staged records and where its Parquet goes.
type ConvertInput struct {
	FeedID      string            `json:"feed_id"`
	Pipeline    pipeline.Pipeline `json:"pipeline"`
	ManifestKey string            `json:"manifest_key"`
	Expected    int64             `json:"expected"` // distinct records delivered
	Lines       int64             `json:"lines"`    // the feed's line count
}

// ConvertResult is the Parquet file written.
type ConvertResult struct {
	Rows       int64  `json:"rows"`
	Duplicates int64  `json:"duplicates"`
	ParquetKey string `json:"parquet_key"`
	Reused     bool   `json:"reused,omitempty"` // a previous attempt had written it
}

// ParquetKey is the feed's deterministic destination key: a retried or
// reset run writes the same object, which Snowflake will not load twice.
func ParquetKey(p pipeline.Pipeline, feedID string) string {
	return p.DestPrefix + feedID + ".parquet"
}

const feedIDMetadata = "feedpipe-feed-id"

// ConvertLocal streams the manifest's staged records of the feed (NDJSON, or
// Parquet that Firehose converted them to), drops duplicate line numbers, and
// writes the feed's one Parquet file with parquet-go to the destination bucket.
func (a *Activities) ConvertLocal(ctx context.Context, in ConvertInput) (ConvertResult, error) {
	p := in.Pipeline
	key := ParquetKey(p, in.FeedID)
	if rows, ok, err := a.existingParquet(ctx, p.DestBucket, key, in.FeedID); err != nil {
		return ConvertResult{}, err
	} else if ok && rows == in.Expected {
		return ConvertResult{Rows: rows, ParquetKey: key, Reused: true}, nil
	}

	m, err := a.readManifest(ctx, p, in.ManifestKey)
	if err != nil {
		return ConvertResult{}, err
	}
	tmp, err := os.CreateTemp(a.TempDir, "feedpipe-"+in.FeedID+"-*.parquet")
	if err != nil {
		return ConvertResult{}, fmt.Errorf("convert feed %s: temp file: %w", in.FeedID, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	w, err := parquetconv.NewWriter(tmp, p.Schema, parquetconv.Options{})
	if err != nil {
		return ConvertResult{}, nonRetryable(ErrBadInput, "convert feed %s: %v", in.FeedID, err)
	}
	defer w.Abort() // stops its workers if the conversion fails; nothing after Close
	seen := newBitset(in.Lines)
	var dups int64
	marker := []byte(`"` + schema.FeedIDField + `":"` + in.FeedID + `"`)
	fetched, stop := a.prefetch(ctx, m.Bucket, m.Keys, 16)
	defer stop()
	for i, k := range m.Keys {
		f := <-fetched[i]
		if f.err != nil {
			return ConvertResult{}, f.err
		}
		keep := func(feedID string, line int64, vals []schema.Value) error {
			if feedID != in.FeedID {
				return nil
			}
			if line < 1 || line > in.Lines {
				return nonRetryable(ErrBadInput, "convert feed %s: staged s3://%s/%s holds line %d, outside 1..%d", in.FeedID, m.Bucket, k, line, in.Lines)
			}
			if !seen.set(line) {
				dups++
				return nil
			}
			if err := w.Write(feedID, line, vals); err != nil {
				return fmt.Errorf("convert feed %s: %w", in.FeedID, err)
			}
			return nil
		}
		var err error
		if p.Conversion == pipeline.ConvertFirehose {
			err = parquetconv.ReadRecords(f.body, p.Schema, keep)
			if err != nil && !isNonRetryable(err) {
				err = nonRetryable(ErrBadInput, "convert feed %s: staged Parquet s3://%s/%s: %v", in.FeedID, m.Bucket, k, err)
			}
		} else {
			err = eachFeedRecord(f.body, marker, func(n int, rec []byte) error {
				feedID, line, vals, err := p.Schema.ParseRecord(rec)
				if err != nil {
					return nonRetryable(ErrBadInput, "convert feed %s: staged s3://%s/%s record %d: %v", in.FeedID, m.Bucket, k, n, err)
				}
				return keep(feedID, line, vals)
			})
		}
		if err != nil {
			return ConvertResult{}, err
		}
		if i%500 == 0 {
			activity.RecordHeartbeat(ctx, i)
		}
	}
	rows, err := w.Close()
	if err != nil {
		return ConvertResult{}, fmt.Errorf("convert feed %s: %w", in.FeedID, err)
	}
	if rows != in.Expected {
		return ConvertResult{}, nonRetryable(ErrRowCount, "convert feed %s: %d distinct records in the %d staged objects, want %d", in.FeedID, rows, len(m.Keys), in.Expected)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return ConvertResult{}, err
	}
	st, err := tmp.Stat()
	if err != nil {
		return ConvertResult{}, err
	}
	if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.DestBucket, Key: &key, Body: tmp,
		ContentLength: aws.Int64(st.Size()), Metadata: map[string]string{feedIDMetadata: in.FeedID}}); err != nil {
		return ConvertResult{}, classifyAWS(err, fmt.Sprintf("convert feed %s: upload s3://%s/%s", in.FeedID, p.DestBucket, key))
	}
	return ConvertResult{Rows: rows, Duplicates: dups, ParquetKey: key}, nil
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

func (a *Activities) readManifest(ctx context.Context, p pipeline.Pipeline, key string) (Manifest, error) {
	b, err := a.readObject(ctx, p.StagingBucket, key)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, nonRetryable(ErrBadInput, "manifest s3://%s/%s is not valid JSON: %v", p.StagingBucket, key, err)
	}
	return m, nil
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
