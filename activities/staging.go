package activities

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// The staging area: Firehose partitions the staging bucket by feed id
// (dynamic partitioning on each record's _feed_id), so that every feed's
// records are under PREFIX/feed=<id>/YYYY/MM/DD/HH/. AwaitDelivery, Convert
// and the Glue job list and read that one prefix: their work is proportional
// to the feed, not to the other feeds in flight.

// FeedStagingPrefix is where Firehose delivers feedID's records.
func FeedStagingPrefix(p pipeline.Pipeline, feedID string) string {
	return p.StagingPrefix + "feed=" + feedID + "/"
}

// objectTimeout bounds one S3 call of a long activity (a GET of a staging or
// checkpoint object, a checkpoint or bundle PUT, a copy, a part of an
// upload), so that a hung connection fails the call (and is retried)
// instead of holding an activity whose heartbeat clock keeps it alive.
const objectTimeout = 2 * time.Minute

// listFeed calls fn with each page of keys under the feed's staging prefix,
// in key order.
func (a *Activities) listFeed(ctx context.Context, p pipeline.Pipeline, feedID string, fn func(keys []string) error) error {
	return a.listKeys(ctx, p.StagingBucket, FeedStagingPrefix(p, feedID), fn)
}

// listKeys calls fn with each page of keys under prefix, in key order.
func (a *Activities) listKeys(ctx context.Context, bucket, prefix string, fn func(keys []string) error) error {
	var token *string
	for {
		page, err := a.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix, ContinuationToken: token})
		if err != nil {
			return classifyAWS(err, fmt.Sprintf("list s3://%s/%s", bucket, prefix))
		}
		keys := make([]string, 0, len(page.Contents))
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if err := fn(keys); err != nil {
			return err
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			return nil
		}
		token = page.NextContinuationToken
	}
}

// callContext bounds one S3 call (a GET, a PUT, a part of an upload) by
// objectTimeout.
func callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, objectTimeout)
}

// readObject reads a whole (staging-sized) object.
func (a *Activities) readObject(ctx context.Context, bucket, key string) ([]byte, error) {
	ctx, cancel := callContext(ctx)
	defer cancel()
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
func stagedLines(body []byte, p pipeline.Pipeline, feedID string) ([]int64, error) {
	if p.Conversion != pipeline.ConvertFirehose {
		return feedLines(body, feedID)
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

// eachRecord calls fn with every non-blank line of a staging object,
// numbered from 1 within the object.
func eachRecord(body []byte, fn func(n int, rec []byte) error) error {
	for n := 1; len(body) > 0; n++ {
		var rec []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			rec, body = body[:i], body[i+1:]
		} else {
			rec, body = body, nil
		}
		if len(bytes.TrimSpace(rec)) == 0 {
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
func feedLines(body []byte, feedID string) ([]int64, error) {
	prefix := []byte(`{"` + schema.FeedIDField + `":"` + feedID + `","` + schema.LineField + `":`)
	var lines []int64
	err := eachRecord(body, func(n int, rec []byte) error {
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

// bitset is a set of line numbers.
type bitset []uint64

func newBitset(n int64) bitset { return make(bitset, n/64+1) }

// write writes the set's words, 8 bytes each, little endian.
func (b bitset) write(w io.Writer) error {
	words := make([]byte, 8*len(b))
	for i, v := range b {
		binary.LittleEndian.PutUint64(words[8*i:], v)
	}
	_, err := w.Write(words)
	return err
}

// read fills the set from what write wrote.
func (b bitset) read(r io.Reader) error {
	words := make([]byte, 8*len(b))
	if _, err := io.ReadFull(r, words); err != nil {
		return fmt.Errorf("line set of %d words: %w", len(b), err)
	}
	for i := range b {
		b[i] = binary.LittleEndian.Uint64(words[8*i:])
	}
	return nil
}

// count is the number of lines in the set.
func (b bitset) count() int64 {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// set marks i and reports whether it was new.
func (b bitset) set(i int64) bool {
	w, m := i/64, uint64(1)<<(i%64)
	if b[w]&m != 0 {
		return false
	}
	b[w] |= m
	return true
}
