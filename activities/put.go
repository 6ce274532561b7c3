package activities

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// Kinesis PutRecords limits.
const (
	maxBatchRecords = 500
	maxBatchBytes   = 5 << 20
	maxRecordBytes  = 1 << 20
	// segmentLines bounds the lines (good or bad) between two checkpoints, and
	// so the rejected lines held in memory before they are written to S3.
	segmentLines = 2000
	maxFirstBad  = 5
)

// PutInput names the feed to stream into Kinesis.
type PutInput struct {
	FeedID   string            `json:"feed_id"`
	Ref      feed.Ref          `json:"ref"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
}

// BadLine is one rejected line, as reported to the operator through
// history: its Reason names the field path, the type wanted and the kind
// of value, never the value (that is in the quarantine object only).
type BadLine struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

// PutProgress is PutToKinesis's checkpoint, sent as heartbeat details: every
// line up to Line (ending at byte Offset) is either in Kinesis or in a
// quarantine part. A retried attempt resumes there.
type PutProgress struct {
	Offset    int64     `json:"offset"`
	Line      int64     `json:"line"`
	Read      int64     `json:"read"`
	Rejected  int64     `json:"rejected"`
	Put       int64     `json:"put"`
	Resends   int64     `json:"resends"`
	FirstBad  []BadLine `json:"first_bad,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// SentThrough is the last line of the batch being sent when this
	// checkpoint was recorded: lines after Line up to it may be in Kinesis
	// already, so a resumed attempt counts their records as re-sent.
	SentThrough int64 `json:"sent_through,omitempty"`
}

// PutResult is what PutToKinesis did.
type PutResult struct {
	Read          int64     `json:"read"`
	Rejected      int64     `json:"rejected"`
	Put           int64     `json:"put"`
	Resends       int64     `json:"resends"` // entries PutRecords had to send again
	QuarantineKey string    `json:"quarantine_key,omitempty"`
	FirstBad      []BadLine `json:"first_bad,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	// SourceModified is the source object's LastModified, as the GET that
	// read it said: with the event's sequencer it orders uploads of a key.
	SourceModified time.Time `json:"source_modified,omitempty"`
}

// QuarantineKey is where a feed's rejected lines are written, in the
// pipeline's quarantine bucket.
func QuarantineKey(p pipeline.Pipeline, feedID string) string {
	return fmt.Sprintf("quarantine/%s/%s.ndjson", p.Name, feedID)
}

func quarantinePartPrefix(p pipeline.Pipeline, feedID string) string {
	return fmt.Sprintf("quarantine/%s/%s.parts/", p.Name, feedID)
}

// quarantined is one line of a quarantine object.
type quarantined struct {
	Feed      string `json:"feed"`
	Line      int64  `json:"line"`
	Reason    string `json:"reason"`
	Raw       string `json:"raw,omitempty"`
	RawBase64 []byte `json:"raw_base64,omitempty"` // when the line is not UTF-8
	Truncated bool   `json:"truncated,omitempty"`  // raw holds only the line's first MiB
	// brief is the reason without the line's content, for history
	// (FirstBad); Reason may quote the value. Not written.
	brief string
}

// PutToKinesis streams the feed object line by line, checks each line against
// the pipeline's schema, sends good lines to the Kinesis stream as records
// that carry the feed id and line number, and writes rejected lines to the
// quarantine bucket. It checkpoints after every batch (the heartbeat clock
// delivers each within about a second) and resumes from the last one when
// retried.
func (a *Activities) PutToKinesis(ctx context.Context, in PutInput) (PutResult, error) {
	p, ref := in.Pipeline, in.Ref
	var prog PutProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &prog); err != nil {
			return PutResult{}, fmt.Errorf("put feed %s: read checkpoint: %w", ref, err)
		}
		a.log(ctx).Info("put: resuming", "feed", ref.String(), "line", prog.Line, "offset", prog.Offset)
	}
	ctx, b := startBeat(ctx, prog)
	defer b.Stop()
	if !activity.HasHeartbeatDetails(ctx) {
		if err := a.clearQuarantine(ctx, p, in.FeedID); err != nil {
			return PutResult{}, err
		}
	}
	if prog.StartedAt.IsZero() {
		prog.StartedAt = time.Now().UTC()
	}

	gz := strings.HasSuffix(ref.Key, ".gz")
	get := &s3.GetObjectInput{Bucket: &ref.Bucket, Key: &ref.Key}
	if ref.VersionID != "" {
		get.VersionId = &ref.VersionID
	} else if ref.ETag != "" {
		// Read exactly the upload this run is for, never a newer one.
		get.IfMatch = aws.String(`"` + strings.Trim(ref.ETag, `"`) + `"`)
	}
	resumeByRange := !gz && prog.Offset > 0
	if resumeByRange {
		get.Range = aws.String(fmt.Sprintf("bytes=%d-", prog.Offset))
	}
	obj, err := a.S3.GetObject(ctx, get)
	if err != nil {
		if isPreconditionFailed(err) {
			return PutResult{}, nonRetryable(ErrNotFound, "put feed %s: s3://%s/%s was overwritten after this upload (its ETag is no longer %s), so this version can no longer be read; "+
				"nothing of it was loaded. The new upload has a run of its own; to load this version, upload it again", ref, ref.Bucket, ref.Key, ref.ETag)
		}
		if c := apiCode(err); c == "NoSuchKey" || c == "NoSuchVersion" {
			return PutResult{}, nonRetryable(ErrNotFound, "put feed %s: s3://%s/%s was deleted after it was uploaded (%s); nothing of it was loaded. "+
				"Upload the file again to load it", ref, ref.Bucket, ref.Key, c)
		}
		if isRangeNotSatisfiable(err) {
			// The checkpoint is at the end of the object: nothing left to
			// read, but its LastModified still orders it among the key's uploads.
			head, herr := a.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: get.Bucket, Key: get.Key, VersionId: get.VersionId, IfMatch: get.IfMatch})
			if herr != nil {
				return PutResult{}, classifyAWS(herr, fmt.Sprintf("put feed %s: head s3://%s/%s", ref, ref.Bucket, ref.Key))
			}
			obj = &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(nil)), LastModified: head.LastModified}
		} else {
			return PutResult{}, classifyAWS(err, fmt.Sprintf("put feed %s: get s3://%s/%s", ref, ref.Bucket, ref.Key))
		}
	}
	defer obj.Body.Close()
	modified := aws.ToTime(obj.LastModified).UTC()
	var body io.Reader = obj.Body
	if gz {
		zr, err := gzip.NewReader(obj.Body)
		if err != nil {
			return PutResult{}, nonRetryable(ErrBadInput, "put feed %s: not a gzip file (%v); upload it uncompressed or as .gz", ref, err)
		}
		defer zr.Close()
		body = zr
	}

	layout, err := schema.NewLayout(&in.Pipeline.Schema, schema.LayoutOptions{})
	if err != nil {
		return PutResult{}, nonRetryable(ErrBadInput, "put feed %s: pipeline %s: schema: %v", ref, in.Pipeline.Name, err)
	}
	s := &putter{a: a, in: in, prog: prog, kinesis: a.Kinesis, parser: schema.NewParser(layout), b: b, resendThrough: prog.SentThrough}
	lr := newLineReader(body, maxRecordBytes-128)
	line := int64(0)
	offset := int64(0)
	if resumeByRange {
		line, offset = prog.Line, prog.Offset
	}
	for {
		raw, n, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) && n == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if gz {
				return PutResult{}, nonRetryable(ErrBadInput, "put feed %s: gzip stream broken after line %d: %v; upload the file again", ref, line, err)
			}
			return PutResult{}, fmt.Errorf("put feed %s: read after line %d: %w", ref, line, err)
		}
		line++
		offset += int64(n)
		if line <= s.prog.Line { // gzip resume: skip what was done
			if line%10000 == 0 {
				b.Touch()
			}
			continue
		}
		s.handleLine(line, raw, tooLong)
		s.segLines++
		s.segEndLine, s.segEndOffset = line, offset
		if len(s.batch) >= maxBatchRecords || s.batchBytes >= maxBatchBytes-maxRecordBytes || s.segLines >= segmentLines {
			if err := s.checkpoint(ctx); err != nil {
				return PutResult{}, err
			}
		}
	}
	if err := s.checkpoint(ctx); err != nil {
		return PutResult{}, err
	}
	res := PutResult{Read: s.prog.Read, Rejected: s.prog.Rejected, Put: s.prog.Put, Resends: s.prog.Resends,
		FirstBad: s.prog.FirstBad, StartedAt: s.prog.StartedAt, SourceModified: modified}
	if res.Rejected > 0 {
		key, err := a.mergeQuarantine(ctx, p, in.FeedID, res.Rejected, b)
		if err != nil {
			return PutResult{}, err // it names the feed; a non-retryable error must stay unwrapped
		}
		res.QuarantineKey = key
	}
	if exceeded(p, res.Read, res.Rejected) {
		return res, rejectError(in, res)
	}
	return res, nil
}

func exceeded(p pipeline.Pipeline, read, rejected int64) bool {
	if rejected == 0 {
		return false
	}
	if p.MaxRejectedLines == 0 && p.MaxRejectedRatio == 0 {
		return true // no tolerance configured: any bad line fails the feed
	}
	return (p.MaxRejectedLines > 0 && rejected > p.MaxRejectedLines) ||
		(p.MaxRejectedRatio > 0 && float64(rejected) > p.MaxRejectedRatio*float64(read))
}

// rejectError fails the feed for too many bad lines. The error carries res
// as its details, so the workflow can report the counts and first bad lines.
func rejectError(in PutInput, res PutResult) error {
	var lines []string
	for _, b := range res.FirstBad {
		lines = append(lines, fmt.Sprintf("line %d: %s", b.Line, b.Reason))
	}
	where := ""
	if res.QuarantineKey != "" {
		where = fmt.Sprintf("; all rejected lines are in s3://%s/%s", in.Pipeline.QuarantineBucket, res.QuarantineKey)
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"feed %s rejected %d of %d lines read, over the pipeline %s threshold (max_rejected_lines=%d, max_rejected_ratio=%g); nothing was loaded. First bad lines: %s%s. Fix the file and upload it again",
		in.Ref, res.Rejected, res.Read, in.Pipeline.Name, in.Pipeline.MaxRejectedLines, in.Pipeline.MaxRejectedRatio,
		strings.Join(lines, "; "), where), ErrRejectThreshold, nil, res)
}

// putter holds one attempt's state between checkpoints.
type putter struct {
	a       *Activities
	in      PutInput
	prog    PutProgress
	kinesis KinesisAPI
	parser  *schema.Parser
	b       *beat
	// resendThrough is the SentThrough of the checkpoint this attempt
	// resumed from: good lines up to it are counted as re-sent.
	resendThrough int64
	segResends    int64

	batch        []kintypes.PutRecordsRequestEntry
	batchBytes   int
	rejects      []quarantined
	segLines     int
	segRead      int64
	segEndLine   int64
	segEndOffset int64
}

func (s *putter) handleLine(line int64, raw []byte, tooLong bool) {
	s.segRead++
	if line == 1 {
		raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	}
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if tooLong {
		s.reject(line, raw, fmt.Sprintf("line longer than %d bytes, the most a Kinesis record holds", maxRecordBytes-128), true)
		return
	}
	if err := s.parser.Check(raw); err != nil {
		s.rejectLine(line, raw, err)
		return
	}
	if line <= s.resendThrough {
		s.segResends++
	}
	rec := record(s.in.FeedID, line, bytes.TrimSpace(raw))
	s.batch = append(s.batch, kintypes.PutRecordsRequestEntry{
		Data:         rec,
		PartitionKey: aws.String(s.in.FeedID + "-" + strconv.FormatInt(line, 10)),
	})
	s.batchBytes += len(rec) + 40
}

// record is the line with the feed id and line number added as its first
// fields, ending in a newline so that objects Firehose concatenates stay NDJSON.
func record(feedID string, line int64, obj []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(obj) + 64)
	b.WriteString(`{"` + schema.FeedIDField + `":"`)
	b.WriteString(feedID)
	b.WriteString(`","` + schema.LineField + `":`)
	b.WriteString(strconv.FormatInt(line, 10))
	inner := bytes.TrimSpace(obj[1 : len(obj)-1])
	if len(inner) > 0 {
		b.WriteByte(',')
		b.Write(inner)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// rejectLine quarantines a line the schema refused: the quarantine object
// gets the full reason (quoting the value), history only the reason
// without it (schema.LineError.Reason).
func (s *putter) rejectLine(line int64, raw []byte, err error) {
	brief := err.Error()
	var le *schema.LineError
	if errors.As(err, &le) {
		brief = le.Reason
	}
	s.reject(line, raw, err.Error(), false)
	s.rejects[len(s.rejects)-1].brief = brief
}

func (s *putter) reject(line int64, raw []byte, reason string, truncated bool) {
	q := quarantined{Feed: s.in.Ref.String(), Line: line, Reason: reason, brief: reason, Truncated: truncated}
	if utf8.Valid(raw) {
		q.Raw = string(raw)
	} else {
		q.RawBase64 = append([]byte(nil), raw...)
	}
	s.rejects = append(s.rejects, q)
}

// checkpoint sends the batch, writes the segment's rejects, and records the
// new checkpoint in a heartbeat.
func (s *putter) checkpoint(ctx context.Context) error {
	if s.segLines == 0 {
		return nil
	}
	s.prog.SentThrough = s.segEndLine
	s.b.Progress(s.snapshot())
	if err := s.send(ctx); err != nil {
		return err
	}
	if len(s.rejects) > 0 {
		if err := s.writePart(ctx); err != nil {
			return err
		}
	}
	s.prog.Read += s.segRead
	s.prog.Put += int64(len(s.batch))
	s.prog.Rejected += int64(len(s.rejects))
	s.prog.Resends += s.segResends
	for _, r := range s.rejects {
		if len(s.prog.FirstBad) < maxFirstBad {
			s.prog.FirstBad = append(s.prog.FirstBad, BadLine{Line: r.Line, Reason: r.brief})
		}
	}
	s.prog.Line, s.prog.Offset = s.segEndLine, s.segEndOffset
	s.batch, s.batchBytes, s.rejects, s.segLines, s.segRead, s.segResends = s.batch[:0], 0, s.rejects[:0], 0, 0, 0
	s.b.Progress(s.snapshot())
	p := s.in.Pipeline
	// Fail early on an absolute limit: the rest of the file cannot save it.
	if s.prog.Rejected > 0 && ((p.MaxRejectedLines > 0 && s.prog.Rejected > p.MaxRejectedLines) ||
		(p.MaxRejectedLines == 0 && p.MaxRejectedRatio == 0)) {
		key, err := s.a.mergeQuarantine(ctx, p, s.in.FeedID, s.prog.Rejected, s.b)
		if err != nil {
			return err
		}
		return rejectError(s.in, PutResult{Read: s.prog.Read, Rejected: s.prog.Rejected, Put: s.prog.Put,
			FirstBad: s.prog.FirstBad, QuarantineKey: key, StartedAt: s.prog.StartedAt})
	}
	return nil
}

// snapshot is a copy of the checkpoint for the heartbeat clock to hold.
func (s *putter) snapshot() PutProgress {
	p := s.prog
	p.FirstBad = slices.Clone(p.FirstBad)
	return p
}

// send puts the batch, resending only the entries Kinesis failed, with
// exponential backoff, until all are in or ctx ends.
func (s *putter) send(ctx context.Context) error {
	pending := s.batch
	backoff := 100 * time.Millisecond
	for attempt := 0; len(pending) > 0; attempt++ {
		out, err := s.kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.in.Pipeline.Stream, Records: pending})
		if err != nil {
			cerr := classifyAWS(err, fmt.Sprintf("put feed %s: Kinesis stream %s", s.in.Ref, s.in.Pipeline.Stream))
			if isNonRetryable(cerr) || ctx.Err() != nil {
				return cerr
			}
			s.a.log(ctx).Warn("put: PutRecords failed, retrying", "feed", s.in.Ref.String(), "err", err, "attempt", attempt)
		} else {
			var failed []kintypes.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					failed = append(failed, pending[i])
				}
			}
			if len(out.Records) != len(pending) {
				return fmt.Errorf("put feed %s: PutRecords answered %d results for %d records", s.in.Ref, len(out.Records), len(pending))
			}
			s.prog.Resends += int64(len(failed))
			pending = failed
			if len(pending) == 0 {
				return nil
			}
		}
		s.b.Touch()
		jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		if err := sleepCtx(ctx, backoff+jitter); err != nil {
			return fmt.Errorf("put feed %s: %d records not yet accepted by Kinesis: %w", s.in.Ref, len(pending), err)
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (s *putter) writePart(ctx context.Context) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, r := range s.rejects {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	p := s.in.Pipeline
	key := fmt.Sprintf("%spart-%012d.ndjson", quarantinePartPrefix(p, s.in.FeedID), s.rejects[0].Line)
	if _, err := s.a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.QuarantineBucket, Key: &key, Body: bytes.NewReader(b.Bytes())}); err != nil {
		return classifyAWS(err, fmt.Sprintf("put feed %s: write quarantine s3://%s/%s", s.in.Ref, p.QuarantineBucket, key))
	}
	return nil
}

// lineReader yields lines without holding more than max bytes of one: a
// longer line is reported tooLong, with its first max bytes, and skipped.
type lineReader struct {
	br  *bufio.Reader
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the line without its "\n", the bytes consumed (with the
// newline) and whether the line was cut. At the end it returns io.EOF with
// n == 0; a last line without a newline is returned first.
func (l *lineReader) next() (line []byte, n int, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := l.br.ReadSlice('\n')
		n += len(chunk)
		if len(buf)+len(chunk) <= l.max+1 {
			buf = append(buf, chunk...)
		} else {
			tooLong = true
			if room := l.max - len(buf); room > 0 {
				buf = append(buf, chunk[:room]...)
			}
		}
		if tooLong && len(buf) > l.max {
			buf = buf[:l.max]
		}
		switch {
		case err == nil:
			if !tooLong {
				buf = buf[:len(buf)-1]
			}
			return buf, n, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if n == 0 {
				return nil, 0, false, io.EOF
			}
			return buf, n, tooLong, nil
		default:
			return nil, n, false, err
		}
	}
}
