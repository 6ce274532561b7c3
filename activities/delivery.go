package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"
	"golang.org/x/sync/errgroup"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// DeliveryInput says which records to wait for.
type DeliveryInput struct {
	FeedID   string            `json:"feed_id"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
	// Expected is the number of records PutToKinesis put (distinct lines).
	Expected int64 `json:"expected"`
	// Lines is the feed's line count: line numbers run from 1 to Lines.
	Lines int64 `json:"lines"`
	// Since is when the put began; staging objects older than that (less a
	// margin for clock skew) cannot hold this feed's records.
	Since time.Time `json:"since"`
}

// DeliveryProgress is AwaitDelivery's heartbeat.
type DeliveryProgress struct {
	Delivered int64 `json:"delivered"`
	Expected  int64 `json:"expected"`
	Objects   int   `json:"objects"`
	Scanned   int   `json:"scanned"`
}

// DeliveryResult is where the feed's records are in staging.
type DeliveryResult struct {
	Delivered   int64  `json:"delivered"`
	Duplicates  int64  `json:"duplicates"` // records delivered more than once (dropped at conversion)
	Objects     int    `json:"objects"`    // staging objects holding this feed's records
	ManifestKey string `json:"manifest_key"`
}

// Manifest lists the staging objects that hold a feed's records. The Glue
// job script and the local converter read it.
type Manifest struct {
	FeedID   string   `json:"feed_id"`
	Bucket   string   `json:"bucket"`
	Keys     []string `json:"keys"`
	Expected int64    `json:"expected"`
}

// ManifestKey is where a feed's manifest is written, in the staging bucket.
func ManifestKey(p pipeline.Pipeline, feedID string) string {
	return fmt.Sprintf("manifests/%s/%s.json", p.Name, feedID)
}

const clockSkew = 5 * time.Minute

// AwaitDelivery waits until Firehose has delivered every record of the feed
// to the staging bucket. There is no acknowledgement API, so it reads the
// staging objects written since the put began and counts the distinct line
// numbers of this feed. It then writes the manifest of those objects.
func (a *Activities) AwaitDelivery(ctx context.Context, in DeliveryInput) (DeliveryResult, error) {
	p := in.Pipeline
	seen := newBitset(in.Lines)
	var delivered, dups int64
	objects := map[string]bool{}
	scanned := map[string]bool{}
	var mu sync.Mutex
	marker := []byte(`"` + schema.FeedIDField + `":"` + in.FeedID + `"`)
	giveUp, hasDeadline := deadlineMargin(ctx)
	wait := a.pollInterval()
	for {
		keys, err := a.listStaging(ctx, p, in.Since.Add(-clockSkew))
		if err != nil {
			return DeliveryResult{}, err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		lastBeat := time.Now()
		for _, k := range keys {
			if scanned[k] {
				continue
			}
			scanned[k] = true
			if time.Since(lastBeat) > time.Second {
				// One pass can read many objects (an emulator writes one per
				// record): keep heartbeating through it.
				mu.Lock()
				activity.RecordHeartbeat(ctx, DeliveryProgress{Delivered: delivered, Expected: in.Expected, Objects: len(objects), Scanned: len(scanned)})
				mu.Unlock()
				lastBeat = time.Now()
			}
			g.Go(func() error {
				body, err := a.readObject(gctx, p.StagingBucket, k)
				if err != nil {
					return err
				}
				lines, err := stagedLines(body, p, in.FeedID, marker)
				if err != nil {
					return nonRetryable(ErrBadInput, "await delivery of feed %s: staging object s3://%s/%s: %v", in.FeedID, p.StagingBucket, k, err)
				}
				if len(lines) == 0 {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				objects[k] = true
				for _, l := range lines {
					if l < 1 || l > in.Lines {
						return nonRetryable(ErrBadInput, "await delivery of feed %s: s3://%s/%s holds line %d, outside 1..%d", in.FeedID, p.StagingBucket, k, l, in.Lines)
					}
					if seen.set(l) {
						delivered++
					} else {
						dups++
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return DeliveryResult{}, err
		}
		activity.RecordHeartbeat(ctx, DeliveryProgress{Delivered: delivered, Expected: in.Expected, Objects: len(objects), Scanned: len(scanned)})
		if delivered >= in.Expected {
			break
		}
		if hasDeadline && time.Now().Add(wait).After(giveUp) {
			return DeliveryResult{}, nonRetryable(ErrDelivery,
				"feed %s: Firehose delivered %d of %d records to s3://%s/%s before the delivery deadline (%s); %d are missing. Check the delivery stream %s (errors/ prefix, CloudWatch DeliveryToS3 metrics), then reset the workflow to AwaitDelivery",
				in.FeedID, delivered, in.Expected, p.StagingBucket, p.StagingPrefix, p.Deadlines.Delivery.Std(), in.Expected-delivered, p.DeliveryStream)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return DeliveryResult{}, err
		}
		wait = min(wait*2, 10*a.pollInterval())
	}

	m := Manifest{FeedID: in.FeedID, Bucket: p.StagingBucket, Expected: in.Expected}
	for _, k := range sortedKeys(objects) {
		m.Keys = append(m.Keys, k)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return DeliveryResult{}, err
	}
	key := ManifestKey(p, in.FeedID)
	if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.StagingBucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String("application/json")}); err != nil {
		return DeliveryResult{}, classifyAWS(err, fmt.Sprintf("write manifest s3://%s/%s", p.StagingBucket, key))
	}
	return DeliveryResult{Delivered: delivered, Duplicates: dups, Objects: len(objects), ManifestKey: key}, nil
}

// listStaging lists the keys under the staging prefix written since since.
// Firehose names objects PREFIX/YYYY/MM/DD/HH/…, so listing starts at the hour
// of since and skips older partitions.
func (a *Activities) listStaging(ctx context.Context, p pipeline.Pipeline, since time.Time) ([]string, error) {
	start := p.StagingPrefix + since.UTC().Format("2006/01/02/15")
	var out []string
	var token *string
	for {
		in := &s3.ListObjectsV2Input{Bucket: &p.StagingBucket, Prefix: &p.StagingPrefix, ContinuationToken: token}
		if token == nil {
			in.StartAfter = &start
		}
		page, err := a.S3.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, classifyAWS(err, fmt.Sprintf("list staging s3://%s/%s", p.StagingBucket, p.StagingPrefix))
		}
		for _, o := range page.Contents {
			if o.LastModified == nil || !o.LastModified.Before(since) {
				out = append(out, aws.ToString(o.Key))
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		token = page.NextContinuationToken
	}
}

func (a *Activities) readObject(ctx context.Context, bucket, key string) ([]byte, error) {
	out, err := a.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, classifyAWS(err, fmt.Sprintf("get s3://%s/%s", bucket, key))
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return b, nil
}

// stagedLines returns the line numbers of feedID's records in a staging
// object: NDJSON, or Parquet when Firehose converts the records.
func stagedLines(body []byte, p pipeline.Pipeline, feedID string, marker []byte) ([]int64, error) {
	if p.Conversion != pipeline.ConvertFirehose {
		if !bytes.Contains(body, marker) {
			return nil, nil
		}
		return feedLines(body, feedID, marker)
	}
	var lines []int64
	err := parquetconv.ReadRecords(body, schema.Schema{}, func(id string, line int64, _ []schema.Value) error {
		if id == feedID {
			lines = append(lines, line)
		}
		return nil
	})
	return lines, err
}

// eachFeedRecord calls fn with every non-blank line of a staging object that
// contains marker (the feed's id field), numbered from 1 within the object.
func eachFeedRecord(body, marker []byte, fn func(n int, rec []byte) error) error {
	for n := 1; len(body) > 0; n++ {
		var rec []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			rec, body = body[:i], body[i+1:]
		} else {
			rec, body = body, nil
		}
		if len(bytes.TrimSpace(rec)) == 0 || !bytes.Contains(rec, marker) {
			continue
		}
		if err := fn(n, rec); err != nil {
			return err
		}
	}
	return nil
}

// feedLines returns the line numbers of feedID's records in a staging
// object. Records start with the fields PutToKinesis wrote first, which are
// read without decoding the rest; anything else is decoded in full.
func feedLines(body []byte, feedID string, marker []byte) ([]int64, error) {
	prefix := []byte(`{"` + schema.FeedIDField + `":"` + feedID + `","` + schema.LineField + `":`)
	var lines []int64
	err := eachFeedRecord(body, marker, func(n int, rec []byte) error {
		if rest, ok := bytes.CutPrefix(rec, prefix); ok {
			if end := bytes.IndexAny(rest, ",}"); end > 0 {
				if l, err := strconv.ParseInt(string(rest[:end]), 10, 64); err == nil {
					lines = append(lines, l)
					return nil
				}
			}
		}
		var r struct {
			FeedID string `json:"_feed_id"`
			Line   int64  `json:"_line"`
		}
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("record %d is not JSON: %v", n, err)
		}
		if r.FeedID == feedID {
			lines = append(lines, r.Line)
		}
		return nil
	})
	return lines, err
}

type bitset []uint64

func newBitset(n int64) bitset { return make(bitset, n/64+1) }

// set marks i and reports whether it was new.
func (b bitset) set(i int64) bool {
	w, m := i/64, uint64(1)<<(i%64)
	if b[w]&m != 0 {
		return false
	}
	b[w] |= m
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
