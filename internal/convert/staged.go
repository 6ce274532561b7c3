package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"unicode/utf8"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// StagedOptions say how to convert one feed's staged records: the feed's
// lines as PutToKinesis sent them, each a JSON object whose first fields
// are _feed_id and _line, in NDJSON staging objects.
type StagedOptions struct {
	// Schema is the pipeline's schema; nothing is inferred. Its Unknown
	// policy applies to the fields it does not declare.
	Schema schema.Schema
	// FeedID is the feed converted; records of other feeds are skipped.
	FeedID string
	// Lines is the feed's line count: its records' line numbers run
	// 1..Lines, and a record of the feed with any other is an error.
	Lines int64
	// Compression: zstd (default), snappy or none.
	Compression string
	// RowGroupBytes bounds each row group in memory (default 64 MiB).
	RowGroupBytes int64
	// RowGroupRows bounds each row group's rows (default 1Mi).
	RowGroupRows int64
	// PlainIntegers writes integer, date and timestamp pages PLAIN only
	// (see parquetconv.Options.PlainIntegers).
	PlainIntegers bool
	// Workers parse records in parallel (default GOMAXPROCS).
	Workers int
	// Seen, when set, is the set of line numbers already written (bit
	// line%64 of word line/64), by earlier files of the same feed: those
	// lines count as duplicates, and the lines this file writes are added to
	// it. It must hold Lines/64+1 words. Nil: a set of its own.
	Seen []uint64
}

// StagedStats count what a staged conversion did.
type StagedStats struct {
	Records    int64 // records of this feed read (with duplicates)
	Rows       int64 // rows written (distinct line numbers)
	Duplicates int64 // records whose line number was already written
	Others     int64 // records of other feeds skipped
}

// Staged writes one feed's Parquet file (with the _feed_id and _line
// columns, the file schema of parquetconv.NewWriter with default options)
// from its staged objects, in bounded memory: one row per distinct line
// number, the first record of each line number read winning (Kinesis and
// Firehose deliver at least once, so a record may come more than once).
// Records that start as PutToKinesis writes them are typed by the fast
// parser on Workers goroutines; any other goes to schema.ParseRecord, with
// the same values. The rows' order in the file is not the feed's.
//
// Add, Close and Abort are called from one goroutine.
type Staged struct {
	opt    StagedOptions
	pw     *parquetconv.Writer
	pl     *pipeline // nil once finished
	seen   []uint64  // line numbers added, a bit each
	cur    *batch    // the batch being filled, not yet sent
	lines  int       // the most records a batch holds (linesFor)
	st     StagedStats
	err    error // the error that ended the conversion
	closed bool
}

// stagedRec is where a record of a batch comes from and what its start
// says.
type stagedRec struct {
	name int   // its object, in batch.names
	n    int   // its number in the object (1-based line of the body)
	line int64 // its line number in the feed
	at   int   // where its fields go on after _line (AppendRecord's at), or 0
}

// NewStaged returns a Staged writing the Parquet file of opt.FeedID to w.
func NewStaged(w io.Writer, opt StagedOptions) (*Staged, error) {
	if opt.FeedID == "" {
		return nil, errors.New("staged: no feed id")
	}
	if opt.Lines < 0 {
		return nil, fmt.Errorf("staged: line count %d < 0", opt.Lines)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	pw, err := parquetconv.NewWriter(w, opt.Schema, parquetconv.Options{Compression: opt.Compression,
		RowGroupBytes: opt.RowGroupBytes, RowGroupRows: opt.RowGroupRows, PlainIntegers: opt.PlainIntegers})
	if err != nil {
		return nil, fmt.Errorf("staged: %w", err)
	}
	seen := opt.Seen
	if seen == nil {
		seen = make([]uint64, opt.Lines/64+1)
	} else if int64(len(seen)) != opt.Lines/64+1 {
		pw.Abort()
		return nil, fmt.Errorf("staged: Seen holds %d words, want %d for %d lines", len(seen), opt.Lines/64+1, opt.Lines)
	}
	s := &Staged{opt: opt, pw: pw, seen: seen}
	s.pl = startPipeline(pw, opt.Workers, s.parse, func(b *batch) error { return b.err })
	s.lines = linesFor(pw.Layout().Leaves)
	return s, nil
}

// Add converts one staged object's body (NDJSON records; blank lines are
// skipped); name is used in errors only. Its records are parsed and written
// in the background: a bad record may be reported by a later Add, or by
// Close. An error ends the conversion: later calls return it. body is not
// kept once Add returns.
func (s *Staged) Add(ctx context.Context, name string, body []byte) error {
	switch {
	case s.err != nil:
		return s.err
	case s.closed:
		return errors.New("staged: Add after Close")
	}
	for n := 1; len(body) > 0; n++ {
		rec := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			rec, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(rec)) == 0 {
			continue
		}
		line, at, ours, err := s.classify(rec)
		if err != nil {
			return s.fail(fmt.Errorf("staged %s record %d: %w", name, n, err))
		}
		if !ours {
			s.st.Others++
			continue
		}
		if line < 1 || line > s.opt.Lines {
			return s.fail(fmt.Errorf("staged %s record %d: line %d outside 1..%d", name, n, line, s.opt.Lines))
		}
		s.st.Records++
		if s.seen[line/64]&(1<<(line%64)) != 0 {
			s.st.Duplicates++
			continue
		}
		s.seen[line/64] |= 1 << (line % 64)
		if err := s.queue(ctx, name, rec, stagedRec{n: n, line: line, at: at}); err != nil {
			return s.fail(err)
		}
	}
	return nil
}

// classify reads whose record rec is: its feed's, with its line number
// and, when it starts as PutToKinesis writes records, where its other
// fields start; or another feed's.
func (s *Staged) classify(rec []byte) (line int64, at int, ours bool, err error) {
	if feed, line, at, ok := cutRecordStart(rec); ok {
		return line, at, string(feed) == s.opt.FeedID, nil
	}
	feed, line, err := schema.RecordFeed(rec)
	if err != nil {
		return 0, 0, false, err
	}
	return line, 0, feed == s.opt.FeedID, nil
}

// cutRecordStart reads the start of a record as PutToKinesis writes it,
// {"_feed_id":"<feed>","_line":<line> then ',' or '}', with a feed id
// that needs no escape (so its bytes are its value) and a line number in
// canonical form; at is the index of the ',' or '}'.
func cutRecordStart(rec []byte) (feed []byte, line int64, at int, ok bool) {
	const head, mid = `{"` + schema.FeedIDField + `":"`, `","` + schema.LineField + `":`
	rest, ok := bytes.CutPrefix(rec, []byte(head))
	if !ok {
		return nil, 0, 0, false
	}
	q := bytes.IndexByte(rest, '"')
	if q < 0 || !bytes.HasPrefix(rest[q:], []byte(mid)) {
		return nil, 0, 0, false
	}
	feed = rest[:q]
	for _, c := range feed {
		if c == '\\' || c < 0x20 {
			return nil, 0, 0, false
		}
	}
	if !utf8.Valid(feed) {
		return nil, 0, 0, false
	}
	i := len(head) + q + len(mid)
	at = i
	for at < len(rec) && rec[at] >= '0' && rec[at] <= '9' {
		line = line*10 + int64(rec[at]-'0')
		at++
	}
	if at == i || at-i > 18 || rec[i] == '0' || at == len(rec) || rec[at] != ',' && rec[at] != '}' {
		return nil, 0, 0, false
	}
	return feed, line, at, true
}

// queue copies a record into the batch being filled, sending that batch
// once full.
func (s *Staged) queue(ctx context.Context, name string, rec []byte, r stagedRec) error {
	b := s.cur
	if b != nil && (len(b.lines.lines) >= s.lines || len(b.block)+len(rec) > cap(b.block)) {
		s.cur = nil
		if err := s.pl.send(ctx, b); err != nil {
			return err
		}
		b = nil
	}
	if b == nil {
		var err error
		if b, err = s.pl.next(ctx); err != nil {
			return err
		}
		if size := max(blockBytes, len(rec)); cap(b.block) < size {
			b.block = make([]byte, 0, size)
		}
		s.cur = b
	}
	if len(b.names) == 0 || b.names[len(b.names)-1] != name {
		b.names = append(b.names, name)
	}
	r.name = len(b.names) - 1
	start := len(b.block)
	b.block = append(b.block, rec...)
	b.lines.lines = append(b.lines.lines, b.block[start:len(b.block):len(b.block)])
	b.recs = append(b.recs, r)
	return nil
}

// parse types a batch's records into its rows (on a worker), stopping at
// the first bad one.
func (s *Staged) parse(p *schema.Parser, b *batch) {
	for i, rec := range b.lines.lines {
		r := b.recs[i]
		if b.full() && !b.spill() {
			return
		}
		if err := p.AppendRecord(b.rows, rec, s.opt.FeedID, r.line, r.at); err != nil {
			b.err = fmt.Errorf("staged %s record %d: %w", b.names[r.name], r.n, err)
			return
		}
	}
}

// fail ends the conversion after err. The records sent before come first
// in the input, so an error of theirs is the one kept.
func (s *Staged) fail(err error) error {
	if s.pl != nil {
		if perr := s.pl.finish(); perr != nil {
			err = perr
		}
		s.pl = nil
	}
	s.pw.Abort()
	s.err = err
	return err
}

// Close writes the records added so far and finishes the file.
func (s *Staged) Close() (StagedStats, error) {
	switch {
	case s.err != nil:
		return s.st, s.err
	case s.closed:
		return s.st, errors.New("staged: already closed")
	}
	if b := s.cur; b != nil {
		s.cur = nil
		if err := s.pl.send(context.Background(), b); err != nil {
			return s.st, s.fail(err)
		}
	}
	err := s.pl.finish()
	s.pl = nil
	if err != nil {
		return s.st, s.fail(err)
	}
	s.closed = true
	rows, err := s.pw.Close()
	if err != nil {
		s.err = fmt.Errorf("staged: %w", err)
		return s.st, s.err
	}
	s.st.Rows = rows
	if rows != s.st.Records-s.st.Duplicates {
		s.err = fmt.Errorf("staged: wrote %d rows of %d distinct records", rows, s.st.Records-s.st.Duplicates)
		return s.st, s.err
	}
	return s.st, nil
}

// Abort stops the workers and the writer without finishing the file: for
// a conversion that failed. It does nothing after Close.
func (s *Staged) Abort() {
	if s.pl != nil {
		s.pl.abort()
		s.pl = nil
	}
	s.pw.Abort()
	s.closed = true
}
