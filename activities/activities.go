// Package activities holds FeedWorkflow's activities, one file per stage:
// PutToKinesis, AwaitDelivery, Convert (local or Glue) and ConfirmIngestion.
// AWS and Snowflake clients are injected through Activities; record data
// moves between S3, Kinesis and Snowflake here and never through Temporal.
package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// S3API is the part of the S3 client the activities use.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// KinesisAPI is the part of the Kinesis client PutToKinesis uses.
type KinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// GlueAPI is the part of the Glue client the glue conversion mode uses.
type GlueAPI interface {
	StartJobRun(ctx context.Context, in *glue.StartJobRunInput, opts ...func(*glue.Options)) (*glue.StartJobRunOutput, error)
	GetJobRun(ctx context.Context, in *glue.GetJobRunInput, opts ...func(*glue.Options)) (*glue.GetJobRunOutput, error)
	GetJobRuns(ctx context.Context, in *glue.GetJobRunsInput, opts ...func(*glue.Options)) (*glue.GetJobRunsOutput, error)
}

// Activities carries the clients every stage needs. Register a *Activities
// with the worker; the workflow calls its methods by name.
type Activities struct {
	S3        S3API
	Kinesis   KinesisAPI
	Glue      GlueAPI
	Snowflake *sql.DB
	Logger    *slog.Logger
	// TempDir holds the local converter's Parquet file before upload.
	TempDir string
}

// log is the activity's logger: inside an activity, the SDK's, which names
// the workflow, run, activity type and attempt; outside one (a direct call
// from a tool or a test), Logger.
func (a *Activities) log(ctx context.Context) tlog.Logger {
	if activity.IsActivity(ctx) {
		return activity.GetLogger(ctx)
	}
	if a.Logger == nil {
		return slog.Default()
	}
	return a.Logger
}

// Error types the workflow does not retry: retrying cannot fix them.
const (
	ErrBadInput        = "BadInput"                // the feed itself is malformed
	ErrRejectThreshold = "RejectThresholdExceeded" // too many bad lines
	ErrNotFound        = "NotFound"                // a bucket, object, stream or job is missing
	ErrAccessDenied    = "AccessDenied"            // credentials lack a permission
	ErrDelivery        = "DeliveryIncomplete"      // Firehose did not deliver every record in time
	ErrGlueRun         = "GlueRunFailed"           // the Glue job run failed
	ErrLoad            = "LoadFailed"              // Snowflake failed or partially loaded the file
	ErrRowCount        = "RowCountMismatch"        // Snowflake loaded another number of rows
	ErrIngestTimeout   = "IngestionNotConfirmed"   // Snowflake did not load the file in time
	ErrVersions        = "VersionsTableUnusable"   // the versions table of a replace pipeline is missing or not granted
)

// NonRetryable lists the error types above, for RetryPolicy.NonRetryableErrorTypes.
var NonRetryable = []string{ErrBadInput, ErrRejectThreshold, ErrNotFound, ErrAccessDenied, ErrDelivery,
	ErrGlueRun, ErrLoad, ErrRowCount, ErrIngestTimeout, ErrQuarantine, ErrVersions}

func nonRetryable(typ string, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}

// classifyAWS turns AWS errors that retrying cannot fix into non-retryable
// ones that name the resource and the fix; throttling and 5xx stay retryable.
func classifyAWS(err error, what string) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket", "NoSuchKey", "NotFound", "ResourceNotFoundException", "EntityNotFoundException":
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: %s does not exist (%s); create it or fix the pipeline config", what, what, api.ErrorCode()), ErrNotFound, err)
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: access denied (%s); grant the worker's role the permission", what, api.ErrorCode()), ErrAccessDenied, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func isPreconditionFailed(err error) bool { return apiCode(err) == "PreconditionFailed" }

func isRangeNotSatisfiable(err error) bool { return apiCode(err) == "InvalidRange" }

// ErrorTypeOf returns the Temporal application error type inside err, or "".
func ErrorTypeOf(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

func isNonRetryable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}
