package activities

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// CleanupInput names the run whose leftovers CleanUpCanceled removes.
type CleanupInput struct {
	FeedID   string            `json:"feed_id"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
}

// CleanupResult counts the objects CleanUpCanceled removed.
type CleanupResult struct {
	QuarantineParts int64 `json:"quarantine_parts"`
	Checkpoints     int64 `json:"checkpoints"` // delivery and convert checkpoints, with Convert's unpublished Parquet parts
}

// CleanUpCanceled removes what a cancelled run of the feed made and no
// finished stage published: the quarantine parts of an unfinished put, the
// delivery and convert checkpoints, and Convert's Parquet parts not yet
// published. It keeps what finished stages published (the quarantine
// object, the feed's Parquet files, which Snowflake may have loaded) and
// the staging records, which Firehose wrote and the staging bucket's
// lifecycle rule expires. Objects already gone are not an error, so a retry
// (or a second cancel) is harmless.
func (a *Activities) CleanUpCanceled(ctx context.Context, in CleanupInput) (CleanupResult, error) {
	p := in.Pipeline
	var res CleanupResult
	n, err := a.removePrefix(ctx, p.QuarantineBucket, quarantinePartPrefix(p, in.FeedID))
	res.QuarantineParts = n
	if err != nil {
		return res, fmt.Errorf("clean up cancelled feed %s: %w", in.FeedID, err)
	}
	for _, prefix := range []string{DeliveryCheckpointPrefix(p, in.FeedID), ConvertCheckpointPrefix(p, in.FeedID)} {
		n, err := a.removePrefix(ctx, p.StagingBucket, prefix)
		res.Checkpoints += n
		if err != nil {
			return res, fmt.Errorf("clean up cancelled feed %s: %w", in.FeedID, err)
		}
	}
	a.log(ctx).Info("removed what the cancelled run left", "feed_id", in.FeedID, "quarantine_parts", res.QuarantineParts, "checkpoints", res.Checkpoints)
	return res, nil
}

// removePrefix deletes every object under prefix and says how many it
// deleted; the first failure ends it, to be retried.
func (a *Activities) removePrefix(ctx context.Context, bucket, prefix string) (int64, error) {
	var n int64
	err := a.listKeys(ctx, bucket, prefix, func(keys []string) error {
		for _, k := range keys {
			if _, err := a.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil && !isMissing(err) {
				return classifyAWS(err, fmt.Sprintf("remove s3://%s/%s", bucket, k))
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("remove s3://%s/%s*: %w", bucket, prefix, err)
	}
	return n, nil
}
