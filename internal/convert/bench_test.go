package convert

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/feedpipe/feedpipe/internal/feedgen"
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
// checked against its inferred schema and typed, by the fast parser and by
// the reference (encoding/json into a map) it falls back to.
func BenchmarkParseLine(b *testing.B) {
	feed := wideFeed(b, 1<<20)
	lines := bytes.Split(bytes.TrimSpace(feed), []byte("\n"))
	s := Infer(lines)
	per := int64(len(feed)) / int64(len(lines))
	b.Run("fast", func(b *testing.B) {
		p := schema.NewParser(&s)
		vals := make([]schema.Value, len(s.Columns))
		b.ReportAllocs()
		b.SetBytes(per)
		for i := 0; i < b.N; i++ {
			if _, err := p.Parse(lines[i%len(lines)], vals); err != nil {
				b.Fatal(err)
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
