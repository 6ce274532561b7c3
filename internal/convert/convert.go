// Package convert turns an NDJSON stream (plain or gzip) into a Parquet
// stream in bounded memory: lines are parsed in parallel batches, typed by an
// explicit or inferred schema, and written in row groups flushed by size.
// Every input line ends as one row or one rejected line with its number and
// reason; bad input is never a panic.
package convert

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"runtime"

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
	// RowGroupBytes bounds each row group in memory (default 64 MiB).
	RowGroupBytes int64
	// RowGroupRows bounds each row group's rows (default 1Mi).
	RowGroupRows int64
	// Workers parse lines in parallel (default GOMAXPROCS).
	Workers int
	// OnReject receives each rejected line (its number, a reason, and at most
	// its first MiB). It may be nil.
	OnReject func(line int64, reason string, raw []byte)
}

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
	var sample *lines
	if opt.Schema != nil {
		sch = *opt.Schema
	} else {
		sample, err = lr.take(opt.InferLines)
		if err != nil {
			return st, err
		}
		var infer [][]byte
		for i, line := range sample.lines {
			if len(infer) < opt.InferLines && !sample.long[i] {
				infer = append(infer, line)
			}
		}
		sch = Infer(infer)
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
	pw, err := parquetconv.NewWriter(w, sch, parquetconv.Options{Compression: opt.Compression,
		RowGroupBytes: opt.RowGroupBytes, RowGroupRows: opt.RowGroupRows, NoFeedColumns: true, Extra: opt.Unknown == UnknownExtra})
	if err != nil {
		return st, err
	}

	p := pipelineRun{layout: pw.Layout(), opt: opt, pw: pw, st: &st}
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

func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	}
	return br, nil
}

type lineReject struct {
	line   int64
	reason string
	raw    []byte
}

type batch struct {
	first int64
	lines
	rows    *schema.Rows
	rejects []lineReject
	done    chan struct{}
}

// reset readies a used batch for reuse, keeping its buffers.
func (b *batch) reset(first int64) {
	b.first, b.done = first, make(chan struct{})
	b.lines.reset()
	b.rejects = b.rejects[:0]
	if b.rows != nil {
		b.rows.Reset()
	}
}

type pipelineRun struct {
	layout *schema.Layout
	opt    Options
	pw     *parquetconv.Writer
	st     *Stats
}

// run parses batches of lines on opt.Workers goroutines, each into its
// batch's columns, and hands the batches in order to the writer, whose
// workers write their columns independently. At most 3×Workers+2 batches
// exist; each is reused once written, so memory stays bounded and
// allocation low.
func (p *pipelineRun) run(ctx context.Context, lr *lineSource, sample *lines) error {
	maxBatches := 3*p.opt.Workers + 2
	work := make(chan *batch, p.opt.Workers)
	ordered := make(chan *batch, maxBatches)
	free := make(chan *batch, maxBatches)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range p.opt.Workers {
		go func() {
			parser := schema.NewParser(p.layout)
			for b := range work {
				if b.rows == nil {
					b.rows = schema.NewRows(p.layout)
				}
				for i, line := range b.lines.lines {
					n := b.first + int64(i)
					if b.lines.long[i] {
						b.rejects = append(b.rejects, lineReject{n, fmt.Sprintf("line longer than %d bytes", MaxLineBytes), truncate(line)})
						continue
					}
					if err := parser.AppendLine(b.rows, line); err != nil {
						b.rejects = append(b.rejects, lineReject{n, err.Error(), truncate(line)})
					}
				}
				close(b.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(work)
		defer close(ordered)
		next := int64(1)
		made := 0
		for {
			var b *batch
			if made < maxBatches {
				select {
				case b = <-free:
					b.reset(next)
				default:
					b = &batch{first: next, done: make(chan struct{})}
					made++
				}
			} else {
				select {
				case b = <-free:
					b.reset(next)
				case <-ctx.Done():
					readErr <- ctx.Err()
					return
				}
			}
			if sample != nil {
				b.lines, sample = *sample, nil // the lines inference read
			} else {
				lr.fill(&b.lines)
			}
			if len(b.lines.lines) == 0 {
				readErr <- lr.err
				return
			}
			next += int64(len(b.lines.lines))
			select {
			case ordered <- b:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
			select {
			case work <- b:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()
	for b := range ordered {
		<-b.done
		p.st.Lines += int64(len(b.lines.lines))
		p.st.Rejected += int64(len(b.rejects))
		if p.opt.OnReject != nil {
			for _, r := range b.rejects {
				p.opt.OnReject(r.line, r.reason, r.raw)
			}
		}
		// Once the writer's workers have copied this batch's values, its
		// buffers are reused.
		if err := p.pw.WriteRowsAsync(b.rows, func() {
			select {
			case free <- b:
			default:
			}
		}); err != nil {
			cancel()
			return err
		}
	}
	p.st.InputBytes = lr.bytes
	if err := <-readErr; err != nil {
		return fmt.Errorf("read after line %d: %w", p.st.Lines, err)
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > 1<<20 {
		b = b[:1<<20]
	}
	return append([]byte(nil), b...)
}
