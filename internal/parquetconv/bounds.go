package parquetconv

import "unicode/utf8"

// StatsLimit is the longest min or max a byte-array column's statistics
// keep, in the footer (column chunks) and in the column index, as Arrow and
// DuckDB do: a 10 MB string would otherwise be copied whole into the
// footer, once as the chunk's min and once as its max, for every row group
// it bounds. A longer min is cut to a prefix (still a lower bound); a
// longer max is cut and its last character that can be is incremented
// (still an upper bound); a max that cannot be bounded so is left out,
// with the min.
const StatsLimit = 64

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
