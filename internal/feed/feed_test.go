package feed

import (
	"strings"
	"testing"
)

func TestIdentity(t *testing.T) {
	a := Ref{Bucket: "b", Key: "k", ETag: `"e1"`}
	if a.Version() != "e1" || a.WorkflowID() != "feed/b/k@e1" || len(a.ID()) != 16 {
		t.Errorf("ref %s: version %s id %s wfid %s", a, a.Version(), a.ID(), a.WorkflowID())
	}
	same := Ref{Bucket: "b", Key: "k", ETag: "e1", Size: 99}
	if same.ID() != a.ID() || same.WorkflowID() != a.WorkflowID() {
		t.Error("the same upload has two identities")
	}
	reupload := Ref{Bucket: "b", Key: "k", ETag: "e2"}
	if reupload.ID() == a.ID() || reupload.WorkflowID() == a.WorkflowID() {
		t.Error("a new upload of the key has the old identity")
	}
	versioned := Ref{Bucket: "b", Key: "k", ETag: "e1", VersionID: "v9"}
	if versioned.Version() != "v9" {
		t.Error("the version id does not win over the ETag")
	}
	long := Ref{Bucket: "b", Key: strings.Repeat("k", 900), ETag: "e"}
	if n := len(long.WorkflowID()); n > 400 || !strings.HasSuffix(long.WorkflowID(), long.ID()) {
		t.Errorf("long key workflow id: %d chars", n)
	}
	if err := (Ref{Bucket: "b", Key: "k"}).Validate(); err == nil || !strings.Contains(err.Error(), "no ETag or version id") {
		t.Errorf("Validate without a version: %v", err)
	}
}
