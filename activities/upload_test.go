package activities

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// failingPartS3 fails UploadPart of one part number once.
type failingPartS3 struct {
	*memS3
	failPart int32
}

func (f *failingPartS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, o ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if aws.ToInt32(in.PartNumber) == f.failPart {
		f.failPart = 0
		return nil, errors.New("connection reset by peer")
	}
	return f.memS3.UploadPart(ctx, in, o...)
}

// A file over one part goes up in parts; an upload interrupted after part 1
// continues at part 2 with the same upload id, and the object is the file.
func TestUploadFileResumesAtTheFirstUnfinishedPart(t *testing.T) {
	data := make([]byte, 2*partSize+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m := &failingPartS3{memS3: newMemS3(), failPart: 2}
	a := &Activities{S3: m}
	var st UploadState
	var seen []UploadState
	progress := func(u UploadState) { seen = append(seen, u) }
	err := a.uploadFile(context.Background(), "dst", "k", path, nil, &st, progress)
	if err == nil || st.ID == "" || len(st.Parts) != 1 {
		t.Fatalf("first attempt: err %v, state %+v; want a failure after part 1", err, st)
	}
	id := st.ID
	if err := a.uploadFile(context.Background(), "dst", "k", path, nil, &st, progress); err != nil {
		t.Fatal(err)
	}
	if st.ID != id || len(st.Parts) != 3 || m.partsUploaded != 3 {
		t.Errorf("state %+v after %d UploadPart calls; want upload %s continued with parts 2 and 3 only", st, m.partsUploaded, id)
	}
	if !bytes.Equal(m.objs["dst/k"], data) {
		t.Errorf("uploaded object differs from the file (%d bytes, want %d)", len(m.objs["dst/k"]), len(data))
	}
	if len(seen) == 0 || len(seen[len(seen)-1].Parts) != 3 {
		t.Errorf("progress saw %d states, last %+v", len(seen), seen[len(seen)-1])
	}
}
