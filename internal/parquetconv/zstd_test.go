package parquetconv

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/feedpipe/feedpipe/internal/pyarrowtest"
	"github.com/feedpipe/feedpipe/internal/schema"
)

// chunkSizes is what pyarrow reads of each column's chunks: encodings and
// compressed and uncompressed bytes, summed over the row groups.
type chunkSizes struct {
	Encodings    []string `json:"encodings"`
	Compressed   int64    `json:"compressed"`
	Uncompressed int64    `json:"uncompressed"`
}

const chunkScript = `
import json, sys, pyarrow.parquet as pq
m = pq.ParquetFile(sys.argv[1]).metadata
out = {}
for g in range(m.num_row_groups):
    rg = m.row_group(g)
    for c in range(rg.num_columns):
        col = rg.column(c)
        e = out.setdefault(col.path_in_schema, {"encodings": [], "compressed": 0, "uncompressed": 0})
        e["encodings"] = sorted(set(e["encodings"]) | set(col.encodings))
        e["compressed"] += col.total_compressed_size
        e["uncompressed"] += col.total_uncompressed_size
print(json.dumps(out))
`

func chunks(t *testing.T, data []byte) map[string]chunkSizes {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chunks.parquet")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var out map[string]chunkSizes
	if err := json.Unmarshal(pyarrowtest.Run(t, chunkScript, path), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeLines writes NDJSON lines of s with opt, and returns the file.
func writeLines(t *testing.T, s schema.Schema, opt Options, lines []string) []byte {
	t.Helper()
	var out bytes.Buffer
	opt.NoFeedColumns = true
	w, err := NewWriter(&out, s, opt)
	if err != nil {
		t.Fatal(err)
	}
	p := schema.NewParser(w.Layout())
	rows := schema.NewRows(w.Layout())
	for _, l := range lines {
		if err := p.AppendLine(rows, []byte(l)); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if rows.N == 1000 {
			if err := w.WriteRows(rows); err != nil {
				t.Fatal(err)
			}
			rows.Reset()
		}
	}
	if err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Close(); err != nil || n != int64(len(lines)) {
		t.Fatalf("Close: %d rows, %v; want %d", n, err, len(lines))
	}
	return out.Bytes()
}

// A page of timestamps spread over a year, PLAIN, has no repeated sequence
// for zstd to find, but its high bytes are skewed: Huffman coding takes
// about a tenth off it. parquet-go's own zstd codec stores such data raw at
// levels 1-5 (from 6 the Go encoder codes them anyway); ours compresses
// it. The writer sends integer pages through DELTA_BINARY_PACKED when that
// is smaller, so the file's case is measurements (doubles between 1000 and
// 1024), which reach the codec as they are: their column takes at most
// 0.95 of its PLAIN size, and pyarrow reads every value back.
func TestZstdCompressesPagesWithoutRepeats(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var page []byte // timestamps, PLAIN
	for range 50_000 {
		at := start.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		page = binary.LittleEndian.AppendUint64(page, uint64(at.UnixMicro()))
	}
	s := schema.Schema{Columns: []schema.Column{{Name: "m", Type: schema.Float64}}}
	lines := make([]string, 50_000)
	want := make([]float64, len(lines))
	for i := range lines {
		want[i] = 1000 + 24*rng.Float64()
		lines[i] = fmt.Sprintf(`{"m":%v}`, want[i])
	}
	for _, level := range []int{0, 1, 3} {
		t.Run(fmt.Sprint("level ", level), func(t *testing.T) {
			codec, err := newZstdCodec(level)
			if err != nil {
				t.Fatal(err)
			}
			z, err := codec.Encode(nil, page)
			if err != nil {
				t.Fatal(err)
			}
			if ratio := float64(len(z)) / float64(len(page)); ratio > 0.95 {
				t.Errorf("codec: timestamps compressed to %d of %d bytes (%.3f); want at most 0.95", len(z), len(page), ratio)
			}
			if back, err := codec.Decode(nil, z); err != nil || !bytes.Equal(back, page) {
				t.Errorf("codec: decoded %d bytes, %v; want the %d written", len(back), err, len(page))
			}
			data := writeLines(t, s, Options{ZstdLevel: level}, lines)
			c := chunks(t, data)["m"]
			if ratio := float64(c.Compressed) / float64(8*len(lines)); ratio > 0.95 {
				t.Errorf("file: measurements take %d bytes of %d PLAIN (%.3f); want at most 0.95", c.Compressed, 8*len(lines), ratio)
			}
			f := pyarrowtest.Read(t, data)
			for i, r := range f.Rows {
				if r["m"] != want[i] {
					t.Fatalf("row %d: m %v, want %v", i, r["m"], want[i])
				}
			}
		})
	}
}

// A zstd level outside 1–22, or given with another compression, is refused
// with the range.
func TestZstdLevelValidated(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "a", Type: schema.Int64}}}
	for _, c := range []struct {
		compression string
		level       int
		want        string
	}{
		{"zstd", 23, "zstd level 23: give 1 to 22 (1 by default)"},
		{"", -1, "zstd level -1: give 1 to 22 (1 by default)"},
		{"snappy", 3, `a zstd level (3) with compression "snappy": a level is for zstd only`},
	} {
		_, err := NewWriter(&bytes.Buffer{}, s, Options{Compression: c.compression, ZstdLevel: c.level})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("compression %q level %d: %v; want %q", c.compression, c.level, err, c.want)
		}
	}
}

// A dictionary column whose row group holds more distinct values than
// DictionaryMaxBytes goes on in PLAIN: the file has both encodings and
// pyarrow reads every value back.
func TestDictionaryColumnFallsBackToPlain(t *testing.T) {
	s := schema.Schema{Columns: []schema.Column{{Name: "k", Type: schema.String, Dictionary: true}}}
	n := 3 * DictionaryMaxBytes / 40
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"k":"%038d"}`, i) // 38 bytes, all distinct
	}
	data := writeLines(t, s, Options{}, lines)
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]int64{} // data pages by encoding
	for _, rg := range f.Metadata().RowGroups {
		for _, st := range rg.Columns[0].MetaData.EncodingStats {
			if st.PageType != format.DictionaryPage {
				pages[st.Encoding.String()] += int64(st.Count)
			}
		}
	}
	if pages["RLE_DICTIONARY"] == 0 || pages["PLAIN"] == 0 {
		t.Errorf("data pages by encoding %v; want the dictionary's, then PLAIN ones", pages)
	}
	read := pyarrowtest.Read(t, data)
	if len(read.Rows) != n {
		t.Fatalf("%d rows read, want %d", len(read.Rows), n)
	}
	for i, r := range read.Rows {
		if want := fmt.Sprintf("%038d", i); r["k"] != want {
			t.Fatalf("row %d: %v, want %s", i, r["k"], want)
		}
	}
}

// Pages and dictionaries shrink for wide schemas, so that all columns
// together hold about 32 MiB of each, down to a floor.
func TestPagesAndDictionariesShrinkWithWidth(t *testing.T) {
	for _, c := range []struct {
		leaves     int
		page, dict int64
	}{
		{1, 256 << 10, 1 << 20}, {29, 256 << 10, 1 << 20}, {128, 256 << 10, 256 << 10},
		{2000, 32 << 20 / 2000, 64 << 10}, {4000, 16 << 10, 64 << 10}, {schema.MaxLeafColumns, 16 << 10, 64 << 10},
	} {
		if p, d := int64(pageBytes(c.leaves)), dictionaryBytes(c.leaves); p != c.page || d != c.dict {
			t.Errorf("%d leaves: pages %d, dictionaries %d; want %d, %d", c.leaves, p, d, c.page, c.dict)
		}
	}
}
