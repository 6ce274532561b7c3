package workflows

import (
	"encoding/json"
	"fmt"
	"time"
)

// StageDurations are the time each stage took in a run, by stage name. In
// JSON (the run's result, its failure details, the progress query, and so
// the Temporal UI) each is a readable duration such as "1m32.512s";
// nanosecond numbers, as runs recorded before, are read as well.
type StageDurations map[string]time.Duration

// MarshalJSON writes each duration as a string, to the millisecond.
func (d StageDurations) MarshalJSON() ([]byte, error) {
	if d == nil {
		return []byte("null"), nil
	}
	m := make(map[string]string, len(d))
	for k, v := range d {
		m[k] = v.Round(time.Millisecond).String()
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads durations written as strings or as nanoseconds.
func (d *StageDurations) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("stage durations: %w", err)
	}
	if raw == nil {
		*d = nil
		return nil
	}
	out := make(StageDurations, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			dur, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("stage durations: %s: %w", k, err)
			}
			out[k] = dur
			continue
		}
		var ns int64
		if err := json.Unmarshal(v, &ns); err != nil {
			return fmt.Errorf("stage durations: %s: want a duration string or nanoseconds, got %s", k, v)
		}
		out[k] = time.Duration(ns)
	}
	*d = out
	return nil
}
