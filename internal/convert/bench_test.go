package convert

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/schema"
)

func wideFeed(b *testing.B, size int64) []byte {
	b.Helper()
	var buf bytes.Buffer
	if _, err := feedgen.Write(&buf, feedgen.Options{Bytes: size, Wide: true, Seed: 42}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkParseLine is the line parser alone: one wide (26-field) line
// checked against its inferred schema and typed into leaf columns, by the
// fast parser and by the reference (encoding/json into a map) it falls
// back to.
func BenchmarkParseLine(b *testing.B) {
	feed := wideFeed(b, 1<<20)
	lines := bytes.Split(bytes.TrimSpace(feed), []byte("\n"))
	s := Infer(lines)
	l, err := schema.NewLayout(&s, schema.LayoutOptions{})
	if err != nil {
		b.Fatal(err)
	}
	per := int64(len(feed)) / int64(len(lines))
	b.Run("fast", func(b *testing.B) {
		p := schema.NewParser(l)
		rows := schema.NewRows(l)
		b.ReportAllocs()
		b.SetBytes(per)
		for i := 0; i < b.N; i++ {
			if err := p.AppendLine(rows, lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
			if rows.N == 1024 {
				rows.Reset()
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(per)
		for i := 0; i < b.N; i++ {
			if _, _, err := s.Parse(lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWriteRows is the Parquet writer alone: parsed rows of the wide
// feed, 2,048 at a time, encoded and zstd-compressed; MB/s is of the NDJSON
// those rows came from.
func BenchmarkWriteRows(b *testing.B) {
	feed := wideFeed(b, 8<<20)
	lines := bytes.Split(bytes.TrimSpace(feed), []byte("\n"))
	s := Infer(lines)
	w, err := parquetconv.NewWriter(io.Discard, s, parquetconv.Options{NoFeedColumns: true, RowGroupRows: 122880})
	if err != nil {
		b.Fatal(err)
	}
	p := schema.NewParser(w.Layout())
	var batches []*schema.Rows
	for i := 0; i < len(lines); i += 2048 {
		rows := schema.NewRows(w.Layout())
		for _, line := range lines[i:min(i+2048, len(lines))] {
			if err := p.AppendLine(rows, line); err != nil {
				b.Fatal(err)
			}
		}
		batches = append(batches, rows)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(feed)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, rows := range batches {
			if err := w.WriteRows(rows); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if _, err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConvert is the whole converter (read, parse on all cores, write
// zstd Parquet) on a 32 MB wide feed; MB/s is input throughput.
func BenchmarkConvert(b *testing.B) {
	feed := wideFeed(b, 32<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(feed)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Convert(context.Background(), bytes.NewReader(feed), io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInfer is schema inference on the wide feed's first 10,000
// lines (the default -infer): it runs before any line is converted, so
// its time is the conversion's start-up. MB/s is of the sample's NDJSON.
func BenchmarkInfer(b *testing.B) {
	feed := wideFeed(b, 16<<20)
	lines := bytes.Split(bytes.TrimSpace(feed), []byte("\n"))[:10000]
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		Infer(lines)
	}
}
