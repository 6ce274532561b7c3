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

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// Bundles: AwaitDelivery has to read every staging object of the feed to
// count its lines, and Convert needs those same bytes again. So that the
// feed is not read from staging twice, a delivery pass also writes what it
// read, a few seconds at a time, as one gzip "bundle" object beside its
// checkpoint: a sequence of frames (the object's key relative to the feed's
// prefix, then its body). The checkpoint lists each bundle with the keys it
// holds, in order. Convert reads the bundles, then only the staging objects
// no bundle holds (those delivery did not need: duplicates that arrived
// after the last line). With Firehose's 64 MiB buffers that is one extra
// compressed copy of the feed for a short time; with one object per record
// (MiniStack) it turns thousands of GETs into a few.

// bundleMaxBytes bounds a bundle (compressed): a pass saves its checkpoint
// early rather than hold more in memory.
const bundleMaxBytes = 64 << 20

// bundleRef is a bundle object and the staging keys (relative to the feed's
// prefix) it holds, in the order of its frames.
type bundleRef struct {
	Key  string
	Keys []string
}

// bundleWriter builds one bundle in memory.
type bundleWriter struct {
	buf  bytes.Buffer
	zw   *gzip.Writer
	keys []string
}

func newBundleWriter() *bundleWriter {
	w := &bundleWriter{}
	w.zw, _ = gzip.NewWriterLevel(&w.buf, gzip.BestSpeed) // the level is valid
	return w
}

// add appends one staging object.
func (w *bundleWriter) add(rel string, body []byte) error {
	var n [2 * binary.MaxVarintLen64]byte
	if _, err := w.zw.Write(binary.AppendUvarint(n[:0], uint64(len(rel)))); err != nil {
		return err
	}
	if _, err := io.WriteString(w.zw, rel); err != nil {
		return err
	}
	if _, err := w.zw.Write(binary.AppendUvarint(n[:0], uint64(len(body)))); err != nil {
		return err
	}
	if _, err := w.zw.Write(body); err != nil {
		return err
	}
	w.keys = append(w.keys, rel)
	return nil
}

// objects is the number of staging objects added.
func (w *bundleWriter) objects() int { return len(w.keys) }

// size is the compressed size so far.
func (w *bundleWriter) size() int { return w.buf.Len() }

// putBundle writes the bundle as feedID's bundle called name.
func (a *Activities) putBundle(ctx context.Context, p pipeline.Pipeline, feedID string, w *bundleWriter, name string) (bundleRef, error) {
	if err := w.zw.Close(); err != nil {
		return bundleRef{}, fmt.Errorf("await delivery of feed %s: bundle: %w", feedID, err)
	}
	key := fmt.Sprintf("%sbundle-%s.gz", DeliveryCheckpointPrefix(p, feedID), name)
	ctx, cancel := callContext(ctx)
	defer cancel()
	_, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.StagingBucket, Key: &key, Body: bytes.NewReader(w.buf.Bytes())})
	if err != nil {
		return bundleRef{}, classifyAWS(err, fmt.Sprintf("await delivery of feed %s: save bundle s3://%s/%s", feedID, p.StagingBucket, key))
	}
	return bundleRef{Key: key, Keys: w.keys}, nil
}

// eachBundled calls fn with every frame of a bundle object's body, in order.
// want is the keys the checkpoint says it holds: a bundle that does not hold
// exactly those is damaged.
func eachBundled(body []byte, want []string, fn func(i int, rel string, obj []byte) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return &lostCheckpoint{fmt.Sprintf("bundle: %v", err)}
	}
	r := bufio.NewReader(zr)
	for i := 0; ; i++ {
		rel, err := readFrame(r)
		if errors.Is(err, io.EOF) && i == len(want) {
			return nil
		}
		if err != nil {
			return &lostCheckpoint{fmt.Sprintf("bundle frame %d: %v", i+1, err)}
		}
		obj, err := readFrame(r)
		if err != nil {
			return &lostCheckpoint{fmt.Sprintf("bundle frame %d: %v", i+1, err)}
		}
		if i >= len(want) || string(rel) != want[i] {
			return &lostCheckpoint{fmt.Sprintf("bundle frame %d holds %q, not the object its checkpoint names", i+1, rel)}
		}
		if err := fn(i, string(rel), obj); err != nil {
			return err
		}
	}
}

// maxFrame bounds one frame: a key, or a staging object (Firehose writes
// objects of at most 128 MiB).
const maxFrame = 1 << 30

// readFrame reads one length-prefixed field; io.EOF only at a field's start.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("field of %d bytes", n)
	}
	// Read what is there rather than allocate a damaged length up front.
	b, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) != n {
		return nil, io.ErrUnexpectedEOF
	}
	return b, nil
}
