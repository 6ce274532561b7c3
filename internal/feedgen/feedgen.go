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
)

// Options shape a feed.
type Options struct {
	Records  int    // lines in the feed, good and bad
	BadEvery int    // every BadEvery-th line is bad; 0: none
	Seed     uint64 // same seed, same feed
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
	for i := 1; i <= o.Records; i++ {
		var line []byte
		if o.BadEvery > 0 && i%o.BadEvery == 0 {
			line = []byte(bad[(i/o.BadEvery)%len(bad)])
			st.Bad++
			st.BadLines = append(st.BadLines, i)
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
