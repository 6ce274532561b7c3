package convert

import (
	"bytes"
	"errors"
	"io"
)

// Input is read in blocks of blockBytes, cut into at most blockLines lines
// each; a batch's lines point into its block, so no line is copied. Small
// blocks keep a batch's values in the CPU caches between parsing and
// writing (256 KiB measured faster than 2 MiB).
const (
	blockBytes = 256 << 10
	blockLines = 4096
	// batchValues bounds a batch's parsed values (at most 10 bytes each,
	// levels included, 640 KiB, besides the bytes of its strings)
	// whatever the schema's width: a batch of a wide, sparse schema has
	// fewer lines (see linesFor).
	batchValues = 64 << 10
)

// linesFor is how many lines a batch of a schema of leaves leaf columns
// holds at most: blockLines, fewer when each line's leaves would pass
// batchValues.
func linesFor(leaves int) int {
	return max(1, min(blockLines, batchValues/max(1, leaves)))
}

// lines is a block of input and the lines in it.
type lines struct {
	block []byte   // the input the lines point into
	lines [][]byte // without "\n" and a trailing "\r"
	long  []int64  // for a line longer than MaxLineBytes (kept cut to 1 MiB, rejected), its length; else 0
}

func (ls *lines) reset() {
	clear(ls.lines) // no stale line keeps a long line's buffer alive
	ls.block, ls.lines, ls.long = ls.block[:0], ls.lines[:0], ls.long[:0]
}

// sampleBlocks is the lines read before the schema is known, kept in the blocks
// they were read in: each block is then converted as batches of its own,
// so that the sample is no larger a batch than any other.
type sampleBlocks struct {
	all   lines   // every line, in order
	parts []lines // the blocks
	bytes int64   // the input they hold
}

// next returns the sample's next at most n lines, and forgets them.
func (s *sampleBlocks) next(n int) (lines, bool) {
	if len(s.parts) == 0 {
		return lines{}, false
	}
	p := &s.parts[0]
	k := min(n, len(p.lines))
	// No block: the batch's next fill reads into a block of its own, not
	// into one another batch may hold.
	part := lines{lines: p.lines[:k:k], long: p.long[:k:k]}
	p.lines, p.long = p.lines[k:], p.long[k:]
	if len(p.lines) == 0 {
		s.parts[0] = lines{}
		s.parts = s.parts[1:]
	}
	return part, true
}

// lineSource cuts an input stream into lines.
type lineSource struct {
	r     io.Reader
	carry []byte // the start of a line the previous block cut off
	bytes int64  // bytes read
	n     int64  // lines returned
	eof   bool
	err   error  // a read error other than io.EOF
	chunk []byte // read buffer of long lines
	// maxLines caps the lines of a fill (default blockLines).
	maxLines int
}

// fill reads the next lines into ls (empty); it adds none at the end of the
// input or after a read error (then in l.err).
func (l *lineSource) fill(ls *lines) {
	ls.reset()
	if cap(ls.block) < blockBytes {
		ls.block = make([]byte, 0, blockBytes)
	}
	block := append(ls.block, l.carry...) // carry points into the previous batch's block, not yet reused
	l.carry = nil
	fill := l.fillBytes(cap(block))
	for len(block) < fill && !l.eof {
		n, err := l.r.Read(block[len(block):fill])
		block = block[:len(block)+n]
		l.bytes += int64(n)
		if err != nil {
			l.eof = true
			if !errors.Is(err, io.EOF) {
				l.err = err
			}
		}
	}
	ls.block = block
	start := 0
	maxLines := blockLines
	if l.maxLines > 0 {
		maxLines = l.maxLines
	}
	for len(ls.lines) < maxLines {
		i := bytes.IndexByte(block[start:], '\n')
		if i < 0 {
			break
		}
		l.add(ls, block[start:start+i], 0)
		start += i + 1
	}
	rest := block[start:]
	switch {
	case l.err != nil:
	case len(ls.lines) >= maxLines || (len(ls.lines) > 0 && !l.eof):
		l.carry = rest
	case l.eof:
		if len(rest) > 0 {
			l.add(ls, rest, 0) // the last line, without "\n"
		}
	default:
		// A whole block and no newline: a long line; read on to its end.
		l.longLine(ls, rest)
	}
}

// fillBytes is how much of a block of capacity c a fill reads: all of it,
// unless a fill takes fewer than blockLines lines (maxLines, for a wide
// schema); then about twice what that many lines have taken on average,
// so that the lines left over, copied to the next batch's block, stay few
// (reading whole blocks for 6 lines a batch copied each block's rest
// again and again).
func (l *lineSource) fillBytes(c int) int {
	if l.maxLines <= 0 || l.maxLines >= blockLines || l.n == 0 {
		return c
	}
	avg := l.bytes / l.n
	return int(min(int64(c), max(4<<10, 2*avg*int64(l.maxLines))))
}

// longLine reads the rest of a line that starts with head and does not fit
// a block. Past MaxLineBytes it stops keeping the line's bytes.
func (l *lineSource) longLine(ls *lines, head []byte) {
	buf := append([]byte(nil), head...)
	total := len(head)
	var last byte // the line's last byte, to leave out a "\r" before "\n"
	if len(head) > 0 {
		last = head[len(head)-1]
	}
	if l.chunk == nil {
		l.chunk = make([]byte, 1<<20)
	}
	chunk := l.chunk
	for {
		// Read as a fill would: what is left after the line is the next
		// fill's carry, copied again by each fill of few lines.
		n, err := l.r.Read(chunk[:l.fillBytes(len(chunk))])
		l.bytes += int64(n)
		part := chunk[:n]
		nl := bytes.IndexByte(part, '\n')
		if nl >= 0 {
			part = part[:nl]
		}
		total += len(part)
		if len(part) > 0 {
			last = part[len(part)-1]
		}
		if len(buf) <= MaxLineBytes {
			buf = append(buf, part[:min(len(part), MaxLineBytes+1-len(buf))]...)
		}
		if nl >= 0 {
			l.carry = append([]byte(nil), chunk[nl+1:n]...)
			break
		}
		if err != nil {
			l.eof = true
			if !errors.Is(err, io.EOF) {
				l.err = err
				return
			}
			break
		}
	}
	if last == '\r' {
		total--
	}
	var long int64
	if total > MaxLineBytes {
		long = int64(total)
		buf = cutRaw(buf)
	}
	l.add(ls, buf, long)
}

func (l *lineSource) add(ls *lines, line []byte, long int64) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if l.n++; l.n == 1 {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	}
	ls.lines = append(ls.lines, line)
	ls.long = append(ls.long, long)
}

// take reads at least n more lines into s (fewer at the end of the input,
// or once s holds maxBytes of input, if maxBytes > 0), each block in a
// buffer of its own, and returns how many it read.
func (l *lineSource) take(s *sampleBlocks, n int, maxBytes int64) (int, error) {
	read := 0
	for read < n && (maxBytes <= 0 || s.bytes < maxBytes) {
		var part lines
		l.fill(&part)
		if len(part.lines) == 0 {
			break
		}
		read += len(part.lines)
		s.bytes += int64(len(part.block))
		for _, line := range part.lines {
			if len(line) > len(part.block) { // a long line, in a buffer of its own
				s.bytes += int64(len(line))
			}
		}
		s.all.lines = append(s.all.lines, part.lines...)
		s.all.long = append(s.all.long, part.long...)
		s.parts = append(s.parts, part)
	}
	return read, l.err
}
