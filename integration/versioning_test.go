package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/workflows"
)

// A new worker build is rolled out with Worker Deployment Versioning: build
// 1's workers take runs once it is made current; build 2's workers start
// beside them and take nothing until build 2 is made current; then runs go
// to build 2, and build 1's workers can stop.
func TestWorkerBuildsRollOutByVersion(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	workerBin, starterBin, cli := buildCmd(t, ctx, "worker"), buildCmd(t, ctx, "starter"), buildCmd(t, ctx, "feedpipe")
	n := time.Now().UnixNano()
	cfgPath, bucket, _ := ownPipelines(t, ctx, "feedpipe-versions")
	deployment := fmt.Sprintf("feedpipe-test-%d", n)
	env := append(os.Environ(), stack.Env()...)
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// feed starts a run on the test's task queue and returns the build that
	// ran it, once it is done.
	feed := func(name string) string {
		t.Helper()
		body, _ := generate(t, feedgen.Options{Records: 50, Seed: 3})
		key := fmt.Sprintf("customers/%s-%d.ndjson", name, n)
		putObject(t, ctx, bucket, key, body)
		id := ""
		for _, l := range strings.Fields(run(starterBin, "start", "-config", cfgPath, "-bucket", bucket, "-key", key)) {
			if strings.HasPrefix(l, "feed/") {
				id = l
			}
		}
		var res workflows.FeedResult
		if err := tc.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		return desc.WorkflowExecutionInfo.GetVersioningInfo().GetDeploymentVersion().GetBuildId()
	}

	startServing(t, ctx, workerBin, "-config", cfgPath, "-temp-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0", "-build-id", "b1", "-deployment-name", deployment)
	if out := run(cli, "setup", "current-version", "-build-id", "b1", "-deployment-name", deployment); !strings.Contains(out, "build b1 is current (was unversioned workers)") {
		t.Errorf("setup current-version said %q", out)
	}
	if got := feed("one"); got != "b1" {
		t.Errorf("the first run ran on build %q, want b1", got)
	}
	startServing(t, ctx, workerBin, "-config", cfgPath, "-temp-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0", "-build-id", "b2", "-deployment-name", deployment)
	if got := feed("two"); got != "b1" {
		t.Errorf("with build 2 running but not current, a run ran on build %q, want b1", got)
	}
	if out := run(cli, "setup", "current-version", "-build-id", "b2", "-deployment-name", deployment); !strings.Contains(out, "build b2 is current (was build b1)") {
		t.Errorf("setup current-version said %q", out)
	}
	if got := feed("three"); got != "b2" {
		t.Errorf("after build 2 was made current, a run ran on build %q, want b2", got)
	}
}
