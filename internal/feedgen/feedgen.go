// Package feedgen writes realistic customers feeds (NDJSON) of any size,
// deterministically from a seed, with a chosen number of bad lines, for the
// demo, the tests and the benchmarks.
package feedgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// Options shape a feed.
type Options struct {
	Records  int    // lines in the feed, good and bad
	BadEvery int    // every BadEvery-th line is bad; 0: none
	Seed     uint64 // same seed, same feed
	// Bytes, when set, stops after the line that reaches this size (Records is ignored).
	Bytes int64
	// Wide writes 26 fields a line: numbers, booleans, RFC 3339 timestamps,
	// nulls, a nested object, arrays and occasional long strings.
	Wide bool
	// IDs writes, instead of customers, 10 fields a line dominated by
	// values that hardly repeat: UUIDs, 62-bit user ids, order numbers,
	// session tokens, URLs, IPv4 addresses, SKUs, emails, an amount and a
	// timestamp (a feed of events, for measuring high-cardinality columns).
	IDs bool
}

// Stats says what was written.
type Stats struct {
	Lines, Good, Bad int
	BadLines         []int // line numbers of the bad lines
	Bytes            int64
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Édith", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Søren", "Zoë"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Piaf", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen"}
	countries  = []string{"FR", "DE", "US", "GB", "DK", "JP", "BR", "IN"}
	bad        = []string{
		`{"id": 1, "name": "truncated`,          // broken JSON
		`{"name": "no id", "email": "x@y"}`,     // required field missing
		`{"id": "seven", "name": "wrong type"}`, // wrong type
		`["not", "an", "object"]`,               // not an object
		`{"id": 9, "name": "x", "_line": 4}`,    // reserved field
	}
)

// Write writes a customers feed to w.
func Write(w io.Writer, o Options) (Stats, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var st Stats
	for i := 1; (o.Bytes > 0 && st.Bytes < o.Bytes) || (o.Bytes == 0 && i <= o.Records); i++ {
		var line []byte
		if o.BadEvery > 0 && i%o.BadEvery == 0 {
			line = []byte(bad[(i/o.BadEvery)%len(bad)])
			st.Bad++
			st.BadLines = append(st.BadLines, i)
		} else if o.IDs {
			var err error
			if line, err = json.Marshal(idsRecord(r, i)); err != nil {
				return st, err
			}
			st.Good++
		} else {
			rec := map[string]any{
				"id":        i,
				"name":      firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))],
				"email":     fmt.Sprintf("user%d@example.com", i),
				"country":   countries[r.IntN(len(countries))],
				"balance":   float64(r.IntN(1_000_000)) / 100,
				"active":    r.IntN(4) != 0,
				"signed_up": fmt.Sprintf("20%02d-%02d-%02dT%02d:%02d:%02dZ", 10+r.IntN(16), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)),
				"tags":      []string{"a", "b"}[:r.IntN(3)%2+1],
			}
			if r.IntN(10) == 0 {
				rec["email"] = nil
			}
			if o.Wide {
				widen(rec, r, i)
			}
			var err error
			if line, err = json.Marshal(rec); err != nil {
				return st, err
			}
			st.Good++
		}
		line = append(line, '\n')
		n, err := bw.Write(line)
		st.Bytes += int64(n)
		if err != nil {
			return st, err
		}
		st.Lines++
	}
	return st, bw.Flush()
}

var (
	cities = []string{"Paris", "Berlin", "Austin", "London", "Aarhus", "Osaka", "Recife", "Pune"}
	words  = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua")
)

func widen(rec map[string]any, r *rand.Rand, i int) {
	ts := func() string {
		return fmt.Sprintf("20%02d-%02d-%02dT%02d:%02d:%02d.%06dZ", 15+r.IntN(11), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000000))
	}
	city := cities[r.IntN(len(cities))]
	rec["phone"] = fmt.Sprintf("+%d %03d %04d", 1+r.IntN(90), r.IntN(1000), r.IntN(10000))
	rec["city"] = city
	rec["postcode"] = fmt.Sprintf("%05d", r.IntN(100000))
	rec["company"] = lastNames[r.IntN(len(lastNames))] + " " + []string{"GmbH", "Inc", "SA", "Ltd"}[r.IntN(4)]
	rec["age"] = 18 + r.IntN(70)
	rec["score"] = r.Float64() * 100
	rec["ratio"] = r.Float64()
	rec["logins"] = r.IntN(5000)
	rec["last_login"] = ts()
	rec["created_at"] = ts()
	rec["is_vip"] = r.IntN(20) == 0
	rec["newsletter"] = r.IntN(2) == 0
	rec["currency"] = []string{"EUR", "USD", "GBP", "JPY"}[r.IntN(4)]
	rec["language"] = []string{"fr", "de", "en", "ja", "pt"}[r.IntN(5)]
	rec["referrer"] = nil
	if r.IntN(3) == 0 {
		rec["referrer"] = fmt.Sprintf("https://example.com/r/%d", r.IntN(1000))
	}
	rec["address"] = map[string]any{"street": fmt.Sprintf("%d %s street", 1+r.IntN(200), words[r.IntN(len(words))]), "city": city, "geo": []float64{r.Float64()*180 - 90, r.Float64()*360 - 180}}
	rec["preferences"] = map[string]any{"theme": []string{"dark", "light"}[r.IntN(2)], "notifications": r.IntN(2) == 0}
	n := 8
	if r.IntN(50) == 0 {
		n = 200 + r.IntN(300) // an occasional long note
	}
	note := make([]string, n)
	for j := range note {
		note[j] = words[r.IntN(len(words))]
	}
	rec["notes"] = strings.Join(note, " ")
}

// idsRecord is line i of an IDs feed.
func idsRecord(r *rand.Rand, i int) map[string]any {
	u := [2]uint64{r.Uint64(), r.Uint64()}
	return map[string]any{
		"event_id": fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", u[0]>>32, u[0]>>16&0xffff, u[0]&0xfff, u[1]>>48&0x3fff|0x8000, u[1]&0xffffffffffff),
		"user_id":  r.Int64N(1 << 62),
		"order_id": 1_000_000_000 + i,
		"session":  fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()),
		"url":      fmt.Sprintf("https://shop.example.com/p/%d/%s-%s?utm=%08x", r.IntN(1_000_000), words[r.IntN(len(words))], words[r.IntN(len(words))], r.Uint32()),
		"ip":       fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254)),
		"sku":      fmt.Sprintf("SKU-%08d", r.IntN(100_000_000)),
		"email":    fmt.Sprintf("u%d.%08x@example.org", r.IntN(10_000_000), r.Uint32()),
		"amount":   float64(r.IntN(10_000_000)) / 100,
		"ts":       fmt.Sprintf("2026-%02d-%02dT%02d:%02d:%02d.%06dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1_000_000)),
	}
}
