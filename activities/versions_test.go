package activities

import (
	"testing"
	"time"
)

// Uploads of one key sort by LastModified, and within one second by the S3
// event's sequencer, compared as S3 says: the shorter left-padded with zeros.
func TestUploadOrderSortsUploadsOfAKey(t *testing.T) {
	sec := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name           string
		earlier, later string
	}{
		{"a second apart, sequencers the other way", UploadOrder(sec, "FF"), UploadOrder(sec.Add(time.Second), "01")},
		{"same second, sequencer", UploadOrder(sec, "0066A1"), UploadOrder(sec, "0066A2")},
		{"same second, shorter sequencer is smaller", UploadOrder(sec, "FFFF"), UploadOrder(sec, "10000")},
		{"same second, hex case", UploadOrder(sec, "00aa"), UploadOrder(sec, "00AB")},
		{"no sequencer sorts first", UploadOrder(sec, ""), UploadOrder(sec, "00")},
		{"another time zone", UploadOrder(sec.In(time.FixedZone("x", 3600)), "1"), UploadOrder(sec.Add(time.Millisecond), "0")},
	} {
		if !(tc.earlier < tc.later) {
			t.Errorf("%s: %q sorts after %q", tc.name, tc.earlier, tc.later)
		}
	}
}
