// Package doctor checks that every resource a pipelines config names exists
// and is set up as feedpipe needs it: the buckets and their notifications,
// the event queue and its dead-letter queue, the stream, the delivery
// stream's source, prefix and partitioning, the Glue job, the Snowflake
// table, stage, pipe and versions table, and the Temporal namespace, its
// search attributes and the task queue's workers. Each check says what is
// wrong and how to fix it.
package doctor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/searchattr"
)

// Check is one thing the doctor looked at.
type Check struct {
	Name    string // what, e.g. "bucket feedpipe-source reachable"
	OK      bool
	Problem string // what is wrong (when not OK)
	Fix     string // what to do about it
}

// Deps are the clients the checks use. A nil client's checks fail with the
// setting that provides it.
type Deps struct {
	S3        *s3.Client
	SQS       *sqs.Client
	Kinesis   *kinesis.Client
	Firehose  *firehose.Client
	Glue      *glue.Client
	Snowflake *sql.DB
	Temporal  client.Client
	Namespace string
	// SnowflakeErr and TemporalErr say why a client is nil.
	SnowflakeErr, TemporalErr error
}

// Options are what the config does not say.
type Options struct {
	// QueueURL is the starter's feed queue (its -queue), checked when set.
	QueueURL string
	// ForWorker checks only what a worker calls (buckets, streams, Glue
	// jobs, Snowflake), not the event path, the delivery streams or Temporal:
	// the worker's own check before it starts.
	ForWorker bool
}

// doctor runs the checks, each resource once.
type doctor struct {
	d       Deps
	checks  []Check
	seen    map[string]bool // resources checked
	healthy map[string]bool // resources whose check passed
	// forWorker skips the checks of what the worker does not call.
	forWorker bool
}

func (dr *doctor) once(key string) bool {
	if dr.seen[key] {
		return false
	}
	dr.seen[key] = true
	return true
}

func (dr *doctor) ok(name string) { dr.checks = append(dr.checks, Check{Name: name, OK: true}) }

func (dr *doctor) fail(name, problem, fix string) {
	dr.checks = append(dr.checks, Check{Name: name, Problem: problem, Fix: fix})
}

// Run checks every resource of cfg and returns the checks in order.
func Run(ctx context.Context, d Deps, cfg *pipeline.Config, opt Options) []Check {
	dr := &doctor{d: d, seen: map[string]bool{}, healthy: map[string]bool{}, forWorker: opt.ForWorker}
	for _, p := range cfg.Pipelines {
		dr.pipelineAWS(ctx, p)
	}
	if opt.QueueURL != "" {
		dr.queue(ctx, opt.QueueURL)
	}
	for _, p := range cfg.Pipelines {
		dr.snowflake(ctx, p)
	}
	if !opt.ForWorker {
		dr.temporal(ctx, cfg.TaskQueue)
	}
	return dr.checks
}

// Print writes the checks, ✓ or ✗ with the problem and the fix, and says
// whether all passed.
func Print(w io.Writer, checks []Check) bool {
	all := true
	for _, c := range checks {
		if c.OK {
			fmt.Fprintf(w, "✓ %s\n", c.Name)
			continue
		}
		all = false
		fmt.Fprintf(w, "✗ %s: %s\n", c.Name, c.Problem)
		if c.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", c.Fix)
		}
	}
	bad := 0
	for _, c := range checks {
		if !c.OK {
			bad++
		}
	}
	fmt.Fprintf(w, "%d checks, %d failed\n", len(checks), bad)
	return all
}

const templateFix = "deploy deploy/aws.yaml (see the README's Deploying section) or fix the pipelines config"

func (dr *doctor) pipelineAWS(ctx context.Context, p pipeline.Pipeline) {
	for _, b := range []struct{ key, bucket string }{
		{"source_bucket", p.SourceBucket}, {"staging_bucket", p.StagingBucket},
		{"destination_bucket", p.DestBucket}, {"quarantine_bucket", p.QuarantineBucket},
	} {
		if dr.once("bucket " + b.bucket) {
			dr.bucket(ctx, p, b.key, b.bucket)
		}
	}
	// A check whose resource's own check failed is skipped: its failure
	// would only repeat the first.
	if !dr.forWorker && dr.healthy["bucket "+p.SourceBucket] && dr.once("notifications "+p.SourceBucket) {
		dr.notifications(ctx, p.SourceBucket)
	}
	if dr.once("stream " + p.Stream) {
		dr.stream(ctx, p)
	}
	if !dr.forWorker && dr.healthy["stream "+p.Stream] && dr.healthy["bucket "+p.StagingBucket] &&
		dr.once("delivery "+p.DeliveryStream+" "+p.StagingBucket+" "+p.StagingPrefix) {
		dr.deliveryStream(ctx, p)
	}
	if p.Conversion == pipeline.ConvertGlue && dr.once("glue "+p.GlueJob) {
		dr.glueJob(ctx, p)
	}
}

func (dr *doctor) bucket(ctx context.Context, p pipeline.Pipeline, key, bucket string) {
	name := fmt.Sprintf("bucket %s (%s) reachable", bucket, key)
	if dr.d.S3 == nil {
		dr.fail(name, "no AWS configuration", "set AWS_REGION and credentials (the SDK's default chain)")
		return
	}
	if _, err := dr.d.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		dr.fail(name, fmt.Sprintf("pipeline %s: %v", p.Name, short(err)), templateFix+"; a 403 means the role lacks s3:ListBucket on it")
		return
	}
	dr.healthy["bucket "+bucket] = true
	dr.ok(name)
}

func (dr *doctor) notifications(ctx context.Context, bucket string) {
	name := fmt.Sprintf("bucket %s sends its events to EventBridge", bucket)
	if dr.d.S3 == nil {
		return
	}
	out, err := dr.d.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(bucket)})
	switch {
	case err != nil:
		dr.fail(name, short(err), "grant s3:GetBucketNotification, or check the bucket by hand")
	case out.EventBridgeConfiguration == nil:
		dr.fail(name, "EventBridge notifications are off, so no upload reaches the starter",
			fmt.Sprintf("aws s3api put-bucket-notification-configuration --bucket %s --notification-configuration '{\"EventBridgeConfiguration\":{}}'", bucket))
	default:
		dr.ok(name)
	}
}

func (dr *doctor) queue(ctx context.Context, url string) {
	name := "feed queue " + url + " has a dead-letter queue"
	if dr.d.SQS == nil {
		dr.fail(name, "no AWS configuration", "set AWS_REGION and credentials")
		return
	}
	out, err := dr.d.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy}})
	if err != nil {
		dr.fail("feed queue "+url+" reachable", short(err), templateFix+", or pass the stack's FeedQueueUrl output as -queue")
		return
	}
	if out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)] == "" {
		dr.fail(name, "no redrive policy: a message the starter cannot use comes back forever",
			"deploy deploy/aws.yaml, which gives the queue a dead-letter queue after 5 receives, or set a RedrivePolicy on it")
		return
	}
	dr.ok(name)
}

func (dr *doctor) stream(ctx context.Context, p pipeline.Pipeline) {
	name := fmt.Sprintf("Kinesis stream %s active", p.Stream)
	if dr.d.Kinesis == nil {
		dr.fail(name, "no AWS configuration", "set AWS_REGION and credentials")
		return
	}
	out, err := dr.d.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(p.Stream)})
	if err != nil {
		dr.fail(name, fmt.Sprintf("pipeline %s: %v", p.Name, short(err)), templateFix)
		return
	}
	if st := out.StreamDescriptionSummary.StreamStatus; st != "ACTIVE" && st != "UPDATING" {
		dr.fail(name, fmt.Sprintf("status %s", st), "wait for it to become ACTIVE, or deploy the stack again")
		return
	}
	dr.healthy["stream "+p.Stream] = true
	dr.ok(name)
}

// StagingLayout is the prefix a delivery stream must write to: each feed's
// records under the staging prefix, partitioned by _feed_id.
func StagingLayout(p pipeline.Pipeline) string {
	return p.StagingPrefix + "feed=!{partitionKeyFromQuery:feed_id}/"
}

func (dr *doctor) deliveryStream(ctx context.Context, p pipeline.Pipeline) {
	name := fmt.Sprintf("Firehose delivery stream %s reads %s and writes each feed to s3://%s/%s", p.DeliveryStream, p.Stream, p.StagingBucket, StagingLayout(p))
	if dr.d.Firehose == nil {
		dr.fail(name, "no AWS configuration", "set AWS_REGION and credentials")
		return
	}
	out, err := dr.d.Firehose.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String(p.DeliveryStream)})
	if err != nil {
		dr.fail(name, fmt.Sprintf("pipeline %s: %v", p.Name, short(err)), templateFix)
		return
	}
	desc := out.DeliveryStreamDescription
	var problems []string
	if src := desc.Source; src == nil || src.KinesisStreamSourceDescription == nil ||
		!strings.HasSuffix(aws.ToString(src.KinesisStreamSourceDescription.KinesisStreamARN), ":stream/"+p.Stream) {
		problems = append(problems, "its source is not the stream "+p.Stream)
	}
	var s3d bool
	for _, d := range desc.Destinations {
		e := d.ExtendedS3DestinationDescription
		if e == nil {
			continue
		}
		s3d = true
		if got := aws.ToString(e.BucketARN); !strings.HasSuffix(got, ":::"+p.StagingBucket) {
			problems = append(problems, fmt.Sprintf("it writes to %s, not the staging bucket %s", got, p.StagingBucket))
		}
		if got := aws.ToString(e.Prefix); !strings.HasPrefix(got, StagingLayout(p)) {
			problems = append(problems, fmt.Sprintf("its prefix is %q, not %s… (every stage after delivery would read the other feeds' records)", got, StagingLayout(p)))
		}
		if dp := e.DynamicPartitioningConfiguration; dp == nil || !aws.ToBool(dp.Enabled) {
			problems = append(problems, "dynamic partitioning is off")
		}
		conv := e.DataFormatConversionConfiguration
		converts := conv != nil && aws.ToBool(conv.Enabled) && conv.OutputFormatConfiguration != nil &&
			conv.OutputFormatConfiguration.Serializer != nil && conv.OutputFormatConfiguration.Serializer.ParquetSerDe != nil
		switch {
		case p.Conversion == pipeline.ConvertFirehose && !converts:
			problems = append(problems, `the pipeline's conversion is "firehose" but the delivery stream does not convert records to Parquet`)
		case p.Conversion != pipeline.ConvertFirehose && converts:
			problems = append(problems, fmt.Sprintf("it converts records to Parquet, but the pipeline's conversion is %q, which reads JSON staging objects", p.Conversion))
		}
	}
	if !s3d {
		problems = append(problems, "it has no extended S3 destination")
	}
	if len(problems) > 0 {
		dr.fail(name, strings.Join(problems, "; "),
			"dynamic partitioning can be set only when a delivery stream is created: once the feeds in flight have finished, delete it and deploy deploy/aws.yaml again")
		return
	}
	dr.ok(name)
}

func (dr *doctor) glueJob(ctx context.Context, p pipeline.Pipeline) {
	name := fmt.Sprintf("Glue job %s is a Python-shell job", p.GlueJob)
	if dr.d.Glue == nil {
		dr.fail(name, "no AWS configuration", "set AWS_REGION and credentials")
		return
	}
	out, err := dr.d.Glue.GetJob(ctx, &glue.GetJobInput{JobName: aws.String(p.GlueJob)})
	if err != nil {
		dr.fail(name, fmt.Sprintf("pipeline %s: %v", p.Name, short(err)), templateFix)
		return
	}
	if cmd := out.Job.Command; cmd == nil || aws.ToString(cmd.Name) != "pythonshell" {
		dr.fail(name, "its command is not pythonshell", "deploy deploy/aws.yaml, whose job runs internal/provision/glue/convert_ndjson.py")
		return
	}
	dr.ok(name)
}

func (dr *doctor) snowflake(ctx context.Context, p pipeline.Pipeline) {
	sf := p.Snowflake
	ns := sf.Database + "." + sf.Schema + "."
	table := ns + sf.Table
	if dr.d.Snowflake == nil {
		if dr.once("snowflake connection") {
			problem := "no Snowflake connection configured"
			if dr.d.SnowflakeErr != nil {
				problem = dr.d.SnowflakeErr.Error()
			}
			dr.fail("Snowflake reachable", problem, "set SNOWFLAKE_DSN, or SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PRIVATE_KEY_PATH")
		}
		return
	}
	if dr.once("table " + table) {
		name := fmt.Sprintf("Snowflake table %s has _FEED_ID and _LINE", table)
		if err := dr.query(ctx, "SELECT _FEED_ID, _LINE FROM "+table+" LIMIT 0"); err != nil {
			dr.fail(name, fmt.Sprintf("pipeline %s: %v", p.Name, short(err)), "run deploy/snowflake.sql, and grant the worker's role SELECT and DELETE on the table")
		} else {
			dr.ok(name)
		}
	}
	if sf.Stage != "" && dr.once("stage "+ns+sf.Stage) {
		dr.stage(ctx, p)
	}
	if p.OnNewVersion == pipeline.NewVersionReplace && dr.once("versions "+ns+p.VersionsTable) {
		name := fmt.Sprintf("Snowflake versions table %s%s (on_new_version = replace)", ns, p.VersionsTable)
		cols := strings.Join(columnNames(pipeline.VersionsColumns), ", ")
		if err := dr.query(ctx, "SELECT "+cols+" FROM "+ns+p.VersionsTable+" LIMIT 0"); err != nil {
			dr.fail(name, short(err), fmt.Sprintf("run deploy/snowflake.sql (CREATE TABLE IF NOT EXISTS %s%s (%s)) and grant the worker's role SELECT, INSERT and UPDATE on it (a table made by an earlier feedpipe needs ALTER TABLE %s%s ADD COLUMN CONFIRMED BOOLEAN)", ns, p.VersionsTable, pipeline.VersionsColumns, ns, p.VersionsTable))
		} else {
			dr.ok(name)
		}
	}
	if sf.Pipe != "" && p.Confirm == pipeline.ConfirmCopyHistory && dr.once("pipe "+ns+sf.Pipe) {
		name := fmt.Sprintf("Snowflake pipe %s%s running", ns, sf.Pipe)
		st, err := activities.PipeState(ctx, dr.d.Snowflake, p)
		switch {
		case err != nil:
			dr.fail(name, short(err), "run deploy/snowflake.sql, and grant the worker's role MONITOR on the pipe")
		case !st.Running():
			dr.fail(name, st.String(), fmt.Sprintf("ALTER PIPE %s%s SET PIPE_EXECUTION_PAUSED = FALSE if paused; otherwise fix what the status names", ns, sf.Pipe))
		default:
			dr.ok(name)
		}
	}
}

// stage checks that the stage exists on the destination bucket's root (so
// COPY_HISTORY's file names are the S3 keys the confirm step looks for).
func (dr *doctor) stage(ctx context.Context, p pipeline.Pipeline) {
	sf := p.Snowflake
	want := "s3://" + p.DestBucket + "/"
	name := fmt.Sprintf("Snowflake stage %s.%s.%s on %s", sf.Database, sf.Schema, sf.Stage, want)
	rows, err := dr.d.Snowflake.QueryContext(ctx, "SHOW STAGES IN SCHEMA "+sf.Database+"."+sf.Schema)
	if err != nil {
		dr.fail(name, short(err), "run deploy/snowflake.sql")
		return
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	nameAt, urlAt := -1, -1
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "name":
			nameAt = i
		case "url":
			urlAt = i
		}
	}
	if nameAt < 0 || urlAt < 0 {
		dr.fail(name, fmt.Sprintf("SHOW STAGES answered columns %v, without name and url", cols), "check the stage by hand: DESC STAGE")
		return
	}
	found := ""
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			dr.fail(name, "SHOW STAGES: "+err.Error(), "check the stage by hand: DESC STAGE")
			return
		}
		if strings.EqualFold(vals[nameAt].String, sf.Stage) {
			found = vals[urlAt].String
			if found == "" {
				found = "(no URL)"
			}
		}
	}
	if err := rows.Err(); err != nil {
		dr.fail(name, "SHOW STAGES: "+short(err), "check the stage by hand: DESC STAGE")
		return
	}
	switch {
	case found == "":
		dr.fail(name, "no such stage", "run deploy/snowflake.sql")
	case found != want:
		dr.fail(name, "its URL is "+found, fmt.Sprintf("the stage's URL must be the bucket's root, %s, so that load history names files by their S3 keys: recreate it with deploy/snowflake.sql", want))
	default:
		dr.ok(name)
	}
}

func (dr *doctor) query(ctx context.Context, q string) error {
	rows, err := dr.d.Snowflake.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	return rows.Close()
}

func columnNames(defs string) []string {
	var out []string
	for _, d := range strings.Split(defs, ",") {
		if f := strings.Fields(d); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

func (dr *doctor) temporal(ctx context.Context, taskQueue string) {
	ns := dr.d.Namespace
	if dr.d.Temporal == nil {
		problem := "no Temporal connection"
		if dr.d.TemporalErr != nil {
			problem = dr.d.TemporalErr.Error()
		}
		dr.fail("Temporal reachable", problem, "set TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the credentials (TEMPORAL_API_KEY or mTLS)")
		return
	}
	name := "Temporal namespace " + ns + " reachable"
	if _, err := dr.d.Temporal.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
		dr.fail(name, short(err), "check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the credentials (TEMPORAL_API_KEY or mTLS)")
		return
	}
	dr.ok(name)

	name = "Temporal namespace " + ns + " has feedpipe's search attributes"
	have, err := dr.d.Temporal.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		dr.fail(name, short(err), "feedpipe setup temporal -print-cloud-command names them")
	} else {
		var missing []string
		for attr, typ := range searchattr.Definitions() {
			got, ok := have.GetCustomAttributes()[attr]
			if !ok {
				got = have.GetSystemAttributes()[attr]
			}
			if got != typ {
				missing = append(missing, attr)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			dr.fail(name, "missing or of another type: "+strings.Join(missing, ", "),
				"start the worker (it adds them) or run feedpipe setup temporal; on Temporal Cloud: "+searchattr.CloudCommand(ns, missing))
		} else {
			dr.ok(name)
		}
	}

	name = "task queue " + taskQueue + " has a worker polling"
	out, err := dr.d.Temporal.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	switch {
	case err != nil:
		dr.fail(name, short(err), "")
	case len(out.GetPollers()) == 0:
		dr.fail(name, "no worker has polled it lately, so runs would wait", "start cmd/worker with this config (its task_queue is "+taskQueue+")")
	default:
		dr.ok(fmt.Sprintf("%s (%d pollers, e.g. %s)", name, len(out.GetPollers()), pollerID(out.GetPollers()[0])))
	}
}

func pollerID(p *taskqueuepb.PollerInfo) string { return p.GetIdentity() }

// short is an error's message without the SDK's wrapping of operation and
// request ids, where it has them.
func short(err error) string {
	msg := err.Error()
	var re interface{ ErrorMessage() string }
	if errors.As(err, &re) && re.ErrorMessage() != "" {
		if code, ok := err.(interface{ ErrorCode() string }); ok {
			return code.ErrorCode() + ": " + re.ErrorMessage()
		}
	}
	if i := strings.LastIndex(msg, "api error "); i >= 0 {
		return msg[i+len("api error "):]
	}
	return msg
}
