package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// ownPipelines writes a copy of pipelines.local.toml whose pipelines read
// a new source bucket (without events) and whose worker polls a new task
// queue, so the package's shared worker and listener see none of its runs.
// It returns the config's path, the bucket and the task queue.
func ownPipelines(t *testing.T, ctx context.Context, prefix string) (cfgPath, bucket, taskQueue string) {
	t.Helper()
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	n := time.Now().UnixNano()
	bucket, taskQueue = fmt.Sprintf("%s-%d", prefix, n), fmt.Sprintf("%s-%d", prefix, n)
	if _, err := clients().S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "pipelines.local.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(src), `"`+stack.Names.SourceBucket+`"`, `"`+bucket+`"`)
	cfg = strings.Replace(cfg, `task_queue = "feedpipe"`, fmt.Sprintf("task_queue = %q", taskQueue), 1)
	if !strings.Contains(cfg, taskQueue) || !strings.Contains(cfg, bucket) {
		t.Fatal("pipelines.local.toml no longer has the task_queue line or the source bucket this test replaces")
	}
	cfgPath = filepath.Join(t.TempDir(), "pipelines.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, bucket, taskQueue
}
