// Package provision creates, idempotently, the AWS and Snowflake resources a
// feedpipe pipeline runs on, from the files in deploy/: the CloudFormation
// template deploy/aws.yaml (buckets, queues, rule, stream, delivery stream,
// Glue job, roles) and deploy/snowflake.sql. The local stack calls it at
// every start, against its emulators; production deploys the same files with
// the AWS and Snowflake tools.
package provision

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/feedpipe/feedpipe/deploy"
	"github.com/feedpipe/feedpipe/internal/clients"
)

// GlueScript is the Python-shell Glue job that converts a feed's staged NDJSON
// records (listed in a manifest) to one Parquet file.
//
//go:embed glue/convert_ndjson.py
var GlueScript []byte

// Names are the resource names of one pipeline deployment.
type Names struct {
	SourceBucket     string // customers upload feeds here
	StagingBucket    string // Firehose writes records here
	StagingPrefix    string // Firehose's S3 prefix, e.g. "raw/"; each feed's records go under PREFIX/feed=<id>/
	DestBucket       string // Parquet files for Snowflake
	QuarantineBucket string // rejected lines
	FeedQueue        string // SQS queue of the source bucket's Object Created events
	FeedDLQ          string // dead-letter queue of FeedQueue: messages received FeedMaxReceives times
	FeedMaxReceives  int    // receives of one message before SQS moves it to FeedDLQ
	LoadQueue        string // SQS queue of the destination bucket's events (local Snowpipe stand-in)
	Stream           string // Kinesis data stream
	StreamShards     int32
	DeliveryStream   string // Firehose delivery stream (source: Stream)
	GlueJob          string // Python-shell job running GlueScript
	GlueScriptKey    string // key of GlueScript in StagingBucket
	GlueTimeout      int32  // the job's Timeout: minutes on AWS, seconds on MiniStack
	StackName        string // the CloudFormation stack of deploy/aws.yaml
	Snowflake        SnowflakeNames
	// Parquet staging, for pipelines with conversion = "firehose": a stream
	// and a delivery stream that converts records with a Glue table's
	// schema. No Glue table, none of them.
	ParquetGlueDatabase   string
	ParquetGlueTable      string
	ParquetColumns        []Column // the Glue table's columns, Hive types
	ParquetStream         string
	ParquetDeliveryStream string
	ParquetStagingPrefix  string
}

// DefaultNames is the layout the local stack and the demo use.
func DefaultNames() Names {
	return Names{
		SourceBucket:     "feedpipe-source",
		StagingBucket:    "feedpipe-staging",
		StagingPrefix:    "raw/",
		DestBucket:       "feedpipe-dest",
		QuarantineBucket: "feedpipe-quarantine",
		FeedQueue:        "feedpipe-feed-events",
		FeedDLQ:          "feedpipe-feed-events-dlq",
		FeedMaxReceives:  5,
		LoadQueue:        "feedpipe-load-events",
		Stream:           "feedpipe-records",
		StreamShards:     2,
		DeliveryStream:   "feedpipe-staging",
		GlueJob:          "feedpipe-convert",
		GlueScriptKey:    "_glue/convert_ndjson.py",
		GlueTimeout:      LocalGlueTimeout,
		StackName:        "feedpipe",
		Snowflake:        DefaultSnowflakeNames(),
		// The sample customers feed, as pipelines.local.toml's customers-parquet.
		ParquetGlueDatabase: "feedpipe",
		ParquetGlueTable:    "customers_staged",
		ParquetColumns: []Column{
			{"_feed_id", "string"}, {"_line", "bigint"}, {"id", "bigint"}, {"name", "string"}, {"email", "string"},
			{"country", "string"}, {"balance", "double"}, {"active", "boolean"}, {"signed_up", "string"},
		},
		ParquetStream:         "feedpipe-records-parquet",
		ParquetDeliveryStream: "feedpipe-staging-parquet",
		ParquetStagingPrefix:  "parquet/",
	}
}

// AWSClients are the service clients provisioning uses.
type AWSClients struct {
	S3          *s3.Client
	SQS         *sqs.Client
	Kinesis     *kinesis.Client
	Firehose    *firehose.Client
	Glue        *glue.Client
	EventBridge *eventbridge.Client
	CFN         *cloudformation.Client
}

// NewAWSClients makes every client from one aws.Config (which carries the
// region, credentials and, through AWS_ENDPOINT_URL, the endpoint). S3 uses
// path-style addressing when usePathStyle is set, as emulators need.
func NewAWSClients(cfg aws.Config, usePathStyle bool) AWSClients {
	return AWSClients{
		S3:          clients.NewS3(cfg, usePathStyle),
		SQS:         sqs.NewFromConfig(cfg),
		Kinesis:     kinesis.NewFromConfig(cfg),
		Firehose:    firehose.NewFromConfig(cfg),
		Glue:        glue.NewFromConfig(cfg),
		EventBridge: eventbridge.NewFromConfig(cfg),
		CFN:         cloudformation.NewFromConfig(cfg),
	}
}

// AWSResources are the identifiers provisioning found or created.
type AWSResources struct {
	FeedQueueURL string
	FeedDLQURL   string
	LoadQueueURL string
	GlueRoleARN  string
	// Outputs are the CloudFormation stack's outputs.
	Outputs map[string]string
}

// StackParameters are deploy/aws.yaml's parameters for n.
func StackParameters(n Names) map[string]string {
	return map[string]string{
		"SourceBucketName": n.SourceBucket, "StagingBucketName": n.StagingBucket, "DestinationBucketName": n.DestBucket,
		"QuarantineBucketName": n.QuarantineBucket, "StagingPrefix": n.StagingPrefix,
		"FeedQueueName": n.FeedQueue, "FeedDeadLetterQueueName": n.FeedDLQ, "FeedMaxReceives": strconv.Itoa(n.FeedMaxReceives),
		"StreamName": n.Stream, "StreamShards": strconv.Itoa(int(n.StreamShards)), "DeliveryStreamName": n.DeliveryStream,
		"GlueJobName": n.GlueJob, "GlueScriptKey": n.GlueScriptKey, "GlueTimeout": strconv.Itoa(int(n.GlueTimeout)),
		"ParquetGlueDatabase": n.ParquetGlueDatabase, "ParquetGlueTable": n.ParquetGlueTable, "ParquetStreamName": n.ParquetStream,
		"ParquetDeliveryStreamName": n.ParquetDeliveryStream, "ParquetStagingPrefix": n.ParquetStagingPrefix,
	}
}

// AWS deploys deploy/aws.yaml as the stack n.StackName (creating it, or
// updating it to the template), uploads the Glue script, and, for the local
// stack's Snowpipe stand-in, routes the destination bucket's Object Created
// events to n.LoadQueue (Snowflake's own queue takes them in production). It
// returns the identifiers the stack made. Running it again changes nothing.
func AWS(ctx context.Context, c AWSClients, n Names) (AWSResources, error) {
	var res AWSResources
	if err := refuseUnmanaged(ctx, c, n); err != nil {
		return res, err
	}
	if err := ensureGlueTable(ctx, c.Glue, n); err != nil {
		return res, err
	}
	out, err := DeployStack(ctx, c.CFN, n.StackName, deploy.AWSTemplate, StackParameters(n))
	if err != nil {
		return res, err
	}
	res.Outputs = out
	res.FeedQueueURL, res.FeedDLQURL, res.GlueRoleARN = out["FeedQueueUrl"], out["FeedDeadLetterQueueUrl"], out["GlueRoleArn"]
	// MiniStack hands a template's Number parameters to resources as
	// strings, and a Glue job whose Timeout is a string fails every run (its
	// runner compares it with a number) and every GetJob (the SDK expects a
	// number). The job is set again through the API, which keeps the type.
	if _, err := c.Glue.UpdateJob(ctx, &glue.UpdateJobInput{JobName: &n.GlueJob, JobUpdate: &gluetypes.JobUpdate{
		Role: aws.String(res.GlueRoleARN), Timeout: aws.Int32(n.GlueTimeout),
		Command: &gluetypes.JobCommand{Name: aws.String("pythonshell"), PythonVersion: aws.String("3.9"),
			ScriptLocation: aws.String("s3://" + n.StagingBucket + "/" + n.GlueScriptKey)},
		DefaultArguments: map[string]string{"library-set": "analytics"},
	}}); err != nil {
		return res, fmt.Errorf("set Glue job %s's Timeout to the number %d: %w", n.GlueJob, n.GlueTimeout, err)
	}
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &n.StagingBucket, Key: &n.GlueScriptKey, Body: strings.NewReader(string(GlueScript)),
	}); err != nil {
		return res, fmt.Errorf("upload Glue script to s3://%s/%s: %w", n.StagingBucket, n.GlueScriptKey, err)
	}
	if n.LoadQueue != "" {
		if res.LoadQueueURL, err = ObjectCreatedQueue(ctx, c, n.DestBucket, n.LoadQueue); err != nil {
			return res, err
		}
	}
	return res, nil
}

// refuseUnmanaged stops provisioning of an emulator whose resources an
// earlier feedpipe made with SDK calls: CloudFormation cannot create a
// bucket that exists.
func refuseUnmanaged(ctx context.Context, c AWSClients, n Names) error {
	exists, err := stackExists(ctx, c.CFN, n.StackName)
	if err != nil || exists {
		return err
	}
	if _, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &n.SourceBucket}); err == nil {
		return fmt.Errorf("bucket %s exists but CloudFormation stack %s does not: these resources were made by an earlier feedpipe without CloudFormation, which cannot adopt them. On the local stack, remove its run directory (.run/stack; its data is the emulators' only) and start again",
			n.SourceBucket, n.StackName)
	}
	return nil
}

// ObjectCreatedQueue routes the bucket's Object Created events through
// EventBridge to an SQS queue, creating what is missing: the queue, bucket
// notifications to EventBridge, a rule matching the bucket with the queue as
// its target, and a queue policy letting EventBridge send. It returns the
// queue URL.
func ObjectCreatedQueue(ctx context.Context, c AWSClients, bucket, queue string) (string, error) {
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: &queue,
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout):             "60",
			string(sqstypes.QueueAttributeNameReceiveMessageWaitTimeSeconds): "1",
		},
	})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", queue, err)
	}
	attrs, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("queue %s attributes: %w", queue, err)
	}
	queueARN := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]

	if _, err := c.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: &bucket,
		NotificationConfiguration: &s3types.NotificationConfiguration{
			EventBridgeConfiguration: &s3types.EventBridgeConfiguration{},
		},
	}); err != nil {
		return "", fmt.Errorf("enable EventBridge notifications on bucket %s: %w", bucket, err)
	}
	pattern, _ := json.Marshal(map[string]any{
		"source":      []string{"aws.s3"},
		"detail-type": []string{"Object Created"},
		"detail":      map[string]any{"bucket": map[string]any{"name": []string{bucket}}},
	})
	rule := queue + "-rule"
	r, err := c.EventBridge.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         &rule,
		EventPattern: aws.String(string(pattern)),
		Description:  aws.String("Object Created in " + bucket + " to SQS " + queue),
	})
	if err != nil {
		return "", fmt.Errorf("put EventBridge rule %s: %w", rule, err)
	}
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "events.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": aws.ToString(r.RuleArn)}},
		}},
	})
	if _, err := c.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: q.QueueUrl, Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		return "", fmt.Errorf("set policy of queue %s: %w", queue, err)
	}
	if _, err := c.EventBridge.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule:    &rule,
		Targets: []ebtypes.Target{{Id: aws.String("sqs"), Arn: &queueARN}},
	}); err != nil {
		return "", fmt.Errorf("target queue %s from rule %s: %w", queue, rule, err)
	}
	return aws.ToString(q.QueueUrl), nil
}

// DeadLetterQueue creates the queue dlq (14 days' retention, SQS's longest)
// and sets queueURL's redrive policy to move a message there after
// maxReceives receives. The policy is set on an existing queue too, so a
// deployment made before it gains it. A message the starter cannot use (not
// an S3 event, or a start that keeps failing) therefore ends in dlq, where an
// operator reads it, instead of coming back forever. It returns dlq's URL.
func DeadLetterQueue(ctx context.Context, c *sqs.Client, queueURL, dlq string, maxReceives int) (string, error) {
	if maxReceives < 1 {
		return "", fmt.Errorf("dead-letter queue %s: max receives %d, want at least 1", dlq, maxReceives)
	}
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  &dlq,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameMessageRetentionPeriod): "1209600"},
	})
	if err != nil {
		return "", fmt.Errorf("create dead-letter queue %s: %w", dlq, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("dead-letter queue %s attributes: %w", dlq, err)
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(maxReceives),
	})
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: &queueURL, Attributes: map[string]string{string(sqstypes.QueueAttributeNameRedrivePolicy): string(redrive)},
	}); err != nil {
		return "", fmt.Errorf("set redrive policy of %s to %s: %w", queueURL, dlq, err)
	}
	return aws.ToString(q.QueueUrl), nil
}

// LocalGlueTimeout is the Glue job's Timeout on the local stack: MiniStack
// reads it in seconds (AWS in minutes) and caps it at 600, so the template's
// production default (60) would kill a healthy run on a busy machine after a
// minute there.
const LocalGlueTimeout = 600

// ensureGlueTable makes the Glue database and table whose schema the Parquet
// delivery stream converts records with: the feed's schema is the pipelines
// config's, which the template cannot take as a parameter.
func ensureGlueTable(ctx context.Context, c *glue.Client, n Names) error {
	if n.ParquetGlueTable == "" {
		return nil
	}
	var exists *gluetypes.AlreadyExistsException
	if _, err := c.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: &n.ParquetGlueDatabase}}); err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create Glue database %s: %w", n.ParquetGlueDatabase, err)
	}
	var cols []gluetypes.Column
	for _, col := range n.ParquetColumns {
		cols = append(cols, gluetypes.Column{Name: aws.String(col.Name), Type: aws.String(col.Type)})
	}
	table := &gluetypes.TableInput{Name: &n.ParquetGlueTable, StorageDescriptor: &gluetypes.StorageDescriptor{Columns: cols}}
	_, err := c.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: &n.ParquetGlueDatabase, TableInput: table})
	if errors.As(err, &exists) {
		_, err = c.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: &n.ParquetGlueDatabase, TableInput: table})
	}
	if err != nil {
		return fmt.Errorf("Glue table %s.%s: %w", n.ParquetGlueDatabase, n.ParquetGlueTable, err)
	}
	return nil
}
