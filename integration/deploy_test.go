package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/feedpipe/feedpipe/deploy"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/provision"
)

// The local stack's AWS side is deploy/aws.yaml, deployed to MiniStack: the
// stack is complete, its outputs are what pipelines.local.toml names, and
// deploying it again changes nothing.
func TestLocalStackIsTheCloudFormationTemplate(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	c := clients()
	name := stack.Names.StackName
	out, err := c.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &name})
	if err != nil {
		t.Fatal(err)
	}
	if st := string(out.Stacks[0].StackStatus); st != "CREATE_COMPLETE" && st != "UPDATE_COMPLETE" {
		t.Fatalf("stack %s is %s", name, st)
	}
	// The outputs as CloudFormation reports them now (not the map
	// provisioning kept), against what the config names.
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	for _, p := range config.Pipelines {
		// conversion = "firehose" has a stream and delivery stream of its own.
		prefix, stream, delivery := "StagingPrefix", "Stream", "DeliveryStream"
		if p.Conversion == pipeline.ConvertFirehose {
			prefix, stream, delivery = "ParquetStagingPrefix", "ParquetStream", "ParquetDeliveryStream"
		}
		for _, f := range []struct{ output, key, want string }{
			{"SourceBucket", "source_bucket", p.SourceBucket},
			{"StagingBucket", "staging_bucket", p.StagingBucket},
			{prefix, "staging_prefix", p.StagingPrefix},
			{"DestinationBucket", "destination_bucket", p.DestBucket},
			{"QuarantineBucket", "quarantine_bucket", p.QuarantineBucket},
			{stream, "stream", p.Stream},
			{delivery, "delivery_stream", p.DeliveryStream},
		} {
			if outputs[f.output] != f.want {
				t.Errorf("pipeline %s: %s = %q, but the stack's %s output is %q", p.Name, f.key, f.want, f.output, outputs[f.output])
			}
		}
		if p.Conversion == pipeline.ConvertGlue && outputs["GlueJob"] != p.GlueJob {
			t.Errorf("pipeline %s: glue_job = %q, but the stack's GlueJob output is %q", p.Name, p.GlueJob, outputs["GlueJob"])
		}
	}
	queue, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(stack.Names.FeedQueue)})
	if err != nil {
		t.Fatal(err)
	}
	if outputs["FeedQueueUrl"] == "" || outputs["FeedQueueUrl"] != aws.ToString(queue.QueueUrl) {
		t.Errorf("FeedQueueUrl output %q, the feed queue %s is %q", outputs["FeedQueueUrl"], stack.Names.FeedQueue, aws.ToString(queue.QueueUrl))
	}
	if outputs["SnowflakeRoleArn"] == "" {
		t.Error("no SnowflakeRoleArn output for deploy/snowflake.sql")
	}

	again, err := provision.DeployStack(ctx, c.CFN, name, deploy.AWSTemplate, provision.StackParameters(stack.Names))
	if err != nil {
		t.Fatalf("deploying the same template again: %v", err)
	}
	if again["FeedQueueUrl"] != outputs["FeedQueueUrl"] || again["Stream"] != outputs["Stream"] {
		t.Errorf("deploying again changed the outputs: %v, were %v", again, outputs)
	}
}
