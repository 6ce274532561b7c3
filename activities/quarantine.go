package activities

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// ErrQuarantine is the error type of a quarantine that does not match the
// run's count of rejected lines: parts were lost or changed outside the run,
// or are left from an earlier run of the feed. Retrying cannot fix it.
const ErrQuarantine = "QuarantineInconsistent"

// quarantineLinesMeta is the user metadata of a merged quarantine object
// holding its number of lines (S3 returns it as x-amz-meta-feedpipe-lines).
const quarantineLinesMeta = "feedpipe-lines"

// mergeQuarantine merges the feed's quarantine parts into one object,
// QuarantineKey, in line order, and removes the parts. want is the number of
// rejected lines the run counted; the merged object must hold exactly that
// many distinct lines.
//
// It is idempotent: an attempt killed at any point (before the write, after
// it, halfway through removing the parts) leaves either the parts or a
// complete merged object, and a retry yields the same complete object. The
// merged object is written before any part is removed, and every merge reads
// the merged object left by an earlier attempt as well as the parts that
// remain, so lines in removed parts are never lost: they are in the merged
// object. A line (by line number) found in both is kept once.
//
// hb, when not nil, is touched as parts are read and removed.
func (a *Activities) mergeQuarantine(ctx context.Context, p pipeline.Pipeline, feedID string, want int64, hb *beat) (string, error) {
	bucket := p.QuarantineBucket
	key := QuarantineKey(p, feedID)
	parts, err := a.listQuarantineParts(ctx, p, feedID, hb)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		// Done before: the merged object is complete and the parts are gone.
		head, err := a.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		switch {
		case err == nil:
			if n, ok := mergedLines(head.Metadata); ok && n == want {
				return key, nil
			}
		case !isMissing(err):
			return "", classifyAWS(err, fmt.Sprintf("read quarantine s3://%s/%s", bucket, key))
		}
	}

	m := quarantineMerge{feedID: feedID, lines: map[int64]quarantineLine{}}
	for _, k := range parts {
		obj, err := a.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &k})
		if err != nil {
			if isMissing(err) {
				// Removed since the listing by another attempt, which had
				// written the merged object first: it is read below.
				continue
			}
			return "", classifyAWS(err, fmt.Sprintf("read quarantine part s3://%s/%s", bucket, k))
		}
		err = m.add(obj.Body, "s3://"+bucket+"/"+k, false)
		obj.Body.Close()
		if err != nil {
			return "", err
		}
		touch(hb)
	}
	// The merged object an earlier attempt wrote, if any, read after the
	// parts: it holds the lines of every part removed before now.
	existing, existingMeta := false, int64(-1)
	obj, err := a.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	switch {
	case err == nil:
		existing = true
		if n, ok := mergedLines(obj.Metadata); ok {
			existingMeta = n
		}
		err = m.add(obj.Body, "s3://"+bucket+"/"+key, true)
		obj.Body.Close()
		if err != nil {
			return "", err
		}
		touch(hb)
	case !isMissing(err):
		return "", classifyAWS(err, fmt.Sprintf("read quarantine s3://%s/%s", bucket, key))
	}

	n := int64(len(m.lines))
	if n != want {
		return "", quarantineError(
			"quarantine of feed %s: s3://%s/%s and the %d parts under s3://%s/%s hold %d distinct rejected lines, but the run counted %d; "+
				"quarantine objects were removed or changed outside this run, or are left from an earlier run of the feed. "+
				"Delete s3://%s/%s and the parts, then start the feed again",
			feedID, bucket, key, len(parts), bucket, quarantinePartPrefix(p, feedID), n, want, bucket, key)
	}

	// Write unless the merged object already holds exactly these lines.
	if !existing || existingMeta != n || m.inMerged() != n {
		body := m.ndjson()
		if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
			ContentType: aws.String("application/x-ndjson"),
			Metadata:    map[string]string{quarantineLinesMeta: strconv.FormatInt(n, 10)}}); err != nil {
			return "", classifyAWS(err, fmt.Sprintf("write quarantine s3://%s/%s", bucket, key))
		}
		touch(hb)
	}

	// Only now remove the parts: every line of them is in the merged object.
	// A part left behind (a failed delete) is harmless: the next merge of the
	// feed finds its lines already merged.
	for _, k := range parts {
		if _, err := a.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("remove quarantine part s3://%s/%s: %w", bucket, k, ctx.Err())
			}
			a.log(ctx).Warn("put: could not remove quarantine part; the merged quarantine is complete", "key", k, "err", err)
		}
		touch(hb)
	}
	return key, nil
}

// listQuarantineParts returns the keys of the feed's quarantine parts.
func (a *Activities) listQuarantineParts(ctx context.Context, p pipeline.Pipeline, feedID string, hb *beat) ([]string, error) {
	var keys []string
	err := a.listKeys(ctx, p.QuarantineBucket, quarantinePartPrefix(p, feedID), func(page []string) error {
		keys = append(keys, page...)
		touch(hb)
		return nil
	})
	return keys, err
}

// quarantineLine is one line of a quarantine object, as read.
type quarantineLine struct {
	q        quarantined
	json     []byte // the line as written, without its newline
	inMerged bool   // the merged object holds this line as is
}

// quarantineMerge is the union, by line number, of quarantine objects.
type quarantineMerge struct {
	feedID string
	lines  map[int64]quarantineLine
}

// add reads one quarantine object, a part or the merged one, into the
// union. A line already there must be the same feed line (same raw bytes);
// its reason may differ if another worker version wrote it, and then the
// version in a part, rewritten by the latest attempt, is kept.
func (m *quarantineMerge) add(r io.Reader, where string, merged bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("quarantine of feed %s: read %s: %w", m.feedID, where, err)
		}
		if line := bytes.TrimSpace(raw); len(line) > 0 {
			var q quarantined
			if err := json.Unmarshal(line, &q); err != nil || q.Line <= 0 {
				why := "no line number"
				if err != nil {
					why = err.Error()
				}
				return quarantineError("quarantine of feed %s: line %d of %s is not a quarantined line (%s); "+
					"delete the feed's quarantine object and parts, then start the feed again", m.feedID, n, where, why)
			}
			old, seen := m.lines[q.Line]
			switch {
			case !seen:
				m.lines[q.Line] = quarantineLine{q: q, json: bytes.Clone(line), inMerged: merged}
			case old.q.Raw != q.Raw || !bytes.Equal(old.q.RawBase64, q.RawBase64) || old.q.Truncated != q.Truncated:
				return quarantineError("quarantine of feed %s: feed line %d is quarantined twice with different contents (again in %s); "+
					"delete the feed's quarantine object and parts, then start the feed again", m.feedID, q.Line, where)
			case merged:
				old.inMerged = bytes.Equal(old.json, line)
				m.lines[q.Line] = old
			default: // the same line in two parts: keep the later part's
				m.lines[q.Line] = quarantineLine{q: q, json: bytes.Clone(line)}
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

// inMerged counts the lines the merged object already holds as they are.
func (m *quarantineMerge) inMerged() int64 {
	var n int64
	for _, l := range m.lines {
		if l.inMerged {
			n++
		}
	}
	return n
}

// ndjson is the union in line order, one JSON object a line.
func (m *quarantineMerge) ndjson() []byte {
	nums := make([]int64, 0, len(m.lines))
	size := 0
	for n, l := range m.lines {
		nums = append(nums, n)
		size += len(l.json) + 1
	}
	slices.Sort(nums)
	b := make([]byte, 0, size)
	for _, n := range nums {
		b = append(b, m.lines[n].json...)
		b = append(b, '\n')
	}
	return b
}

// mergedLines reads the line count from a merged quarantine's metadata.
func mergedLines(meta map[string]string) (int64, bool) {
	for k, v := range meta {
		if strings.EqualFold(k, quarantineLinesMeta) {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// isMissing says whether err is S3's answer for an object that does not exist.
func isMissing(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

// quarantineError is a non-retryable ErrQuarantine error.
func quarantineError(format string, args ...any) error {
	return nonRetryable(ErrQuarantine, format, args...)
}

// touch tells the heartbeat clock, if any, that the activity is moving.
func touch(hb *beat) {
	if hb != nil {
		hb.Touch()
	}
}

// clearQuarantine removes what an earlier run of the same feed version left
// in quarantine (a run started again after a failure, perhaps with another
// schema): a put that starts from the first line writes its own.
func (a *Activities) clearQuarantine(ctx context.Context, p pipeline.Pipeline, feedID string) error {
	keys, err := a.listQuarantineParts(ctx, p, feedID, nil)
	if err != nil {
		return err
	}
	keys = append(keys, QuarantineKey(p, feedID))
	for _, k := range keys {
		if _, err := a.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &p.QuarantineBucket, Key: &k}); err != nil && !isMissing(err) {
			return classifyAWS(err, fmt.Sprintf("clear the earlier quarantine s3://%s/%s", p.QuarantineBucket, k))
		}
	}
	return nil
}
