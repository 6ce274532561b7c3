// Package feed identifies one uploaded feed file: the S3 object version that
// a FeedWorkflow run moves into Snowflake.
package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Ref points at one version of a feed object.
type Ref struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	Size      int64  `json:"size"`
	// Sequencer is the S3 event's sequencer of this upload, when the run was
	// started by an event: it orders two uploads of the key made within the
	// same second. It is not part of the version (a start without the event
	// is the same run).
	Sequencer string `json:"sequencer,omitempty"`
}

// SequencerOrder is s in a form whose string order is S3's sequencer order:
// S3 says to left-pad the shorter of two sequencers with zeros and compare
// them as strings. Empty stays empty (it sorts first).
func SequencerOrder(s string) string {
	const width = 40
	s = strings.ToUpper(s)
	if s == "" || len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// Version is what distinguishes two uploads of the same key: the version id
// on a versioned bucket, else the ETag.
func (r Ref) Version() string {
	if r.VersionID != "" {
		return r.VersionID
	}
	return strings.Trim(r.ETag, `"`)
}

// String is s3://bucket/key@version.
func (r Ref) String() string { return fmt.Sprintf("s3://%s/%s@%s", r.Bucket, r.Key, r.Version()) }

// ID is the feed's short stable id: 16 hex digits of a hash of bucket, key
// and version. Every record carries it (_feed_id), and output keys use it.
func (r Ref) ID() string {
	h := sha256.Sum256([]byte(r.Bucket + "\x00" + r.Key + "\x00" + r.Version()))
	return hex.EncodeToString(h[:8])
}

// WorkflowID is the FeedWorkflow id for this version: the same event twice
// maps to one run; a new upload of the key (new ETag or version) to a new one.
// It stays readable in the Temporal UI; very long keys are shortened with the
// feed id keeping it unique.
func (r Ref) WorkflowID() string {
	id := fmt.Sprintf("feed/%s/%s@%s", r.Bucket, r.Key, r.Version())
	if len(id) > 400 {
		id = fmt.Sprintf("feed/%s/%s…%s", r.Bucket, r.Key[:200], r.ID())
	}
	return id
}

// Validate says what is missing from a Ref.
func (r Ref) Validate() error {
	switch {
	case r.Bucket == "":
		return fmt.Errorf("feed ref %s: no bucket", r)
	case r.Key == "":
		return fmt.Errorf("feed ref %s: no key", r)
	case r.Version() == "":
		return fmt.Errorf("feed ref %s: no ETag or version id; it identifies the upload", r)
	}
	return nil
}
