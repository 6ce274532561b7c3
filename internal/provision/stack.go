package provision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"
)

// DeployStack creates the CloudFormation stack name from template, or updates
// it when it exists, waits until it is done and returns its outputs. A stack
// that is already as the template and parameters say is left alone. A
// failure names the resources that failed and why.
func DeployStack(ctx context.Context, c *cloudformation.Client, name, template string, params map[string]string) (map[string]string, error) {
	var ps []cfntypes.Parameter
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps = append(ps, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
	}
	caps := []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}
	exists, err := stackExists(ctx, c, name)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	if exists {
		_, err = c.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: &name, TemplateBody: &template, Parameters: ps, Capabilities: caps})
		var ae smithy.APIError
		if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "No updates are to be performed") {
			return stackOutputs(ctx, c, name)
		}
		if err != nil {
			return nil, fmt.Errorf("update CloudFormation stack %s: %w", name, err)
		}
	} else {
		if _, err := c.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: &name, TemplateBody: &template, Parameters: ps, Capabilities: caps,
			OnFailure: cfntypes.OnFailureDelete}); err != nil {
			return nil, fmt.Errorf("create CloudFormation stack %s: %w", name, err)
		}
	}
	if err := waitStack(ctx, c, name, started); err != nil {
		return nil, err
	}
	return stackOutputs(ctx, c, name)
}

func stackExists(ctx context.Context, c *cloudformation.Client, name string) (bool, error) {
	out, err := c.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &name})
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "does not exist") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe CloudFormation stack %s: %w", name, err)
	}
	for _, s := range out.Stacks {
		if s.StackStatus != cfntypes.StackStatusDeleteComplete {
			return true, nil
		}
	}
	return false, nil
}

// waitStack waits for the stack's create or update to end.
func waitStack(ctx context.Context, c *cloudformation.Client, name string, since time.Time) error {
	delay := 100 * time.Millisecond
	for {
		out, err := c.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &name})
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "does not exist") {
				// Deleted on failure: the events still say why.
				return fmt.Errorf("CloudFormation stack %s failed and was deleted: %s", name, failures(ctx, c, name, since))
			}
			return fmt.Errorf("describe CloudFormation stack %s: %w", name, err)
		}
		st := out.Stacks[0].StackStatus
		s := string(st)
		switch {
		case s == "CREATE_COMPLETE" || s == "UPDATE_COMPLETE":
			return nil
		case strings.HasSuffix(s, "_FAILED") || strings.Contains(s, "ROLLBACK") && strings.HasSuffix(s, "_COMPLETE"):
			return fmt.Errorf("CloudFormation stack %s ended %s (%s): %s", name, s, aws.ToString(out.Stacks[0].StackStatusReason), failures(ctx, c, name, since))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CloudFormation stack %s still %s: %w", name, s, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// failures lists the resources whose create or update failed since, with
// CloudFormation's reason.
func failures(ctx context.Context, c *cloudformation.Client, name string, since time.Time) string {
	out, err := c.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: &name})
	if err != nil {
		return "(its events: " + err.Error() + ")"
	}
	var msgs []string
	for _, e := range out.StackEvents {
		if e.Timestamp != nil && e.Timestamp.Before(since.Add(-time.Second)) {
			continue
		}
		if strings.HasSuffix(string(e.ResourceStatus), "_FAILED") && aws.ToString(e.LogicalResourceId) != name {
			msgs = append(msgs, fmt.Sprintf("%s (%s): %s", aws.ToString(e.LogicalResourceId), aws.ToString(e.ResourceType), aws.ToString(e.ResourceStatusReason)))
		}
	}
	if len(msgs) == 0 {
		return "no resource reported a failure"
	}
	return strings.Join(msgs, "; ")
}

func stackOutputs(ctx context.Context, c *cloudformation.Client, name string) (map[string]string, error) {
	out, err := c.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &name})
	if err != nil {
		return nil, fmt.Errorf("describe CloudFormation stack %s: %w", name, err)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return outputs, nil
}
