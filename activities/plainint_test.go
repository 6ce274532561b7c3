package activities

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/feedpipe/feedpipe/internal/parquetconv"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// A pipeline's parquet_plain_integers reaches the Parquet it writes, from
// staged NDJSON records and from staged Parquet (Firehose's conversion)
// alike: the integer columns (_line, n) are PLAIN with it and
// delta-encoded without it (they count up).
func TestStagedSinkPlainIntegers(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "n", Type: schema.Int64}}}
	const lines = 3000
	var ndjson bytes.Buffer
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&ndjson, `{"_feed_id":"f","_line":%d,"n":%d}`+"\n", i, 2*i)
	}
	var staged bytes.Buffer // the same records as Firehose stages them in Parquet
	w, err := parquetconv.NewWriter(&staged, s, parquetconv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= lines; i++ {
		if err := w.Write("f", i, []schema.Value{{I: 2 * i}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, conv := range []string{pipeline.ConvertLocal, pipeline.ConvertFirehose} {
		body := ndjson.Bytes()
		if conv == pipeline.ConvertFirehose {
			body = staged.Bytes()
		}
		for _, plain := range []bool{false, true} {
			p := pipeline.Pipeline{Conversion: conv, Schema: s, ParquetPlainIntegers: plain}
			var out bytes.Buffer
			sink, err := newStagedSink(&out, p, ConvertInput{FeedID: "f", Lines: lines}, newBitset(lines))
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.add(context.Background(), "o1", body); err != nil {
				t.Fatal(err)
			}
			if rows, _, err := sink.close(); err != nil || rows != lines {
				t.Fatalf("%s: %d rows, %v", conv, rows, err)
			}
			f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
			if err != nil {
				t.Fatal(err)
			}
			want, not := format.DeltaBinaryPacked, format.Plain
			if plain {
				want, not = not, want
			}
			for _, cc := range f.Metadata().RowGroups[0].Columns {
				if name, encs := cc.MetaData.PathInSchema[0], cc.MetaData.Encoding; (name == schema.LineField || name == "n") &&
					(!slices.Contains(encs, want) || slices.Contains(encs, not)) {
					t.Errorf("%s, parquet_plain_integers %v: %s encodings %v, want %v and not %v", conv, plain, name, encs, want, not)
				}
			}
		}
	}
}
