package activities

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// partSize is the size of each part of a multipart upload: S3 allows 10,000
// parts, so files of up to 160 GiB upload; a smaller file is one PutObject.
const partSize = 16 << 20

// UploadState is a multipart upload's checkpoint: its id and the parts S3
// has acknowledged, in order.
type UploadState struct {
	ID    string       `json:"id,omitempty"`
	Parts []UploadPart `json:"parts,omitempty"`
}

// UploadPart is one acknowledged part.
type UploadPart struct {
	Number int32  `json:"n"`
	ETag   string `json:"etag"`
}

// uploadFile uploads path to bucket/key. Files over partSize go up in parts;
// st carries the upload id and the finished parts, and progress receives it
// after each part, so that a retry continues an interrupted upload instead
// of sending it again. An upload id S3 no longer knows starts a new upload.
func (a *Activities) uploadFile(ctx context.Context, bucket, key, path string, meta map[string]string, st *UploadState, progress func(UploadState)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload to s3://%s/%s: %w", bucket, key, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload to s3://%s/%s: %w", bucket, key, err)
	}
	size := info.Size()
	if size <= partSize {
		ctx, cancel := callContext(ctx)
		defer cancel()
		_, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: io.NewSectionReader(f, 0, size),
			ContentLength: aws.Int64(size), Metadata: meta})
		return classifyAWS(err, fmt.Sprintf("put s3://%s/%s", bucket, key))
	}
	if st.ID == "" {
		cctx, cancel := callContext(ctx)
		out, err := a.S3.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, Metadata: meta})
		cancel()
		if err != nil {
			return classifyAWS(err, fmt.Sprintf("start multipart upload of s3://%s/%s", bucket, key))
		}
		*st = UploadState{ID: aws.ToString(out.UploadId)}
		progress(*st)
	}
	parts := int32((size + partSize - 1) / partSize)
	for n := int32(len(st.Parts)) + 1; n <= parts; n++ {
		off := int64(n-1) * partSize
		length := min(partSize, size-off)
		cctx, cancel := callContext(ctx)
		out, err := a.S3.UploadPart(cctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: &st.ID, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(f, off, length), ContentLength: aws.Int64(length)})
		cancel()
		if err != nil {
			if apiCode(err) == "NoSuchUpload" {
				// Aborted or expired: begin again, on this attempt.
				*st = UploadState{}
				progress(*st)
				return a.uploadFile(ctx, bucket, key, path, meta, st, progress)
			}
			return classifyAWS(err, fmt.Sprintf("upload part %d of %d of s3://%s/%s", n, parts, bucket, key))
		}
		st.Parts = append(st.Parts, UploadPart{Number: n, ETag: aws.ToString(out.ETag)})
		progress(*st)
	}
	done := make([]s3types.CompletedPart, len(st.Parts))
	for i, p := range st.Parts {
		done[i] = s3types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	cctx, cancel := callContext(ctx)
	defer cancel()
	if _, err := a.S3.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &st.ID,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
		if apiCode(err) == "NoSuchUpload" {
			// Completed by an attempt that died before it could say so?
			if _, herr := a.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); herr == nil {
				return nil
			}
			*st = UploadState{}
			progress(*st)
			return a.uploadFile(ctx, bucket, key, path, meta, st, progress)
		}
		return classifyAWS(err, fmt.Sprintf("complete multipart upload of s3://%s/%s", bucket, key))
	}
	return nil
}

// abortUpload abandons a multipart upload that will not be completed, whose parts
// would otherwise be stored (and billed) until a lifecycle rule removes them.
func (a *Activities) abortUpload(ctx context.Context, bucket, key string, st UploadState) {
	if st.ID == "" {
		return
	}
	ctx, cancel := callContext(context.WithoutCancel(ctx)) // also when the attempt is being cancelled
	defer cancel()
	if _, err := a.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &st.ID}); err != nil {
		a.log(ctx).Warn("convert: could not abort an earlier multipart upload", "key", key, "upload", st.ID, "err", err)
	}
}
