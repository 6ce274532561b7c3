package runs

import (
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/feedpipe/feedpipe/activities"
)

// Totals are what a stage's progress is measured against: from the run's
// input (the source object) and the workflow's progress query (the counts
// of the stages before).
type Totals struct {
	SourceBytes int64 // the source object's size; 0: not known
	Gzip        bool  // the source is gzip: the put's byte offset is not in its size's terms
	Put         int64 // records PutToKinesis put: what AwaitDelivery waits for
	Delivered   int64 // distinct records delivered: what Convert writes
}

// Measure is how far an activity has got, from its last heartbeat details.
type Measure struct {
	Unit    string `json:"unit,omitempty"`  // bytes, lines, records or rows
	Done    int64  `json:"done"`            // units done
	Total   int64  `json:"total,omitempty"` // units in all; 0: not known
	Summary string `json:"summary"`         // for people
	// Details are the heartbeat details as the activity sent them
	// (activities.PutProgress, DeliveryState or ConvertProgress).
	Details any `json:"details,omitempty"`
}

// Percent is Done of Total in percent, or -1 when Total is not known.
func (m Measure) Percent() float64 {
	if m.Total <= 0 {
		return -1
	}
	return 100 * float64(m.Done) / float64(m.Total)
}

// DecodeHeartbeat reads the heartbeat details of a pending activity of type
// activityType with the type that activity heartbeats: PutToKinesis sends
// activities.PutProgress, CheckDelivery activities.DeliveryState,
// ConvertLocal activities.ConvertProgress. Activities that do not heartbeat
// (the short looks) give a Measure with no unit. details may be nil: no
// heartbeat yet. dc is the client's data converter (nil: the default one):
// with a payload codec, heartbeat details are encrypted like every payload.
func DecodeHeartbeat(dc converter.DataConverter, activityType string, details *commonpb.Payloads, t Totals) (Measure, error) {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	has := len(details.GetPayloads()) > 0
	switch activityType {
	case "PutToKinesis":
		var p activities.PutProgress
		if has {
			if err := dc.FromPayloads(details, &p); err != nil {
				return Measure{}, fmt.Errorf("decode %s heartbeat as PutProgress: %w", activityType, err)
			}
		}
		m := Measure{Details: p}
		lines := fmt.Sprintf("%s lines read, %s put, %s rejected", Count(p.Read), Count(p.Put), Count(p.Rejected))
		if p.Resends > 0 {
			lines += fmt.Sprintf(", %s re-sent", Count(p.Resends))
		}
		if t.SourceBytes > 0 && !t.Gzip {
			m.Unit, m.Done, m.Total = "bytes", p.Offset, t.SourceBytes
			m.Summary = fmt.Sprintf("%s of %s (%.1f%%): %s", Bytes(p.Offset), Bytes(t.SourceBytes), m.Percent(), lines)
		} else {
			// A gzip source's length in lines is known only once read.
			m.Unit, m.Done = "lines", p.Line
			m.Summary = lines + " (total lines not known until the file is read)"
		}
		if !has {
			m.Summary = "no heartbeat yet"
		}
		return m, nil
	case "CheckDelivery":
		var s activities.DeliveryState
		if has {
			if err := dc.FromPayloads(details, &s); err != nil {
				return Measure{}, fmt.Errorf("decode %s heartbeat as DeliveryState: %w", activityType, err)
			}
		}
		m := Measure{Unit: "records", Done: s.Delivered, Total: t.Put, Details: s}
		m.Summary = fmt.Sprintf("%s of %s records delivered", Count(s.Delivered), countOrUnknown(t.Put))
		if m.Total > 0 {
			m.Summary += fmt.Sprintf(" (%.1f%%)", m.Percent())
		}
		m.Summary += fmt.Sprintf(", %s staging objects read, %s duplicates, pass %d", Count(int64(s.Objects)), Count(s.Duplicates), s.Passes+1)
		if s.Resumed {
			m.Summary += ", resumed from a checkpoint"
		}
		if !has {
			m.Summary = "no heartbeat yet"
		}
		return m, nil
	case "ConvertLocal":
		var c activities.ConvertProgress
		if has {
			if err := dc.FromPayloads(details, &c); err != nil {
				return Measure{}, fmt.Errorf("decode %s heartbeat as ConvertProgress: %w", activityType, err)
			}
		}
		var rows int64
		for _, p := range c.Parts {
			rows += p.Rows
		}
		m := Measure{Unit: "rows", Done: rows, Total: t.Delivered, Details: c}
		m.Summary = fmt.Sprintf("%s of %s rows in %d Parquet parts", Count(rows), countOrUnknown(t.Delivered), len(c.Parts))
		if m.Total > 0 {
			m.Summary += fmt.Sprintf(" (%.1f%%)", m.Percent())
		}
		if c.Published > 0 {
			m.Summary += fmt.Sprintf(", %d published", c.Published)
		}
		m.Summary += fmt.Sprintf(", %s staging reads", Count(c.Reads))
		if !has {
			m.Summary = "no heartbeat yet"
		}
		return m, nil
	}
	// The short looks (StartGlueRun, CheckGlueRun, CheckIngestion,
	// RecordUpload, SupersedeVersions) do not heartbeat.
	if has {
		var v any
		if err := dc.FromPayloads(details, &v); err == nil {
			return Measure{Summary: "heartbeat details: " + fmt.Sprint(v), Details: v}, nil
		}
	}
	return Measure{Summary: "a short look; it does not report progress"}, nil
}

func countOrUnknown(n int64) string {
	if n <= 0 {
		return "?"
	}
	return Count(n)
}

// Sample is a progress reading: Done units at At (the heartbeat's time).
type Sample struct {
	At   time.Time `json:"at"`
	Done int64     `json:"done"`
}

// Rate is the units per second between two samples; false when it cannot
// be told (the same instant, or progress went back, as after a retry that
// started over).
func Rate(first, second Sample) (float64, bool) {
	dt := second.At.Sub(first.At).Seconds()
	if dt <= 0 || second.Done < first.Done {
		return 0, false
	}
	return float64(second.Done-first.Done) / dt, true
}

// ETA is the time left to reach total at rate; false when total is not
// known or nothing is moving.
func ETA(done, total int64, rate float64) (time.Duration, bool) {
	if total <= 0 || rate <= 0 {
		return 0, false
	}
	left := total - done
	if left <= 0 {
		return 0, true
	}
	return time.Duration(float64(left) / rate * float64(time.Second)), true
}

// Count is n with thousands separated: 12,345.
func Count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Bytes is n in B, KB, MB or GB (powers of 1000).
func Bytes(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1e6:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	}
}

// RateString is a rate in the unit's terms, per second.
func RateString(rate float64, unit string) string {
	if unit == "bytes" {
		return Bytes(int64(rate)) + "/s"
	}
	if rate < 10 {
		return fmt.Sprintf("%.1f %s/s", rate, unit)
	}
	return fmt.Sprintf("%s %s/s", Count(int64(rate+0.5)), unit)
}
