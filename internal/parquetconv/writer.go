// Package parquetconv writes rows of a schema.Layout to Parquet, its
// columns shared out among worker goroutines. It encodes and lays out the
// pages itself (with parquet-go's encodings, schema and footer types): per
// value, parquet-go's column writers cost about as much as parsing. Files of feed
// records carry the feed id and line number of each row (columns _feed_id
// and _line) next to the declared columns, so a load can be reconciled with
// its source feed line by line.
package parquetconv

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// Options tune the output file.
type Options struct {
	// Compression is "zstd" (default), "snappy" or "none".
	Compression string
	// ZstdLevel is zstd's level, 1 to 22 (default DefaultZstdLevel).
	ZstdLevel int
	// RowGroupRows bounds a row group's rows. Default 1Mi rows.
	RowGroupRows int64
	// RowGroupBytes bounds a row group's size as the writer holds it until
	// the row group is flushed (pages encoded and compressed, each column's
	// open page, dictionaries), and so the writer's memory, whatever the
	// rows' width: it holds the open row group and, while that is written
	// to the file, the one before. Default 64 MiB.
	RowGroupBytes int64
	// NoFeedColumns leaves out _feed_id and _line (plain file conversion).
	NoFeedColumns bool
	// Extra adds an optional JSON column _extra for fields the schema does
	// not declare.
	Extra bool
	// Workers encode and compress columns in parallel (default GOMAXPROCS,
	// at most MaxWorkers).
	Workers int
	// PlainIntegers writes every page of an integer, date or timestamp
	// column PLAIN, for a reader that does not decode DELTA_BINARY_PACKED
	// pages; by default a page is delta-encoded when that is no larger than
	// PLAIN and at most a quarter larger than PLAIN compressed (see
	// intProbeRun and deltaSlack).
	PlainIntegers bool
}

// MaxWorkers caps the default Workers: each holds a zstd encoder (about
// 3 MiB with its history), so that memory does not grow with the core
// count; eight already outpace the parsers that feed them.
const MaxWorkers = 8

// ExtraField is the column that keeps undeclared fields as a JSON object.
const ExtraField = schema.ExtraField

// Writer writes rows of one schema to one Parquet file, column by column.
type Writer struct {
	file      *file
	cols      []*column
	scratch   scratch // of the caller's goroutine
	layout    *schema.Layout
	opt       Options
	pending   *schema.Rows // rows added one at a time by Write
	rows      int64
	groupRows int64   // rows in the open row group
	groups    [][]int // groups of leaves, balanced by size, run by crew
	crew      *crew   // nil with one group: the caller's goroutine writes
	// sealed takes each row group, once its chunks are sealed, to the
	// goroutine that writes it to the file (nil without a crew); written
	// is closed when that goroutine ends.
	sealed  chan *rowGroupOut
	written chan struct{}
	mu      sync.Mutex
	failure error // the first error of a worker or of the output
	// bytesPerRow is what a row took in the last row group, once one was
	// flushed; the open row group's size is measured next when it has
	// checkRows rows.
	bytesPerRow float64
	checkRows   int64
	closed      bool
}

// job is a part of a batch for one group of leaves: the values of its
// leaves, or (seal) the end of the row group: each column's last page
// flushed and its chunk sealed into seal; done is called after.
type job struct {
	leaves []schema.Leaf
	seal   *rowGroupOut
	done   func()
}

// rowGroupOut is a row group on its way to the file: its chunks, one per
// column, each set by the worker that seals it; ready is done once all are.
type rowGroupOut struct {
	chunks []*sealedChunk
	rows   int64
	ready  sync.WaitGroup
}

// NewWriter returns a Writer of s's columns to out. With more than one
// worker, out is written on a goroutine of the Writer's, until Close or
// Abort returns: what out counts must be read safely from another one.
func NewWriter(out io.Writer, s schema.Schema, opt Options) (*Writer, error) {
	codec, err := codecFor(opt.Compression, opt.ZstdLevel)
	if err != nil {
		return nil, err
	}
	if opt.RowGroupRows <= 0 {
		opt.RowGroupRows = 1 << 20
	}
	if opt.RowGroupBytes <= 0 {
		opt.RowGroupBytes = 64 << 20
	}
	if opt.Workers <= 0 {
		opt.Workers = min(runtime.GOMAXPROCS(0), MaxWorkers)
	}
	layout, err := schema.NewLayout(&s, schema.LayoutOptions{FeedColumns: !opt.NoFeedColumns, Extra: opt.Extra})
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	w := &Writer{layout: layout, opt: opt}
	if w.file, err = newFile(out, layout.Parquet, codec.CompressionCodec()); err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	pool := &blockPool{size: pageBytes(layout.Leaves)}
	for _, path := range layout.Parquet.Columns() {
		leaf, _ := layout.Parquet.Lookup(path...)
		// Lookup's Path is the leaf's name alone (parquet-go 0.32); a
		// chunk's path_in_schema is the whole path, which readers such as
		// fastparquet and parquet-java find the column by.
		leaf.Path = path
		c, err := newColumn(leaf, codec, pageBytes(layout.Leaves), dictionaryBytes(layout.Leaves), pool)
		if err != nil {
			return nil, fmt.Errorf("parquet: %w", err)
		}
		if opt.PlainIntegers {
			c.deltaInts = false
		}
		w.cols = append(w.cols, c)
	}
	return w, nil
}

// DictionaryMaxBytes bounds a dictionary-encoded column's dictionary in a
// row group: past it, the column's next pages are PLAIN. A schema of more
// than 32 leaf columns has smaller ones (see dictionaryBytes).
const DictionaryMaxBytes = 1 << 20

// Each leaf column holds its open page (up to the page size) and, if
// dictionary-encoded, its dictionary in memory. So that a wide schema's
// columns together hold at most about columnsBudget of each, a schema of
// many leaves gets smaller pages and dictionaries, down to a floor: a
// schema of 2,000 sparse columns took 1.5 GB with 256 KiB pages, 400 MB
// with 16 KiB ones.
const (
	columnsBudget = 32 << 20
	maxPageBytes  = 256 << 10 // parquet-go's default
	minPageBytes  = 16 << 10
	minDictBytes  = 64 << 10
)

// pageBytes is the page size of a schema of leaves leaf columns.
func pageBytes(leaves int) int {
	return min(maxPageBytes, max(minPageBytes, columnsBudget/max(1, leaves)))
}

// dictionaryBytes is the dictionary bound of a schema of leaves leaf
// columns.
func dictionaryBytes(leaves int) int64 {
	return int64(min(DictionaryMaxBytes, max(minDictBytes, columnsBudget/max(1, leaves))))
}

// Layout is the file's layout: rows for WriteRows are built for it.
func (w *Writer) Layout() *schema.Layout { return w.layout }

// pendingRows and pendingBytes bound what Write collects before writing
// it: rows, and bytes of strings (which Rows hold in 4 GiB per column at
// most).
const (
	pendingRows  = 1024
	pendingBytes = 64 << 20
)

// codecFor returns the codec named by name; level is zstd's (0: default).
func codecFor(name string, level int) (compress.Codec, error) {
	if level != 0 && name != "" && name != "zstd" {
		return nil, fmt.Errorf("a zstd level (%d) with compression %q: a level is for zstd only", level, name)
	}
	switch name {
	case "", "zstd":
		return newZstdCodec(level)
	case "snappy":
		return &snappy.Codec{}, nil
	case "none":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("compression %q: use zstd, snappy or none", name)
}

// Write adds one row.
func (w *Writer) Write(feedID string, line int64, vals []schema.Value) error {
	return w.WriteExtra(feedID, line, vals, "")
}

// WriteExtra adds one row with its undeclared fields as a JSON object in
// _extra ("" for none); only for a Writer made with Options.Extra.
func (w *Writer) WriteExtra(feedID string, line int64, vals []schema.Value, extra string) error {
	if w.pending == nil {
		w.pending = schema.NewRows(w.layout)
	}
	w.layout.AppendValues(w.pending, feedID, line, vals, extra)
	if w.pending.N >= pendingRows || w.pending.Bytes() >= pendingBytes {
		return w.flushPending()
	}
	return nil
}

func (w *Writer) flushPending() error {
	if w.pending == nil || w.pending.N == 0 {
		return nil
	}
	err := w.WriteRows(w.pending)
	w.pending.Reset()
	return err
}

// WriteRows writes r (rows of w.Layout()), starting a new row group
// whenever the open one reaches Options.RowGroupRows rows or
// Options.RowGroupBytes bytes. r may be reused once it returns.
func (w *Writer) WriteRows(r *schema.Rows) error {
	done := make(chan struct{})
	if err := w.WriteRowsAsync(r, func() { close(done) }); err != nil {
		return err
	}
	<-done
	return w.err()
}

// WriteRowsAsync is WriteRows that returns once r is queued: each worker
// writes its columns of r in the order the Rows were queued, and release is
// called (on some goroutine) when all have, or when the Writer is aborted;
// only then may r be reused. An error of a worker, or of out (row groups
// are written while the next one fills), is returned by a later call, or
// by Close: at the latest by the call that ends the row group after the
// one that failed.
func (w *Writer) WriteRowsAsync(r *schema.Rows, release func()) error {
	if w.closed {
		release()
		return errors.New("parquet: write after Close")
	}
	if err := w.err(); err != nil {
		release()
		return err
	}
	if w.groups == nil {
		w.start(r.Leaves)
	}
	var pending atomic.Int64 // jobs of r not done, plus one held here
	pending.Store(1)
	done := func() {
		if pending.Add(-1) == 0 {
			release()
		}
	}
	defer done()
	leaves := r.Leaves
	n := int64(r.N)
	for n > 0 {
		take := n
		if room := w.opt.RowGroupRows - w.groupRows; take > room {
			take = room
		}
		part, rest := leaves, leaves
		if take < n {
			part, rest = split(leaves, int(take))
		}
		w.rows += take
		w.groupRows += take
		full := w.groupRows >= w.opt.RowGroupRows
		pending.Add(int64(len(w.groups)))
		w.send(job{leaves: part, done: done})
		// What a row group holds in memory until it is flushed: its pages,
		// encoded and compressed, each column's open page and the
		// dictionaries. Measuring it waits for the workers, so it is
		// measured at checkpoints only (see nextCheck), and before a row
		// group's last pages are flushed, so that the size per row that the
		// checkpoints are set by is the one they measure.
		var size int64
		if full || w.groupRows >= w.checkRows {
			w.wait()
			size = w.groupSize()
			if !full {
				if size >= w.opt.RowGroupBytes {
					full = true
				} else {
					w.checkRows = w.nextCheck(size)
				}
			}
		}
		if full {
			// The workers flush and seal the chunks, and the row group
			// goes to the file while the next one is written.
			w.endRowGroup()
			w.bytesPerRow = float64(size) / float64(w.groupRows)
			w.groupRows = 0
			w.checkRows = w.nextCheck(0)
		}
		leaves = rest
		n -= take
	}
	return nil
}

// endRowGroup has the workers flush the last pages of the open row group
// and seal its chunks, and hands it to the goroutine that writes it, once
// that has written the row group before (so that the writer holds at most
// two row groups). With no crew, it writes the row group itself.
func (w *Writer) endRowGroup() {
	rg := &rowGroupOut{chunks: make([]*sealedChunk, len(w.cols)), rows: w.groupRows}
	rg.ready.Add(len(w.groups))
	w.send(job{seal: rg, done: rg.ready.Done})
	if w.sealed != nil {
		w.sealed <- rg
		return
	}
	w.writeRowGroup(rg)
}

// writeRowGroup writes rg to the file once its chunks are sealed, unless
// the Writer failed.
func (w *Writer) writeRowGroup(rg *rowGroupOut) {
	rg.ready.Wait()
	err := w.err()
	if err == nil {
		if err = w.file.writeRowGroup(rg.chunks, rg.rows); err != nil {
			w.fail(err)
		}
	}
	if err != nil {
		// The blocks go back to the pool (a chunk written already gave
		// its own back: again is a no-op).
		for _, c := range rg.chunks {
			if c != nil {
				c.chunk.reset()
			}
		}
	}
}

// groupSize is what the open row group holds (see Options.RowGroupBytes),
// once the workers are idle.
func (w *Writer) groupSize() int64 {
	var n int64
	for _, c := range w.cols {
		n += c.size()
	}
	return n
}

// nextCheck is the row count at which the open row group, size bytes now,
// is measured next. Once a row group has shown how large a row is: where
// the size estimated from that passes the next quarter of the bound.
// Before: when the rows have grown by a quarter. Either way a row group
// of like rows overshoots the bound by at most about a quarter.
func (w *Writer) nextCheck(size int64) int64 {
	if w.bytesPerRow == 0 {
		return w.groupRows + w.groupRows/4 + 1
	}
	quarter := float64(w.opt.RowGroupBytes) / 4
	target := (math.Floor(float64(size)/quarter) + 1) * quarter
	return max(w.groupRows+1, int64(target/w.bytesPerRow))
}

// groupsPerWorker is how many groups of leaves the workers share, per
// worker: enough that the largest group is a small part of the work.
const groupsPerWorker = 4

// start shares the leaves out in groups and starts the workers.
func (w *Writer) start(leaves []schema.Leaf) {
	if w.opt.Workers == 1 {
		w.groups = balance(leaves, 1)
		return // the caller's goroutine writes
	}
	w.groups = balance(leaves, groupsPerWorker*w.opt.Workers)
	w.crew = newCrew(len(w.groups), w.opt.Workers, func(g int, j job, sc *scratch) { w.run(w.groups[g], j, sc) })
	w.sealed, w.written = make(chan *rowGroupOut), make(chan struct{})
	go func() {
		defer close(w.written)
		for rg := range w.sealed {
			w.writeRowGroup(rg)
		}
	}()
}

// send hands j to every group (or runs it, with one worker).
func (w *Writer) send(j job) {
	if w.crew == nil {
		w.run(w.groups[0], j, &w.scratch)
		return
	}
	w.crew.send(j)
}

// wait returns once the workers have done every job sent so far.
func (w *Writer) wait() {
	if w.crew == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(len(w.groups))
	w.crew.send(job{done: wg.Done})
	wg.Wait()
}

// run writes j's values of the group's leaves, the columns being
// independent of each other.
func (w *Writer) run(group []int, j job, sc *scratch) {
	if j.done != nil {
		defer j.done()
	}
	if w.err() != nil {
		return
	}
	for _, i := range group {
		if j.leaves != nil {
			if err := w.cols[i].write(&j.leaves[i], sc); err != nil {
				w.fail(fmt.Errorf("parquet: write column %d: %w", i, err))
				return
			}
		}
		if j.seal != nil {
			if err := w.cols[i].flushPage(sc); err != nil {
				w.fail(fmt.Errorf("parquet: flush column %d: %w", i, err))
				return
			}
			c, err := w.cols[i].seal(sc)
			if err != nil {
				w.fail(fmt.Errorf("parquet: %w", err))
				return
			}
			j.seal.chunks[i] = c
		}
	}
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure == nil {
		w.failure = err
	}
}

func (w *Writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failure
}

// stop ends the workers once they have done their jobs, and the goroutine
// that writes row groups once it has written those handed to it.
func (w *Writer) stop() {
	if w.crew != nil {
		w.crew.stop()
		w.crew = nil
		close(w.sealed)
		<-w.written
		w.sealed = nil
	}
}

// balance shares the leaves out in at most n groups, largest first, each to
// the least loaded, by the size of their values in a first batch.
func balance(leaves []schema.Leaf, n int) [][]int {
	n = max(1, min(n, len(leaves)))
	cost := make([]int64, len(leaves))
	order := make([]int, len(leaves))
	for i := range leaves {
		order[i] = i
		cost[i] = int64(leaves[i].Levels())*16 + int64(len(leaves[i].Bytes))
	}
	sort.SliceStable(order, func(a, b int) bool { return cost[order[a]] > cost[order[b]] })
	groups := make([][]int, n)
	load := make([]int64, n)
	for _, i := range order {
		g := 0
		for k := range load {
			if load[k] < load[g] {
				g = k
			}
		}
		groups[g] = append(groups[g], i)
		load[g] += cost[i]
	}
	return groups
}

// split returns the first rows rows of leaves and the rest.
func split(leaves []schema.Leaf, rows int) (head, tail []schema.Leaf) {
	head, tail = make([]schema.Leaf, len(leaves)), make([]schema.Leaf, len(leaves))
	for i := range leaves {
		head[i], tail[i] = leaves[i].Split(rows)
	}
	return head, tail
}

// Close writes what is buffered and the footer, and returns the row count.
func (w *Writer) Close() (int64, error) {
	if w.closed {
		return 0, errors.New("parquet: writer already closed")
	}
	err := w.flushPending()
	if err == nil && w.groupRows > 0 {
		// The last row group, flushed and sealed by the workers in
		// parallel as every row group.
		w.endRowGroup()
	}
	w.stop()
	w.closed = true
	if err != nil {
		return 0, err
	}
	if err := w.err(); err != nil {
		return 0, err
	}
	if err := w.file.close(); err != nil {
		return 0, err
	}
	return w.rows, nil
}

// Abort stops the workers without finishing the file: for a conversion
// that failed. It does nothing after Close.
func (w *Writer) Abort() {
	if !w.closed {
		w.fail(errors.New("parquet: writer aborted"))
		w.stop()
		w.closed = true
	}
}

// RowCount reads the number of rows from a Parquet file's footer.
func RowCount(r io.ReaderAt, size int64) (int64, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("parquet: open footer: %w", err)
	}
	return f.NumRows(), nil
}
