// Package convert turns an NDJSON stream (plain or gzip) into a Parquet
// stream in bounded memory: lines are parsed in parallel batches, typed by an
// explicit or inferred schema, and written in row groups flushed by size.
// Every input line ends as one row or one rejected line with its number and
// reason; bad input is never a panic.
package convert

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
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
	lr := &lineSource{br: bufio.NewReaderSize(in, 1<<20)}

	var sch schema.Schema
	var sample [][]byte
	if opt.Schema != nil {
		sch = *opt.Schema
	} else {
		sample, err = lr.take(opt.InferLines)
		if err != nil {
			return st, err
		}
		sch = Infer(sample)
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

// lineSource yields lines (without "\n" and a trailing "\r").
type lineSource struct {
	br    *bufio.Reader
	bytes int64
	err   error
	n     int64
}

// next returns the next line; tooLong lines come back truncated to 1 MiB.
// A line is copied into arena when it fits there (arena is then advanced),
// so that a batch's lines share a few large allocations.
func (l *lineSource) next(arena *[]byte) (line []byte, tooLong bool, ok bool) {
	var buf []byte
	for {
		chunk, err := l.br.ReadSlice('\n')
		l.bytes += int64(len(chunk))
		switch {
		case buf == nil && err == nil && arena != nil && len(chunk) <= cap(*arena)-len(*arena):
			start := len(*arena)
			*arena = append(*arena, chunk...)
			buf = (*arena)[start:len(*arena):len(*arena)]
		case len(buf) <= MaxLineBytes:
			buf = append(buf, chunk...)
		default:
			tooLong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			l.err = err
			return nil, false, false
		}
		if len(buf) == 0 && errors.Is(err, io.EOF) {
			return nil, false, false
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if l.n++; l.n == 1 {
			buf = bytes.TrimPrefix(buf, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
		}
		if len(buf) > MaxLineBytes {
			tooLong = true
			buf = buf[:1<<20]
		}
		return buf, tooLong, true
	}
}

func (l *lineSource) take(n int) ([][]byte, error) {
	var out [][]byte
	for len(out) < n {
		line, tooLong, ok := l.next(nil)
		if !ok {
			break
		}
		if tooLong {
			line = nil // marked by a nil entry: rejected in order later
		}
		out = append(out, line)
	}
	return out, l.err
}

type lineReject struct {
	line   int64
	reason string
	raw    []byte
}

type batch struct {
	first   int64
	lines   [][]byte
	long    []bool
	rows    *schema.Rows
	rejects []lineReject
	arenas  [][]byte // the lines' bytes
	done    chan struct{}
}

// reset readies a used batch for reuse, keeping its buffers.
func (b *batch) reset(first int64) {
	b.first, b.lines, b.long, b.done = first, b.lines[:0], b.long[:0], make(chan struct{})
	b.rejects = b.rejects[:0]
	if b.rows != nil {
		b.rows.Reset()
	}
	for i := range b.arenas {
		b.arenas[i] = b.arenas[i][:0]
	}
}

// arena returns a buffer with room for a typical line, from the batch's own.
func (b *batch) arena() *[]byte {
	for i := range b.arenas {
		if cap(b.arenas[i])-len(b.arenas[i]) >= 64<<10 {
			return &b.arenas[i]
		}
	}
	b.arenas = append(b.arenas, make([]byte, 0, 1<<20))
	return &b.arenas[len(b.arenas)-1]
}

type pipelineRun struct {
	layout *schema.Layout
	opt    Options
	pw     *parquetconv.Writer
	st     *Stats
}

// run parses batches of lines on opt.Workers goroutines, each into its
// batch's columns, and writes the batches in order. At most 2×Workers+1
// batches exist; each is reused once written, so memory stays bounded and
// allocation low.
func (p *pipelineRun) run(ctx context.Context, lr *lineSource, sample [][]byte) error {
	const batchLines = 2048
	work := make(chan *batch, p.opt.Workers)
	ordered := make(chan *batch, 2*p.opt.Workers)
	free := make(chan *batch, 2*p.opt.Workers+1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range p.opt.Workers {
		go func() {
			parser := schema.NewParser(p.layout)
			for b := range work {
				if b.rows == nil {
					b.rows = schema.NewRows(p.layout)
				}
				for i, line := range b.lines {
					n := b.first + int64(i)
					if b.long[i] || line == nil {
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
		pending := sample
		for {
			var b *batch
			select {
			case b = <-free:
				b.reset(next)
			default:
				b = &batch{first: next, done: make(chan struct{})}
			}
			for len(b.lines) < batchLines {
				if len(pending) > 0 {
					b.lines = append(b.lines, pending[0])
					b.long = append(b.long, pending[0] == nil)
					pending = pending[1:]
					continue
				}
				line, tooLong, ok := lr.next(b.arena())
				if !ok {
					break
				}
				b.lines = append(b.lines, line)
				b.long = append(b.long, tooLong)
			}
			if len(b.lines) == 0 {
				readErr <- lr.err
				return
			}
			next += int64(len(b.lines))
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
		p.st.Lines += int64(len(b.lines))
		p.st.Rejected += int64(len(b.rejects))
		if p.opt.OnReject != nil {
			for _, r := range b.rejects {
				p.opt.OnReject(r.line, r.reason, r.raw)
			}
		}
		if err := p.pw.WriteRows(b.rows); err != nil {
			cancel()
			return err
		}
		// The writer has copied this batch's values: reuse its buffers.
		select {
		case free <- b:
		default:
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
