package feedgen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// An IDs feed is deterministic, its lines JSON objects of the same 10
// fields, and its ids, tokens and URLs do not repeat.
func TestIDsFeed(t *testing.T) {
	var a, b bytes.Buffer
	if _, err := Write(&a, Options{Records: 2000, IDs: true, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, Options{Records: 2000, IDs: true, Seed: 3}); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("same seed, another feed (%v)", err)
	}
	seen := map[string]map[any]bool{}
	lines := strings.Split(strings.TrimSuffix(a.String(), "\n"), "\n")
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || len(rec) != 10 {
			t.Fatalf("line %d: %d fields, %v: %s", i+1, len(rec), err, l)
		}
		for k, v := range rec {
			if seen[k] == nil {
				seen[k] = map[any]bool{}
			}
			seen[k][v] = true
		}
	}
	for _, k := range []string{"event_id", "user_id", "order_id", "session", "url", "email"} {
		if len(seen[k]) != len(lines) {
			t.Errorf("%s: %d distinct values in %d lines", k, len(seen[k]), len(lines))
		}
	}
}
