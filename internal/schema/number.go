package schema

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
	if mant > 1<<53 {
		return 0, 0, false
	}
	f = float64(mant)
	switch {
	case mant == 0:
	case exp == 0:
	case exp > 0 && exp <= 22:
		f *= pow10[exp]
	case exp < 0 && exp >= -22:
		f /= pow10[-exp]
	default:
		return 0, 0, false
	}
	if neg {
		f = -f
	}
	return f, i, true
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
