package s3event

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEventBridgeEnvelope(t *testing.T) {
	body := `{"version":"0","id":"e1","detail-type":"Object Created","source":"aws.s3","region":"us-east-1",
	  "detail":{"version":"0","bucket":{"name":"src"},"object":{"key":"in/feed one.ndjson","size":42,"etag":"abc123","version-id":"v1","sequencer":"0066A1B2C3D4E5F601"}}}`
	got, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := Object{Bucket: "src", Key: "in/feed one.ndjson", Size: 42, ETag: "abc123", VersionID: "v1", Sequencer: "0066A1B2C3D4E5F601"}
	if len(got) != 1 || got[0] != want {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
}

func TestParseS3NotificationDecodesKeys(t *testing.T) {
	body := `{"Records":[
	  {"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"src"},"object":{"key":"in/feed+one%2B.ndjson","size":7,"eTag":"\"e1\"","sequencer":"0A1B"}}},
	  {"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"src"},"object":{"key":"gone"}}}]}`
	got, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := Object{Bucket: "src", Key: "in/feed one+.ndjson", Size: 7, ETag: "e1", Sequencer: "0A1B"}
	if len(got) != 1 || got[0] != want {
		t.Errorf("Parse = %+v, want only %+v", got, want)
	}
}

func TestParseNotObjectCreated(t *testing.T) {
	for name, body := range map[string]string{
		"test event":     `{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"src"}`,
		"deleted":        `{"detail-type":"Object Deleted","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`,
		"removed record": `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`,
	} {
		if _, err := Parse(body); !errors.Is(err, ErrNotObjectCreated) {
			t.Errorf("%s: err = %v, want ErrNotObjectCreated", name, err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	for body, want := range map[string]string{
		`not json`:    "not a JSON object",
		`{"hello":1}`: "neither an EventBridge envelope",
		`{"detail-type":"Object Created","source":"aws.s3","detail":{}}`:                                                             "without detail.bucket.name",
		`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`: "record 0: key",
	} {
		_, err := Parse(body)
		if err == nil || errors.Is(err, ErrNotObjectCreated) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", body, err, want)
		}
	}
}
