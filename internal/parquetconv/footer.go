package parquetconv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// StatsLimit is the longest min or max a byte-array column's statistics
// keep, in the footer (column chunks) and in the page index, as Arrow and
// DuckDB do: a 10 MB string would otherwise be copied whole into the
// footer, once as the chunk's min and once as its max, for every row group
// it bounds. A longer min is cut to a prefix (still a lower bound); a
// longer max is cut and its last character that can be is incremented
// (still an upper bound); a max that cannot be bounded so is left out,
// with the min.
const StatsLimit = 64

// tailWriter passes writes through to w until capture is set, then holds
// them: the page index and the footer, which Close rewrites.
type tailWriter struct {
	w       io.Writer
	capture bool
	held    []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if t.capture {
		t.held = append(t.held, p...)
		return len(p), nil
	}
	return t.w.Write(p)
}

// shrinkFooter returns the tail of a Parquet file (what follows the last
// row group: page index, footer, length and magic) with the statistics of
// its byte-array column chunks cut to limit bytes.
func shrinkFooter(tail []byte, limit int) ([]byte, error) {
	if len(tail) < 8 || string(tail[len(tail)-4:]) != "PAR1" {
		return nil, errors.New("no Parquet footer at the end of the file")
	}
	n := int(binary.LittleEndian.Uint32(tail[len(tail)-8:]))
	start := len(tail) - 8 - n
	if start < 0 {
		return nil, fmt.Errorf("footer of %d bytes in a tail of %d", n, len(tail))
	}
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), tail[start:len(tail)-8], &md); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	changed := false
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			m := &md.RowGroups[i].Columns[j].MetaData
			if m.Type == format.ByteArray || m.Type == format.FixedLenByteArray {
				changed = truncateStats(&m.Statistics, limit) || changed
			}
		}
	}
	if !changed {
		return tail, nil
	}
	enc, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return nil, fmt.Errorf("write footer: %w", err)
	}
	out := make([]byte, 0, start+len(enc)+8)
	out = append(out, tail[:start]...)
	out = append(out, enc...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(enc)))
	return append(out, "PAR1"...), nil
}

// truncateStats cuts s's bounds to limit bytes; it reports whether it
// changed s.
func truncateStats(s *format.Statistics, limit int) bool {
	if len(s.MinValue) <= limit && len(s.MaxValue) <= limit && len(s.Min) <= limit && len(s.Max) <= limit {
		return false
	}
	minV, maxV := TruncateMin(s.MinValue, limit), TruncateMax(s.MaxValue, limit)
	if s.MaxValue != nil && maxV == nil {
		// No upper bound as short: no bounds at all rather than half of them.
		minV = nil
	}
	s.MinValue, s.MaxValue = minV, maxV
	if s.Min != nil || s.Max != nil {
		s.Min, s.Max = minV, maxV
	}
	return true
}

// TruncateMin returns a prefix of v of at most limit bytes (v itself when
// it fits): a lower bound of v. The cut falls between characters when v
// is UTF-8.
func TruncateMin(v []byte, limit int) []byte {
	if len(v) <= limit {
		return v
	}
	cut := limit
	if utf8.Valid(v) {
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
	}
	return append([]byte(nil), v[:cut]...)
}

// TruncateMax returns a value of at most about limit bytes that sorts (byte
// by byte) at or after v: v itself when it fits, else a prefix whose last
// character (or byte, when v is not UTF-8) that can be incremented is,
// with what follows it dropped. It returns nil when there is none (a
// prefix of only U+10FFFF or 0xFF bytes).
func TruncateMax(v []byte, limit int) []byte {
	if len(v) <= limit {
		return v
	}
	if utf8.Valid(v) {
		cut := limit
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		p := v[:cut]
		for len(p) > 0 {
			r, size := utf8.DecodeLastRune(p)
			p = p[:len(p)-size]
			if r == utf8.MaxRune {
				continue
			}
			r++
			if r >= 0xD800 && r <= 0xDFFF {
				r = 0xE000 // past the surrogates, which UTF-8 cannot hold
			}
			return utf8.AppendRune(append([]byte(nil), p...), r)
		}
		return nil
	}
	p := append([]byte(nil), v[:limit]...)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xFF {
			p[i]++
			return p[:i+1]
		}
	}
	return nil
}
