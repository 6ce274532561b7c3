package schema

import (
	"bytes"
	"encoding/json"
	"time"
)

// rfc3339Micros reads the common RFC 3339 form
// YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM) as microseconds since the epoch
// (UTC), when no digit below the microsecond is other than 0. Any other
// form reports false,
// and the caller asks time.Parse; what this accepts, time.Parse accepts with
// the same result (FuzzRFC3339MatchesTime holds it to that).
func rfc3339Micros(s []byte) (int64, bool) {
	if len(s) < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	days, ok := isoDate(s[:10])
	hour, ok4 := two(s, 11)
	minute, ok5 := two(s, 14)
	sec, ok6 := two(s, 17)
	if !(ok && ok4 && ok5 && ok6) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	var micros int64
	if s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n := j - i - 1
		if n < 1 || n > 9 {
			return 0, false
		}
		for k := 7; k <= n; k++ {
			if s[i+k] != '0' {
				return 0, false // below the microsecond: the caller rejects it
			}
		}
		for k := 0; k < 6; k++ {
			micros *= 10
			if k < n {
				micros += int64(s[i+1+k] - '0')
			}
		}
		i = j
	}
	var offset int64
	switch {
	case i == len(s)-1 && s[i] == 'Z':
	case i == len(s)-6 && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, ok1 := two(s, i+1)
		om, ok2 := two(s, i+4)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*3600 + om*60)
		if s[i] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := days*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1_000_000 + micros, true
}

// isoDate reads YYYY-MM-DD as days since the epoch.
func isoDate(s []byte) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y1, ok1 := two(s, 0)
	y2, ok4 := two(s, 2)
	year := y1*100 + y2
	month, ok2 := two(s, 5)
	day, ok3 := two(s, 8)
	if !(ok1 && ok2 && ok3 && ok4) || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return 0, false
	}
	return daysFromCivil(year, month, day), true
}

// two reads the two decimal digits at b[i:] (the caller checked the length).
func two(b []byte, i int) (int, bool) {
	hi, lo := b[i]-'0', b[i+1]-'0' // bytes below '0' wrap around above 9
	return int(hi)*10 + int(lo), hi <= 9 && lo <= 9
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the proleptic
// Gregorian date y-m-d.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// IsTimestamp reports whether raw, a JSON string, holds an RFC 3339
// timestamp that a timestamp column with the default formats accepts.
func IsTimestamp(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	text := raw[1 : len(raw)-1]
	if _, ok := rfc3339Micros(text); ok {
		return true
	}
	// Unless escaped, anything time.Parse takes as RFC 3339 is 20 bytes or
	// more and starts with a year and a dash: most strings stop here.
	if !bytes.ContainsRune(text, '\\') {
		if len(text) < 20 {
			return false
		}
		if _, ok := two(text, 0); !ok || text[4] != '-' {
			return false
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	// Digits below the microsecond make it a string: a timestamp column
	// would reject it.
	t, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && t.Nanosecond()%1000 == 0 && !belowMicro(s)
}
