package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	fhtypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/doctor"
	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// `feedpipe doctor` on the local stack, as an operator runs it: every check
// passes, and it exits 0.
func TestDoctorPassesOnTheLocalStack(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, buildCmd(t, ctx, "feedpipe"), "doctor", "-config", filepath.Join(root, "pipelines.local.toml"), "-queue", stack.AWS.FeedQueueURL)
	cmd.Env = append(os.Environ(), stack.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "✗") {
		t.Fatalf("feedpipe doctor: %v\n%s", err, out)
	}
	t.Logf("feedpipe doctor:\n%s", out)
	for _, want := range []string{"✓ bucket feedpipe-source (source_bucket) reachable", "✓ bucket feedpipe-source sends its events to EventBridge",
		"has a dead-letter queue", "✓ Kinesis stream feedpipe-records active", "✓ Firehose delivery stream feedpipe-staging reads feedpipe-records",
		"✓ Glue job feedpipe-convert is a Python-shell job", "✓ Snowflake table FEEDPIPE.RAW.CUSTOMERS has _FEED_ID and _LINE",
		"✓ Snowflake stage FEEDPIPE.RAW.FEEDPIPE_DEST on s3://feedpipe-dest/", "✓ Snowflake versions table FEEDPIPE.RAW.FEEDPIPE_VERSIONS",
		"has feedpipe's search attributes", "✓ task queue feedpipe has a worker polling", "checks, 0 failed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor's output lacks %q:\n%s", want, out)
		}
	}
}

// One broken resource at a time: the doctor fails exactly that check, with
// what is wrong and a fix.
func TestDoctorNamesEachBrokenResource(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	c := clients()
	db := openSnowflake(t)
	n := time.Now().UnixNano()
	base := config.Pipelines[0] // customers: local conversion, replace
	glueBase, parquetBase := base, base
	for _, p := range config.Pipelines {
		switch p.Conversion {
		case pipeline.ConvertGlue:
			glueBase = p
		case pipeline.ConvertFirehose:
			parquetBase = p
		}
	}
	deps := doctor.Deps{S3: c.S3, SQS: c.SQS, Kinesis: c.Kinesis, Firehose: c.Firehose, Glue: c.Glue, Snowflake: db, Temporal: tc, Namespace: stack.TemporalNamespace}

	// Resources the cases need.
	quiet := fmt.Sprintf("doctor-quiet-%d", n)
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &quiet}); err != nil {
		t.Fatal(err)
	}
	plain, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("doctor-plain-%d", n))})
	if err != nil {
		t.Fatal(err)
	}
	summary, err := c.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &base.Stream})
	if err != nil {
		t.Fatal(err)
	}
	flat := fmt.Sprintf("doctor-flat-%d", n)
	if _, err := c.Firehose.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: &flat, DeliveryStreamType: fhtypes.DeliveryStreamTypeKinesisStreamAsSource,
		KinesisStreamSourceConfiguration: &fhtypes.KinesisStreamSourceConfiguration{KinesisStreamARN: summary.StreamDescriptionSummary.StreamARN, RoleARN: aws.String("arn:aws:iam::000000000000:role/x")},
		ExtendedS3DestinationConfiguration: &fhtypes.ExtendedS3DestinationConfiguration{BucketARN: aws.String("arn:aws:s3:::" + base.StagingBucket),
			RoleARN: aws.String("arn:aws:iam::000000000000:role/x"), Prefix: aws.String(base.StagingPrefix)},
	}); err != nil {
		t.Fatal(err)
	}
	noIDs := fmt.Sprintf("DOCTOR_NO_IDS_%d", n)
	wrongStage := fmt.Sprintf("DOCTOR_STAGE_%d", n)
	for _, q := range []string{"CREATE TABLE " + noIDs + " (ID BIGINT)", "CREATE STAGE " + wrongStage + " URL = 's3://" + base.DestBucket + "/elsewhere/'"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	bare := fmt.Sprintf("doctor-bare-%d", n)
	if _, err := tc.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: bare, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		edit     func(p *pipeline.Pipeline, d *doctor.Deps, o *doctor.Options, taskQueue *string)
		check    string // the failing check's name contains
		problem  string // and its problem
		eventual bool
	}{
		{"missing source bucket", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) {
			p.SourceBucket = "doctor-nope"
		},
			"bucket doctor-nope (source_bucket) reachable", "pipeline customers", false},
		{"notifications off", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) { p.SourceBucket = quiet },
			"bucket " + quiet + " sends its events to EventBridge", "EventBridge notifications are off", false},
		{"queue without dead-letter queue", func(_ *pipeline.Pipeline, _ *doctor.Deps, o *doctor.Options, _ *string) {
			o.QueueURL = aws.ToString(plain.QueueUrl)
		},
			"has a dead-letter queue", "no redrive policy", false},
		{"missing stream", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) { p.Stream = "doctor-nope" },
			"Kinesis stream doctor-nope active", "pipeline customers", false},
		{"delivery stream without partitioning", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) { p.DeliveryStream = flat },
			"Firehose delivery stream " + flat, "dynamic partitioning is off", false},
		{"firehose conversion on a delivery stream that does not convert", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) {
			*p = parquetBase
			p.Stream, p.DeliveryStream, p.StagingPrefix = base.Stream, base.DeliveryStream, base.StagingPrefix
		}, "Firehose delivery stream " + base.DeliveryStream, "does not convert records to Parquet", false},
		{"missing Glue job", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) {
			*p = glueBase
			p.GlueJob = "doctor-nope"
		}, "Glue job doctor-nope", "pipeline customers-glue", false},
		{"missing table", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) {
			p.Snowflake.Table = "DOCTOR_NOPE"
		},
			"Snowflake table FEEDPIPE.RAW.DOCTOR_NOPE", "DOCTOR_NOPE", false},
		{"table without _FEED_ID", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) { p.Snowflake.Table = noIDs },
			"Snowflake table FEEDPIPE.RAW." + noIDs + " has _FEED_ID and _LINE", "_FEED_ID", false},
		{"stage not on the bucket's root", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) {
			p.Snowflake.Stage = wrongStage
		},
			"Snowflake stage FEEDPIPE.RAW." + wrongStage, "its URL is s3://" + base.DestBucket + "/elsewhere/", false},
		{"missing versions table", func(p *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, _ *string) {
			p.VersionsTable = "DOCTOR_NOPE_VERSIONS"
		},
			"versions table FEEDPIPE.RAW.DOCTOR_NOPE_VERSIONS", "DOCTOR_NOPE_VERSIONS", false},
		{"namespace without search attributes", func(_ *pipeline.Pipeline, d *doctor.Deps, _ *doctor.Options, _ *string) { d.Namespace = bare },
			"Temporal namespace " + bare + " has feedpipe's search attributes", "missing or of another type: FeedBucket", true},
		{"no worker on the task queue", func(_ *pipeline.Pipeline, _ *doctor.Deps, _ *doctor.Options, q *string) { *q = "doctor-nobody" },
			"task queue doctor-nobody has a worker polling", "no worker has polled it", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, d, o, q := base, deps, doctor.Options{QueueURL: stack.AWS.FeedQueueURL}, config.TaskQueue
			tc.edit(&p, &d, &o, &q)
			var failed []doctor.Check
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
				failed = failedChecks(ctx, d, &pipeline.Config{TaskQueue: q, Pipelines: []pipeline.Pipeline{p}}, o)
				// A new namespace reaches every part of the server within its cache refresh.
				if !tc.eventual || len(failed) == 1 && !strings.Contains(failed[0].Problem, "not found") || time.Now().After(deadline) {
					break
				}
			}
			if len(failed) != 1 || !strings.Contains(failed[0].Name, tc.check) || !strings.Contains(failed[0].Problem, tc.problem) || failed[0].Fix == "" {
				t.Fatalf("failed checks %+v\nwant only %q with a problem naming %q, and a fix", failed, tc.check, tc.problem)
			}
		})
	}
}

func failedChecks(ctx context.Context, d doctor.Deps, cfg *pipeline.Config, o doctor.Options) []doctor.Check {
	var failed []doctor.Check
	for _, c := range doctor.Run(ctx, d, cfg, o) {
		if !c.OK {
			failed = append(failed, c)
		}
	}
	return failed
}
