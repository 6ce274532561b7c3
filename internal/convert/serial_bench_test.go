package convert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/feedpipe/feedpipe/internal/schema"
)

// The converter's serial parts: one goroutine reads the input and cuts it
// into lines, and one hands the parsed batches, in input order, to the
// Parquet writer's workers. Parsing and column writing run on every core;
// these do not, so each must run well above what the parallel parts reach
// together, or more cores stop helping. Run them on one core:
//
//	go test -run x -bench Serial -cpu 1 ./internal/convert/
//
// MB/s is of NDJSON input (the wide feed, 64 MB).
const serialFeedBytes = 64 << 20

// BenchmarkSerialRead reads the feed from a file (in the page cache) in the
// converter's blocks, without cutting lines: what the reading goroutine
// pays for I/O.
func BenchmarkSerialRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "feed.ndjson")
	if err := os.WriteFile(path, wideFeed(b, serialFeedBytes), 0o644); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, blockBytes)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := io.ReadFull(f, block); err != nil {
				break
			}
		}
		f.Close()
	}
}

// BenchmarkSerialCutLines is the reading goroutine's whole loop on input in
// memory: blocks filled and cut into lines (lineSource.fill), as Convert
// does before handing them to the parsers; with batches of blockLines
// lines, and of 6 (linesFor a schema of 10,000 leaf columns).
func BenchmarkSerialCutLines(b *testing.B) {
	feed := wideFeed(b, serialFeedBytes)
	for _, maxLines := range []int{blockLines, linesFor(schema.MaxLeafColumns)} {
		b.Run(fmt.Sprintf("lines=%d", maxLines), func(b *testing.B) {
			var ls lines
			b.ReportAllocs()
			b.SetBytes(int64(len(feed)))
			for b.Loop() {
				src := lineSource{r: bytes.NewReader(feed), maxLines: maxLines}
				n := 0
				for {
					src.fill(&ls)
					if len(ls.lines) == 0 {
						break
					}
					n += len(ls.lines)
					src.carry = append([]byte(nil), src.carry...) // ls's block is reused below
				}
				if n == 0 {
					b.Fatal("no lines")
				}
			}
		})
	}
}

// nullWriter takes rows and releases them at once: the pipeline's ordering
// and hand-off without any Parquet encoding.
type nullWriter struct{ layout *schema.Layout }

func (w nullWriter) Layout() *schema.Layout { return w.layout }
func (w nullWriter) WriteRowsAsync(_ *schema.Rows, release func()) error {
	release()
	return nil
}

// BenchmarkSerialHandOff is the pipeline's in-order hand-off: batches of
// the feed's lines sent to the workers, waited for in input order and
// handed to the writer, with parsing and writing taken out (parse does
// nothing, the writer releases at once). What is left is the channel and
// ordering cost per batch, counted against the input bytes each batch
// holds.
func BenchmarkSerialHandOff(b *testing.B) {
	feed := wideFeed(b, serialFeedBytes)
	s := Infer(bytes.Split(feed[:1<<20], []byte("\n"))[:100])
	l, err := schema.NewLayout(&s, schema.LayoutOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var blocks []lines
	src := lineSource{r: bytes.NewReader(feed)}
	for {
		var ls lines
		src.fill(&ls)
		if len(ls.lines) == 0 {
			break
		}
		blocks = append(blocks, ls)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(feed)))
	b.ResetTimer()
	for range b.N {
		handed := 0
		pl := startPipeline(nullWriter{l}, 1, func(*schema.Parser, *batch) {}, func(*batch) error { handed++; return nil })
		for i := range blocks {
			bt, err := pl.next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			bt.lines = blocks[i]
			if err := pl.send(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		if err := pl.finish(); err != nil {
			b.Fatal(err)
		}
		if handed != len(blocks) {
			b.Fatalf("%d batches handed on, want %d", handed, len(blocks))
		}
	}
}
