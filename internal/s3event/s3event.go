// Package s3event parses the S3 "Object Created" messages that reach an SQS
// queue: EventBridge envelopes (the path feedpipe provisions) and classic S3
// event notification records (a bucket notifying SQS directly).
package s3event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Object is one created object named by an event.
type Object struct {
	Bucket    string
	Key       string
	Size      int64
	ETag      string
	VersionID string
	// Sequencer orders the events of one key: the later upload has the
	// greater value (hex; compare with Later). Empty when the event has none.
	Sequencer string
}

// ErrNotObjectCreated marks a well-formed message that is not about a created
// object (an s3:TestEvent, another event type); callers may drop it.
var ErrNotObjectCreated = errors.New("not an S3 Object Created event")

type eventBridgeEnvelope struct {
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
	Detail     struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			Size      int64  `json:"size"`
			ETag      string `json:"etag"`
			VersionID string `json:"version-id"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
	} `json:"detail"`
}

type notification struct {
	Records []struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				Size      int64  `json:"size"`
				ETag      string `json:"eTag"`
				VersionID string `json:"versionId"`
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
	Event string `json:"Event"` // "s3:TestEvent"
}

// Parse returns the objects a message body names. A body that is not JSON, or
// JSON of neither shape, is an error that says what was expected.
func Parse(body string) ([]Object, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return nil, fmt.Errorf("message is not a JSON object: %w", err)
	}
	switch {
	case probe["detail-type"] != nil:
		var e eventBridgeEnvelope
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, fmt.Errorf("EventBridge envelope: %w", err)
		}
		if e.Source != "aws.s3" || e.DetailType != "Object Created" {
			return nil, fmt.Errorf("%w: EventBridge %s %q", ErrNotObjectCreated, e.Source, e.DetailType)
		}
		if e.Detail.Bucket.Name == "" || e.Detail.Object.Key == "" {
			return nil, errors.New("EventBridge Object Created envelope without detail.bucket.name or detail.object.key")
		}
		// EventBridge gives the key as stored, not URL-encoded.
		return []Object{{
			Bucket: e.Detail.Bucket.Name, Key: e.Detail.Object.Key, Size: e.Detail.Object.Size,
			ETag: strings.Trim(e.Detail.Object.ETag, `"`), VersionID: e.Detail.Object.VersionID, Sequencer: e.Detail.Object.Sequencer,
		}}, nil
	case probe["Records"] != nil || probe["Event"] != nil:
		var n notification
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			return nil, fmt.Errorf("S3 notification: %w", err)
		}
		var out []Object
		for i, r := range n.Records {
			if r.EventSource != "aws:s3" || !strings.HasPrefix(r.EventName, "ObjectCreated:") {
				continue
			}
			// S3 notifications URL-encode the key, with '+' for spaces.
			key, err := url.QueryUnescape(r.S3.Object.Key)
			if err != nil {
				return nil, fmt.Errorf("S3 notification record %d: key %q: %w", i, r.S3.Object.Key, err)
			}
			if r.S3.Bucket.Name == "" || key == "" {
				return nil, fmt.Errorf("S3 notification record %d without s3.bucket.name or s3.object.key", i)
			}
			out = append(out, Object{Bucket: r.S3.Bucket.Name, Key: key, Size: r.S3.Object.Size,
				ETag: strings.Trim(r.S3.Object.ETag, `"`), VersionID: r.S3.Object.VersionID, Sequencer: r.S3.Object.Sequencer})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: S3 notification with no ObjectCreated record", ErrNotObjectCreated)
		}
		return out, nil
	}
	return nil, errors.New("message is neither an EventBridge envelope (detail-type) nor an S3 notification (Records)")
}
