package schema

import (
	"bytes"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloatFast reads a JSON number whose value is a mantissa of at most
// 2^53 times a power of ten within 10^±22: then one exactly rounded
// multiplication or division gives the same float64 as strconv.ParseFloat
// (Clinger's fast path). It reports false for anything else, valid or not,
// and the caller asks strconv.
func parseFloatFast(b []byte) (float64, bool) {
	f, end, ok := floatAt(b, 0)
	return f, ok && end == len(b)
}

// floatAt is parseFloatFast of the number at b[i:], which ends at end (the
// first byte that cannot continue it).
func floatAt(b []byte, i int) (f float64, end int, ok bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) {
		return 0, 0, false
	}
	var mant uint64
	nd, exp := 0, 0
	plain := true // no fraction, no exponent: an integer
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if nd == 19 {
				return 0, 0, false
			}
			mant = mant*10 + uint64(b[i]-'0')
			nd++
		}
	default:
		return 0, 0, false
	}
	if i < len(b) && b[i] == '.' {
		plain = false
		i++
		start := i
		if mant == 0 {
			for i < len(b) && b[i] == '0' { // leading zeros of the fraction
				i++
			}
		}
		digits := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			mant = mant*10 + uint64(b[i]-'0')
			i++
		}
		if i == start {
			return 0, 0, false
		}
		if nd += i - digits; nd > 19 {
			return 0, 0, false // the mantissa overflowed
		}
		exp = start - i
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		plain = false
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if i-start == 4 {
				return 0, 0, false
			}
			e = e*10 + int(b[i]-'0')
		}
		if i == start {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if plain && mant > 1<<53 {
		// An integer float64 may not hold exactly: the reference decides.
		return 0, 0, false
	}
	switch {
	case mant == 0:
		f = 0
	case mant <= 1<<53 && exp >= -22 && exp <= 22:
		f = float64(mant)
		if exp > 0 {
			f *= pow10[exp]
		} else if exp < 0 {
			f /= pow10[-exp]
		}
	case exp >= -19 && exp <= 19:
		f = exactDecimal(mant, exp)
	default:
		return 0, 0, false
	}
	if f >= 1<<53 {
		// It may be an integer float64 does not hold exactly, however
		// written (9007199254740993.0): the reference decides.
		return 0, 0, false
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// pow10u holds 10^0 … 10^19, the powers of ten a uint64 holds.
var pow10u = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
	1e15, 1e16, 1e17, 1e18, 1e19}

// exactDecimal is mant × 10^exp (mant > 0, |exp| <= 19) rounded once, to
// the nearest float64 (ties to even), as strconv.ParseFloat rounds it: the
// product, or a quotient with at least 62 significant bits and its
// remainder, is computed exactly in 128 bits and then rounded.
func exactDecimal(mant uint64, exp int) float64 {
	if exp >= 0 {
		hi, lo := bits.Mul64(mant, pow10u[exp])
		return round128(hi, lo, false, 0)
	}
	d := pow10u[-exp]
	// Shift mant left so that the quotient fills 63 or 64 bits: with
	// s = 63 + len(d) - len(mant), mant<<s / d lies in [2^62, 2^64).
	s := 63 + bits.Len64(d) - bits.Len64(mant)
	var hi, lo uint64
	if s >= 64 {
		hi = mant << (s - 64)
	} else {
		hi, lo = mant>>(64-s), mant<<s
	}
	q, r := bits.Div64(hi, lo, d)
	return round128(0, q, r != 0, -s)
}

// round128 is (hi:lo + a sticky fraction if inexact) × 2^shift rounded to
// the nearest float64, ties to even; the result is a normal number.
func round128(hi, lo uint64, inexact bool, shift int) float64 {
	n := 64 + bits.Len64(hi)
	if hi == 0 {
		n = bits.Len64(lo)
	}
	if n <= 53 && !inexact {
		return math.Ldexp(float64(lo), shift)
	}
	drop := n - 53 // bits below the mantissa
	var m, rest uint64
	var half bool
	switch {
	case drop <= 0:
		// All bits fit; only the sticky fraction is below them: never a tie.
		return math.Ldexp(float64(lo), shift)
	case drop < 64:
		m = hi<<(64-drop) | lo>>drop
		rest = lo & (1<<drop - 1)
		half = rest == 1<<(drop-1)
		inexact = inexact || rest&(1<<(drop-1)-1) != 0
		if rest>>(drop-1) == 1 && (!half || inexact || m&1 == 1) {
			m++
		}
	default: // drop >= 64: hi holds the mantissa's bits and more
		m = hi >> (drop - 64)
		below, top := lo, uint64(1)<<63 // drop == 64: the round bit is lo's top
		if drop > 64 {
			below, top = hi&(1<<(drop-64)-1), 1<<(drop-64-1)
			inexact = inexact || lo != 0
		}
		if below&top != 0 && (below != top || inexact || m&1 == 1) {
			m++
		}
	}
	if m == 1<<53 {
		m >>= 1
		drop++
	}
	return math.Ldexp(float64(m), shift+drop)
}

// intAt reads the JSON integer at b[i:] (at most 18 digits), which ends at
// end (the first byte that cannot continue it: a '.', 'e' or 'E' there
// means it is not an integer).
func intAt(b []byte, i int) (n int64, end int, ok bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if d := i - start; d == 0 || d > 18 || (b[start] == '0' && d > 1) {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// delimits reports whether c may follow a value inside an object or array.
func delimits(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// intKind is what intText found a JSON number to be.
type intKind uint8

const (
	intExact    intKind = iota // an integer within int64: n
	intFraction                // not an integer
	intBeyond                  // an integer beyond int64
)

// intText reads the JSON number b (valid grammar) exactly, on its decimal
// text — digits, fraction and exponent — never through a float64, which
// would round 1.00000000000000000001 to 1: an integer within int64 (its
// value), a number with a fraction, or an integer beyond int64. It does
// not allocate.
func intText(b []byte) (n int64, kind intKind) {
	i := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		i++
	}
	intStart := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(b) && b[i] == '.' {
		i++
		fracStart = i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		fracEnd = i
	}
	exp, _ := exponentAt(b, i)
	li, lf := intEnd-intStart, fracEnd-fracStart
	digit := func(j int) byte {
		if j < li {
			return b[intStart+j]
		}
		return b[fracStart+j-li]
	}
	first, last := -1, -1
	for j := 0; j < li+lf; j++ {
		if digit(j) != '0' {
			if first < 0 {
				first = j
			}
			last = j
		}
	}
	if first < 0 {
		return 0, intExact // zero, however written
	}
	// The value is digits[first..last] × 10^p.
	p := exp - lf + (li + lf - 1 - last)
	if p < 0 {
		return 0, intFraction // its last non-zero digit is below the units
	}
	if last-first+1+p > 19 {
		return 0, intBeyond
	}
	var u uint64
	for j := first; j <= last; j++ {
		u = u*10 + uint64(digit(j)-'0')
	}
	for range p {
		u *= 10 // at most 19 digits: no overflow
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), intExact
	case !neg && u <= 1<<63-1:
		return int64(u), intExact
	}
	return 0, intBeyond
}

// hasFraction reports whether the JSON number b is not an integer, on its
// text: 1.00000000000000000001 has a fraction float64 would round away.
func hasFraction(b []byte) bool {
	_, kind := intText(b)
	return kind == intFraction
}

// plainInteger reports whether the JSON number b is written as an integer:
// no fraction, no exponent.
func plainInteger(b []byte) bool {
	return bytes.IndexAny(b, ".eE") < 0
}

// floatHoldsInt reports whether f, the float64 nearest the JSON integer b
// (no fraction, no exponent), is exactly b: always within ±2^53, and
// beyond it only for integers float64 happens to hold.
func floatHoldsInt(b []byte, f float64) bool {
	if math.Abs(f) < 1<<53 { // 2^53 may be 2^53+1 rounded
		return true
	}
	digits := bytes.TrimPrefix(b, []byte("-"))
	if len(digits) <= 19 {
		u, err := strconv.ParseUint(str(digits), 10, 64)
		return err == nil && math.Abs(f) < 1<<64 && uint64(math.Abs(f)) == u && float64(u) == math.Abs(f)
	}
	want, ok := new(big.Int).SetString(string(digits), 10)
	if !ok || math.IsInf(f, 0) {
		return false
	}
	got, _ := new(big.Float).SetFloat64(math.Abs(f)).Int(nil)
	return got.Cmp(want) == 0
}

// exponentAt reads the exponent of a JSON number whose mantissa ends at
// b[i] ("e" or "E", a sign, digits; 0 when there is none), saturating
// beyond 2^30 so that no text overflows it, and where it ends.
func exponentAt(b []byte, i int) (exp, end int) {
	if i >= len(b) || (b[i] != 'e' && b[i] != 'E') {
		return 0, i
	}
	i++
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if exp < 1<<30 {
			exp = exp*10 + int(b[i]-'0')
		}
	}
	if neg {
		exp = -exp
	}
	return exp, i
}

// floatHoldsText reports whether f, the float64 nearest the JSON number
// b, changes no integer: b's value is not an integer, or b has at most 15
// significant digits (float64 reads those back as written: 1e30), or f is
// exactly b's value, however b writes it (9007199254740993,
// 9007199254740993.0 and 90071992547409930e-1 are integers float64
// rounds). A number with a fraction is kept to float64's 15–17
// significant digits.
func floatHoldsText(b []byte, f float64) bool {
	if math.Abs(f) < 1<<53 {
		return true // an integer value below 2^53 is held exactly
	}
	if math.IsInf(f, 0) {
		return false
	}
	// The value is the significant digits D times 10^p, as intText reads
	// them; only those are made a big.Int, never the text's zeros.
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	var digits []byte
	lf, zeros := 0, 0 // zeros: after the last non-zero digit
	inFrac := false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if inFrac {
				lf++
			}
			if c == '0' {
				zeros++
				continue
			}
			if len(digits) > 0 {
				for ; zeros > 0 && len(digits) <= 400; zeros-- {
					digits = append(digits, '0')
				}
			}
			zeros = 0
			if len(digits) <= 400 {
				digits = append(digits, c)
			}
			continue
		case c == '.':
			inFrac = true
			continue
		}
		break
	}
	exp, _ := exponentAt(b, i)
	p := exp - lf + zeros
	if len(digits) == 0 {
		return true // zero
	}
	if len(digits) <= 15 {
		// float64 gives back any number of up to 15 significant digits:
		// 1e30 and 6.02214076e23 are read back as written.
		return true
	}
	if p < 0 {
		return true // a fraction: rounded to float64's digits, as documented
	}
	if p > 400 || len(digits) > 400 {
		return false // no float64 integer has that many significant digits
	}
	want, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return false
	}
	want.Mul(want, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil))
	got, _ := new(big.Float).SetFloat64(math.Abs(f)).Int(nil)
	return got.Cmp(want) == 0
}

// FloatRounds reports whether the JSON number raw is an integer, however
// written, that float64 would round (a float64 column rejects it), and
// whether that integer is beyond int64 (so an int64 column rejects it
// too). Inference keeps such numbers exact: int64 or string columns.
func FloatRounds(raw []byte) (rounds, beyondInt64 bool) {
	f, err := strconv.ParseFloat(str(raw), 64)
	if err != nil || floatHoldsText(raw, f) {
		return false, false
	}
	_, kind := intText(raw)
	return true, kind == intBeyond
}
