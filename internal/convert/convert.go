// Package convert turns an NDJSON stream (plain or gzip) into a Parquet
// stream in bounded memory: lines are parsed in parallel batches, typed by an
// explicit or inferred schema, and written in row groups flushed by size.
// Every input line ends as one row or one rejected line with its number and
// reason; bad input is never a panic. Staged converts one feed's staged
// records (the feed's lines with _feed_id and _line, delivered at least
// once) into the feed's Parquet file the same way, one row per line.
package convert

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// Unknown-field policies; schema.UnknownDrop and schema.UnknownReject, plus:
const UnknownExtra = "extra" // keep undeclared fields as JSON in column _extra

// MaxLineBytes is the longest line converted; a longer one is rejected
// (without being held in memory).
const MaxLineBytes = 16 << 20

// Options say how to convert.
type Options struct {
	// Schema is the explicit schema; nil infers one from the first InferLines lines.
	Schema *schema.Schema
	// InferLines is how many lines inference samples (default 10,000).
	InferLines int
	// Unknown is the policy for undeclared fields: drop (default), reject or extra.
	Unknown string
	// Compression: zstd (default), snappy or none.
	Compression string
	// ZstdLevel is zstd's level, 1 to 22 (default
	// parquetconv.DefaultZstdLevel).
	ZstdLevel int
	// RowGroupBytes bounds each row group in memory (default 64 MiB).
	RowGroupBytes int64
	// RowGroupRows bounds each row group's rows (default 1Mi).
	RowGroupRows int64
	// PlainIntegers writes integer, date and timestamp pages PLAIN only
	// (see parquetconv.Options.PlainIntegers).
	PlainIntegers bool
	// Workers parse lines in parallel (default GOMAXPROCS).
	Workers int
	// OnReject receives each rejected line, in line order, one call at a
	// time, on a goroutine of Convert's. It may be nil.
	OnReject func(Reject)
}

// Reject is a rejected line.
type Reject struct {
	Line int64
	// Reason says why, quoting the offending value where that helps
	// (schema.LineError.Error).
	Reason string
	// Raw is the line's bytes as read (without "\n"), at most MaxRejectRaw
	// of them: cut between characters if the line is UTF-8.
	Raw []byte
	// Bytes is the line's length: more than len(Raw) when Raw was cut.
	Bytes int64
	// NotUTF8: the line is not valid UTF-8, perhaps only beyond Raw (for
	// a line over MaxLineBytes, only Raw is known).
	NotUTF8 bool
}

// MaxRejectRaw is how much of a rejected line Reject.Raw keeps.
const MaxRejectRaw = 1 << 20

// Stats count what a conversion did.
type Stats struct {
	Lines      int64 // lines read (a final line without "\n" counts)
	Rows       int64 // rows written
	Rejected   int64 // lines rejected
	InputBytes int64 // bytes of NDJSON (after gunzip)
	Schema     schema.Schema
}

// Convert reads NDJSON from r and writes Parquet to w.
func Convert(ctx context.Context, r io.Reader, w io.Writer, opt Options) (Stats, error) {
	var st Stats
	if opt.InferLines <= 0 {
		opt.InferLines = 10000
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Unknown == "" {
		opt.Unknown = schema.UnknownDrop
	}
	switch opt.Unknown {
	case schema.UnknownDrop, schema.UnknownReject, UnknownExtra:
	default:
		return st, fmt.Errorf("unknown-field policy %q: use drop, reject or extra", opt.Unknown)
	}
	in, err := maybeGunzip(r)
	if err != nil {
		return st, err
	}
	lr := &lineSource{r: in}

	var sch schema.Schema
	sample := &sampleBlocks{}
	inferred, sampleFull := 0, false
	var cut []string
	if opt.Schema != nil {
		sch = *opt.Schema
	} else {
		if _, err = lr.take(sample, opt.InferLines, MaxSampleBytes); err != nil {
			return st, fmt.Errorf("read after line %d: %w", len(sample.all.lines), err)
		}
		var infer [][]byte
		for i, line := range sample.all.lines {
			if len(infer) < opt.InferLines && sample.all.long[i] == 0 {
				infer = append(infer, line)
			}
		}
		sch, cut = inferSchema(infer, opt.Unknown)
		inferred = min(opt.InferLines, len(sample.all.lines))
		sampleFull = inferred < opt.InferLines && sample.bytes >= MaxSampleBytes
		if len(sch.Columns) == 0 && len(sample.all.lines) > 0 {
			// No line of the sample gives a column (not objects, only {}):
			// later lines would be rows with every field dropped. Infer from
			// the first line that gives one, and the lines after it.
			if sch, cut, inferred, sampleFull, err = inferPastUnusable(lr, sample, opt); err != nil {
				return st, err
			}
		}
		if len(cut) > 0 && opt.Unknown == schema.UnknownDrop {
			return st, fmt.Errorf("infer a schema: the sample has more than %d leaf columns, the most feedpipe writes; %d keys past the limit (the first %q) would be dropped: use -unknown extra to keep them in _extra, -unknown reject to reject their lines, or give -schema", schema.MaxLeafColumns, len(cut), cut[0])
		}
	}
	sch.Unknown = schema.UnknownDrop
	if opt.Unknown == schema.UnknownReject {
		sch.Unknown = schema.UnknownReject
	}
	if err := sch.Validate(); err != nil {
		if len(sch.Columns) == 0 && opt.Schema == nil {
			// Nothing to infer from (an empty file, or no object in the sample):
			// write a file with one nullable string column so readers open it.
			sch = schema.Schema{Columns: []schema.Column{{Name: "value", Type: schema.String, Nullable: true}}, Unknown: schema.UnknownDrop}
		} else {
			return st, fmt.Errorf("schema: %w", err)
		}
	}
	st.Schema = sch
	pw, err := parquetconv.NewWriter(w, sch, parquetconv.Options{Compression: opt.Compression, ZstdLevel: opt.ZstdLevel,
		RowGroupBytes: opt.RowGroupBytes, RowGroupRows: opt.RowGroupRows, NoFeedColumns: true, Extra: opt.Unknown == UnknownExtra,
		PlainIntegers: opt.PlainIntegers})
	if err != nil {
		return st, err
	}

	p := pipelineRun{opt: opt, pw: pw, st: &st}
	for _, k := range cut {
		if p.cut == nil {
			p.cut = map[string]bool{}
		}
		p.cut[k] = true
	}
	if opt.Schema == nil {
		p.inferred = inferred
		p.sampleFull = sampleFull
	}
	if err := p.run(ctx, lr, sample); err != nil {
		pw.Abort()
		return st, err
	}
	rows, err := pw.Close()
	if err != nil {
		return st, err
	}
	st.Rows = rows
	return st, nil
}

// ErrTruncatedGzip is the one error for gzip input that ends early, where
// ever it is cut (in its header, its data or its trailer): the file is
// incomplete.
var ErrTruncatedGzip = errors.New("the gzip input ends early: the file is truncated (copy or upload it whole again)")

func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(2)
	if len(magic) == 1 && magic[0] == 0x1f {
		// All there is is gzip's first byte (NDJSON cannot start with it):
		// gzip cut after one byte.
		return nil, fmt.Errorf("read after line 0: %w", ErrTruncatedGzip)
	}
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read after line 0: %w", ErrTruncatedGzip)
		}
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return gzipReader{zr}, nil
	}
	return br, nil
}

// gzipReader reports gzip data that ends early as ErrTruncatedGzip.
type gzipReader struct{ r *gzip.Reader }

func (g gzipReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrTruncatedGzip
	}
	return n, err
}

type batch struct {
	first int64
	lines
	rows    *schema.Rows
	rejects []Reject
	recs    []stagedRec // staged mode: each line's record
	names   []string    // staged mode: the objects the records are from
	err     error       // staged mode: a record that stops the conversion
	done    chan struct{}
	// head is closed when the writer waits for this batch, all before it
	// written: from then on its parser may write rows itself (spill).
	head chan struct{}
	// spare takes over from rows when rows are spilled; spilled is closed
	// once the Writer has copied the last spilled rows.
	spare   *schema.Rows
	spilled chan struct{}
	pl      *pipeline
}

// reset readies a used batch for reuse, keeping its buffers.
func (b *batch) reset() {
	b.first, b.done, b.head, b.spilled, b.err = 0, make(chan struct{}), make(chan struct{}), nil, nil
	b.lines.reset()
	b.rejects, b.recs, b.names = b.rejects[:0], b.recs[:0], b.names[:0]
	if b.rows != nil {
		b.rows.Reset()
	}
}

// pipeline parses batches of lines on workers goroutines, each into its
// batch's columns, and hands the batches in the order they were sent to
// the writer, whose workers write their columns independently. At most
// 3×workers+2 batches exist, and never more than maxBatches; each is
// reused once written, so memory stays bounded, whatever the core count,
// and allocation low. One goroutine sends (next, send, finish).
type pipeline struct {
	pw rowWriter
	// take is called with each parsed batch, in order, before its rows are
	// written; an error stops the pipeline.
	take                func(*batch) error
	work, ordered, free chan *batch
	made, maxBatches    int
	stopped             chan struct{} // closed once the pipeline failed or aborted
	stopOnce            sync.Once
	failed              error // a parser's error (see fail)
	failOnce            sync.Once
	written             chan error // the writing goroutine's outcome
	workers             sync.WaitGroup
}

// maxBatches bounds the batches of a pipeline: each holds at most
// blockBytes of input (more only for a line longer than that) and two
// sets of rows of at most spillValues values (1.25 MiB) and one line's each,
// whatever the core count; far less for most schemas: a batch of the bench
// feed's 26 columns holds about 250 KiB of values, and only lines of
// lists of objects fill a second set.
const maxBatches = 24

// rowWriter is what the pipeline hands parsed rows to, in order:
// a parquetconv.Writer (an interface so that the hand-off can be measured
// alone, BenchmarkSerialHandOff).
type rowWriter interface {
	Layout() *schema.Layout
	WriteRowsAsync(r *schema.Rows, release func()) error
}

// errStopped is what next and send return once the pipeline has stopped;
// finish returns why.
var errStopped = errors.New("convert: pipeline stopped")

// startPipeline starts workers parsing batches with parse (on a worker,
// with that worker's parser) and a goroutine writing them to pw.
func startPipeline(pw rowWriter, workers int, parse func(*schema.Parser, *batch), take func(*batch) error) *pipeline {
	p := &pipeline{pw: pw, take: take, maxBatches: min(3*workers+2, maxBatches), written: make(chan error, 1), stopped: make(chan struct{})}
	p.work = make(chan *batch, workers)
	p.ordered = make(chan *batch, p.maxBatches)
	p.free = make(chan *batch, p.maxBatches)
	layout := pw.Layout()
	for range workers {
		p.workers.Go(func() {
			parser := schema.NewParser(layout)
			for b := range p.work {
				if b.rows == nil {
					b.rows = schema.NewRows(layout)
				}
				select {
				case <-p.stopped: // nothing more is written
				default:
					parse(parser, b)
				}
				close(b.done)
			}
		})
	}
	go p.write()
	return p
}

// write hands the parsed batches to the writer in order, until the first
// error (then it drains them).
func (p *pipeline) write() {
	var err error
	for b := range p.ordered {
		close(b.head)
		<-b.done
		if err != nil {
			continue
		}
		if err = p.take(b); err == nil {
			// Once the writer's workers have copied this batch's values,
			// its buffers are reused.
			err = p.pw.WriteRowsAsync(b.rows, func() {
				select {
				case p.free <- b:
				default:
				}
			})
		}
		if err != nil {
			p.stop()
		}
	}
	p.written <- err
}

// next returns an empty batch to fill: a written one, or a new one while
// fewer than maxBatches exist. It fails once ctx is done or the pipeline
// has stopped.
func (p *pipeline) next(ctx context.Context) (*batch, error) {
	var b *batch
	if p.made < p.maxBatches {
		select {
		case b = <-p.free:
		default:
			p.made++
			return &batch{done: make(chan struct{}), head: make(chan struct{}), pl: p}, nil
		}
	} else {
		select {
		case b = <-p.free:
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-p.stopped:
			return nil, errStopped
		}
	}
	b.reset()
	return b, nil
}

// send queues b to be parsed and written. Once ctx is done it stops the
// pipeline (so that a parser waiting to spill, see batch.spill, gives up).
func (p *pipeline) send(ctx context.Context, b *batch) error {
	// To the workers first: a batch the writer waits for is always parsed.
	select {
	case p.work <- b:
	case <-ctx.Done():
		p.stop()
		return ctx.Err()
	case <-p.stopped:
		return errStopped
	}
	// Then, always, to the writer: a batch parsed is a batch the writer
	// sees, or its parser could wait for its turn forever. ordered holds
	// every batch there is: this does not block.
	p.ordered <- b
	return nil
}

// finish waits until the batches sent are written (or, after an error,
// dropped) and the workers have ended; it returns the first error of take
// or the writer.
func (p *pipeline) finish() error {
	close(p.work)
	close(p.ordered)
	err := <-p.written
	p.workers.Wait()
	if err == nil {
		err = p.failed // set before its worker ended
	}
	return err
}

func (p *pipeline) stop() { p.stopOnce.Do(func() { close(p.stopped) }) }

// fail stops the pipeline for err, an error of a parser's (the first
// kept): finish returns it when the writer has none.
func (p *pipeline) fail(err error) {
	p.failOnce.Do(func() { p.failed = err })
	p.stop()
}

// spillValues bounds the parsed values a batch holds at a time (1.25 MiB):
// lines that parse into many more values than leaves (lists of objects of
// many fields: "[{},{},…]" is 3 bytes an element and a value for each of
// the element's leaves) would otherwise make a batch of 256 KiB of input
// hold hundreds of MiB.
const spillValues = 2 * batchValues

// full reports whether b's rows hold more than spillValues values.
func (b *batch) full() bool { return b.rows.Values() > spillValues }

// spill writes the rows b's parser has made so far, once every batch
// before b is written (the writer then waits for b, so the Writer is free
// for b's parser), and gives b empty rows to go on with, keeping at most
// two sets of rows for b. It reports false once the pipeline has stopped
// or the Writer failed (the writer reports why).
func (b *batch) spill() bool {
	select {
	case <-b.head:
	case <-b.pl.stopped:
		return false
	}
	copied := make(chan struct{})
	if err := b.pl.pw.WriteRowsAsync(b.rows, func() { close(copied) }); err != nil {
		b.pl.fail(err)
		return false
	}
	if b.spilled != nil {
		<-b.spilled // the spare's rows, spilled before, are copied
	}
	if b.spare == nil {
		b.spare = schema.NewRows(b.pl.pw.Layout())
	}
	b.spare.Reset()
	b.rows, b.spare, b.spilled = b.spare, b.rows, copied
	return true
}

// abort stops the pipeline without writing what is left, and waits for its
// goroutines; the caller aborts the writer.
func (p *pipeline) abort() {
	p.stop()
	_ = p.finish()
}

type pipelineRun struct {
	opt Options
	pw  rowWriter // a *parquetconv.Writer
	st  *Stats
	// inferred is how many lines the schema was inferred from (0: given);
	// sampleFull, that MaxSampleBytes ended the sample before -infer did.
	inferred   int
	sampleFull bool
	// cut holds the top-level keys inference left out at the column
	// limit (see Infer): a reject for one says so.
	cut map[string]bool
}

// run converts lr's lines (after sample's) in a pipeline.
func (p *pipelineRun) run(ctx context.Context, lr *lineSource, sample *sampleBlocks) error {
	pl := startPipeline(p.pw, p.opt.Workers, p.parse, p.take)
	lr.maxLines = linesFor(p.pw.Layout().Leaves)
	sample.all = lines{} // its parts are what is left to convert
	var readErr error
	for next := int64(1); ; {
		b, err := pl.next(ctx)
		if err != nil {
			readErr = err
			break
		}
		b.first = next
		if part, ok := sample.next(lr.maxLines); ok {
			b.lines = part // lines inference read
		} else {
			lr.fill(&b.lines)
		}
		if len(b.lines.lines) == 0 {
			readErr = lr.err
			break
		}
		next += int64(len(b.lines.lines))
		if err := pl.send(ctx, b); err != nil {
			readErr = err
			break
		}
	}
	if err := pl.finish(); err != nil {
		return err
	}
	p.st.InputBytes = lr.bytes
	if readErr != nil {
		return fmt.Errorf("read after line %d: %w", p.st.Lines, readErr)
	}
	return nil
}

// parse types a batch's lines into its rows, noting the lines rejected.
func (p *pipelineRun) parse(parser *schema.Parser, b *batch) {
	for i, line := range b.lines.lines {
		n := b.first + int64(i)
		if size := b.lines.long[i]; size > 0 {
			b.rejects = append(b.rejects, Reject{n, fmt.Sprintf("line longer than %d bytes (%d bytes)", MaxLineBytes, size),
				append([]byte(nil), line...), size, !utf8.Valid(line)})
			continue
		}
		if b.full() && !b.spill() {
			return
		}
		if err := parser.AppendLine(b.rows, line); err != nil {
			reason := err.Error()
			var le *schema.LineError
			if p.inferred > 0 && n > int64(p.inferred) && errors.As(err, &le) && le.TypeMismatch {
				if p.sampleFull {
					reason += fmt.Sprintf(" (type changed after %s, the %d MiB inference reads: give -schema)", firstLines(p.inferred), MaxSampleBytes>>20)
				} else {
					reason += " (type changed after " + firstLines(p.inferred) + ": raise -infer or give -schema)"
				}
			}
			if len(p.cut) > 0 && errors.As(err, &le) {
				if k, ok := strings.CutPrefix(le.Reason, "field "); ok {
					if q, err := strconv.QuotedPrefix(k); err == nil && strings.HasSuffix(le.Reason, "(undeclared fields are rejected)") {
						if name, _ := strconv.Unquote(q); p.cut[name] {
							reason += fmt.Sprintf(" (inference makes at most %d leaf columns; give -schema to declare it)", schema.MaxLeafColumns)
						}
					}
				}
			}
			b.rejects = append(b.rejects, Reject{n, reason, append([]byte(nil), cutRaw(line)...), int64(len(line)), !utf8.Valid(line)})
		}
	}
}

// take counts a parsed batch and reports its rejected lines.
func (p *pipelineRun) take(b *batch) error {
	p.st.Lines += int64(len(b.lines.lines))
	p.st.Rejected += int64(len(b.rejects))
	if p.opt.OnReject != nil {
		for _, r := range b.rejects {
			p.opt.OnReject(r)
		}
	}
	return nil
}

// firstLines names the inference sample: "the first line", "the first N
// lines".
func firstLines(n int) string {
	if n == 1 {
		return "the first line"
	}
	return fmt.Sprintf("the first %d lines", n)
}

// cutRaw is b cut to MaxRejectRaw bytes, between characters if b is UTF-8
// there.
func cutRaw(b []byte) []byte {
	if len(b) <= MaxRejectRaw {
		return b
	}
	cut := MaxRejectRaw
	for k := 0; k < utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]); k++ {
		cut--
	}
	if !utf8.RuneStart(b[cut]) {
		cut = MaxRejectRaw // not UTF-8 there
	}
	return b[:cut]
}

// MaxSampleBytes bounds the inference sample: inference reads the first
// InferLines lines or the first MaxSampleBytes of input (and the rest of
// the line it ends in), whichever ends first, and holds them until it ends;
// when no line of the sample gives a column, it reads on to the first that
// does within the same bound.
const MaxSampleBytes = 64 << 20

// MaxUnusableLines bounds how far past the -infer sample inference looks
// for a first line that gives a column, when no line of the sample does.
const MaxUnusableLines = 100_000

// inferSchema is Infer(lines), without a column named _extra (in any case)
// under -unknown extra: such a key is kept in the _extra column with the
// line's other undeclared keys, not made a column Snowflake would take for it.
func inferSchema(lines [][]byte, unknown string) (schema.Schema, []string) {
	sch, cut := inferCut(lines)
	if unknown == UnknownExtra {
		cols := sch.Columns[:0]
		for _, c := range sch.Columns {
			if schema.FoldName(c.Name) != schema.FoldName(schema.ExtraField) {
				cols = append(cols, c)
			}
		}
		sch.Columns = cols
	}
	return sch, cut
}

// inferPastUnusable reads on from sample, none of whose lines gives a
// column, to the first line that does (within MaxUnusableLines lines),
// and infers the schema from it and the opt.InferLines-1 lines after it.
// It returns the lines read (all to be converted), the schema, and how
// many lines from the start the schema was inferred from. At the end of
// the input with no such line, the schema has no columns; past the bound,
// it fails naming the lines.
func inferPastUnusable(lr *lineSource, sample *sampleBlocks, opt Options) (schema.Schema, []string, int, bool, error) {
	first := -1
	for i := 0; ; i++ {
		if i >= MaxUnusableLines && i >= opt.InferLines {
			return schema.Schema{}, nil, 0, false, fmt.Errorf("infer a schema: none of lines 1 to %d is a JSON object with a field that can be a column (not JSON objects, only {}, or rejected by every schema); fix the feed or give -schema", i)
		}
		for i >= len(sample.all.lines) {
			read, err := lr.take(sample, blockLines, MaxSampleBytes)
			if err != nil {
				return schema.Schema{}, nil, 0, false, fmt.Errorf("read after line %d: %w", len(sample.all.lines), err)
			}
			if read == 0 && sample.bytes >= MaxSampleBytes {
				return schema.Schema{}, nil, 0, false, fmt.Errorf("infer a schema: none of lines 1 to %d (the first %d MiB, the most inference reads) is a JSON object with a field that can be a column (not JSON objects, only {}, or rejected by every schema); fix the feed or give -schema", i, MaxSampleBytes>>20)
			}
			if read == 0 {
				return schema.Schema{}, nil, 0, false, nil // the end: nothing to drop
			}
		}
		if sch, _ := inferSchema(sample.all.lines[i:i+1], opt.Unknown); sample.all.long[i] == 0 && len(sch.Columns) > 0 {
			first = i
			break
		}
	}
	for len(sample.all.lines) < first+opt.InferLines {
		read, err := lr.take(sample, opt.InferLines, MaxSampleBytes)
		if err != nil {
			return schema.Schema{}, nil, 0, false, fmt.Errorf("read after line %d: %w", len(sample.all.lines), err)
		}
		if read == 0 {
			break
		}
	}
	end := min(len(sample.all.lines), first+opt.InferLines)
	var infer [][]byte
	for i := first; i < end; i++ {
		if sample.all.long[i] == 0 {
			infer = append(infer, sample.all.lines[i])
		}
	}
	sch, cut := inferSchema(infer, opt.Unknown)
	return sch, cut, end, end-first < opt.InferLines && sample.bytes >= MaxSampleBytes, nil
}
