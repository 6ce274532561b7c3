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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

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

	p := pipelineRun{sch: &sch, fp: schema.NewParser(&sch), opt: opt, pw: pw, st: &st}
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

type parsed struct {
	vals   []schema.Value
	extra  string
	reject string
	raw    []byte
}

type batch struct {
	first  int64
	lines  [][]byte
	long   []bool
	out    []parsed
	slab   []schema.Value // the rows' values, len(lines)×columns
	arenas [][]byte       // the lines' bytes
	done   chan struct{}
}

// reset readies a used batch for reuse, keeping its buffers.
func (b *batch) reset(first int64) {
	b.first, b.lines, b.long, b.done = first, b.lines[:0], b.long[:0], make(chan struct{})
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
	sch *schema.Schema
	fp  *schema.Parser
	opt Options
	pw  *parquetconv.Writer
	st  *Stats
}

// run parses batches of lines on opt.Workers goroutines and writes them in
// order. At most 2×Workers+1 batches exist; each is reused once written, so
// memory stays bounded and allocation low.
func (p *pipelineRun) run(ctx context.Context, lr *lineSource, sample [][]byte) error {
	const batchLines = 2048
	work := make(chan *batch, p.opt.Workers)
	ordered := make(chan *batch, 2*p.opt.Workers)
	free := make(chan *batch, 2*p.opt.Workers+1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ncol := len(p.sch.Columns)
	for range p.opt.Workers {
		go func() {
			for b := range work {
				if cap(b.out) < len(b.lines) {
					b.out = make([]parsed, len(b.lines))
				}
				b.out = b.out[:len(b.lines)]
				if cap(b.slab) < len(b.lines)*ncol {
					b.slab = make([]schema.Value, len(b.lines)*ncol)
				}
				for i, line := range b.lines {
					b.out[i] = p.parse(line, b.long[i], b.slab[i*ncol:(i+1)*ncol:(i+1)*ncol])
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
		for i, r := range b.out {
			p.st.Lines++
			n := b.first + int64(i)
			if r.reject != "" {
				p.st.Rejected++
				if p.opt.OnReject != nil {
					p.opt.OnReject(n, r.reject, r.raw)
				}
				continue
			}
			if err := p.pw.WriteExtra("", n, r.vals, r.extra); err != nil {
				cancel()
				return err
			}
		}
		// The writer has copied this batch's values: reuse its buffers.
		clear(b.out)
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

func (p *pipelineRun) parse(line []byte, tooLong bool, vals []schema.Value) parsed {
	if tooLong || line == nil {
		return parsed{reject: fmt.Sprintf("line longer than %d bytes", MaxLineBytes), raw: truncate(line)}
	}
	if p.opt.Unknown != UnknownExtra {
		vals, err := p.fp.Parse(line, vals)
		if err != nil {
			return parsed{reject: err.Error(), raw: truncate(line)}
		}
		return parsed{vals: vals}
	}
	vals, fields, err := p.sch.Parse(line)
	if err != nil {
		return parsed{reject: err.Error(), raw: truncate(line)}
	}
	out := parsed{vals: vals}
	out.extra = extraJSON(fields, p.sch)
	return out
}

func extraJSON(fields map[string]json.RawMessage, s *schema.Schema) string {
	known := make(map[string]bool, len(s.Columns))
	for _, c := range s.Columns {
		known[c.Name] = true
	}
	extra := map[string]json.RawMessage{}
	for k, v := range fields {
		if !known[k] {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return ""
	}
	b, _ := json.Marshal(extra)
	return string(b)
}

func truncate(b []byte) []byte {
	if len(b) > 1<<20 {
		b = b[:1<<20]
	}
	return append([]byte(nil), b...)
}

// Infer derives a schema from sample lines: each top-level field becomes a
// nullable column, typed by the values seen and widened on conflict:
// bool + number → string; int64 + float64 → float64; a number or bool and a
// string → string; a timestamp string and another string → string; objects
// and arrays → json (their JSON text); a field seen only as null → string.
// A string column with at most one distinct value per 8 sampled lines (and
// at most 4,096) is dictionary-encoded.
// Columns keep the order fields first appear in; lines that are not JSON
// objects are skipped.
func Infer(lines [][]byte) schema.Schema {
	types := map[string]schema.Type{}
	distinct := map[string]map[string]bool{} // string values seen per field, up to a cap
	const maxDistinct = 4096
	var order []string
	add := func(k string, raw []byte) {
		if k == schema.FeedIDField || k == schema.LineField {
			return
		}
		t := valueType(raw)
		if t == schema.String || t == schema.Timestamp {
			d := distinct[k]
			if d == nil {
				d = map[string]bool{}
				distinct[k] = d
			}
			if len(d) <= maxDistinct {
				d[string(raw)] = true
			}
		}
		old, seen := types[k]
		if !seen {
			order = append(order, k)
			types[k] = t
			return
		}
		types[k] = widen(old, t)
	}
	for _, line := range lines {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		if schema.Fields(line, func(string, []byte) {}) {
			schema.Fields(line, add)
			continue
		}
		// An unusual line (escaped keys, …): decode it, keeping key order.
		dec := json.NewDecoder(bytes.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			continue
		}
		type field struct {
			k   string
			raw json.RawMessage
		}
		var fields []field
		ok := true
		for dec.More() {
			tok, err := dec.Token()
			k, isKey := tok.(string)
			var raw json.RawMessage
			if err != nil || !isKey || dec.Decode(&raw) != nil {
				ok = false
				break
			}
			fields = append(fields, field{k, raw})
		}
		if !ok {
			continue
		}
		for _, f := range fields {
			add(f.k, f.raw)
		}
	}
	s := schema.Schema{Unknown: schema.UnknownDrop}
	for _, k := range order {
		t := types[k]
		if t == "" {
			t = schema.String
		}
		// A column widened to string takes any scalar as its JSON text. A
		// string column with few distinct values in the sample is
		// dictionary-encoded.
		dict := t == schema.String && len(distinct[k]) <= maxDistinct && len(distinct[k])*8 <= len(lines)
		s.Columns = append(s.Columns, schema.Column{Name: k, Type: t, Nullable: true, AnyScalar: t == schema.String, Dictionary: dict})
	}
	return s
}

// valueType is the type of one JSON value; "" for null.
func valueType(raw json.RawMessage) schema.Type {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case 'n':
		return ""
	case 't', 'f':
		return schema.Bool
	case '{', '[':
		return schema.JSON
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return schema.Timestamp
			}
		}
		return schema.String
	}
	if bytes.ContainsAny(raw, ".eE") {
		return schema.Float64
	}
	if strings.HasPrefix(string(raw), "-") && len(raw) > 20 || len(raw) > 19 {
		return schema.Float64 // beyond int64
	}
	return schema.Int64
}

func widen(a, b schema.Type) schema.Type {
	switch {
	case a == b:
		return a
	case a == "":
		return b
	case b == "":
		return a
	case (a == schema.Int64 && b == schema.Float64) || (a == schema.Float64 && b == schema.Int64):
		return schema.Float64
	case a == schema.JSON || b == schema.JSON:
		return schema.JSON
	}
	return schema.String
}
