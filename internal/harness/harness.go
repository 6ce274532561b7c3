// Package harness runs feedpipe's real binaries against the local stack and
// checks what they did: generated feeds uploaded through the real event
// path, runs followed to their close, rows counted in Snowflake. `make demo`,
// `make load` and `make chaos` share it.
package harness

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/workflows"
)

// Bins are the paths of the built binaries.
type Bins struct {
	Worker, Starter, Feedpipe string
}

// Build builds cmd/worker, cmd/starter and cmd/feedpipe (the operator's
// tool) from the repository at root into dir.
func Build(ctx context.Context, root, dir string) (Bins, error) {
	var b Bins
	for name, out := range map[string]*string{"worker": &b.Worker, "starter": &b.Starter, "feedpipe": &b.Feedpipe} {
		*out = filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *out, "./cmd/"+name)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return Bins{}, fmt.Errorf("build cmd/%s: %v\n%s", name, err, msg)
		}
	}
	return b, nil
}

// Feed is one generated feed for a pipeline's source bucket.
type Feed struct {
	Ref   feed.Ref // its ETag once uploaded
	Stats feedgen.Stats
	Body  []byte
}

// Generate makes n customers feeds of records lines (every badEvery-th one
// malformed) named PREFIX<name>-NNN.ndjson under the pipeline's source.
func Generate(p *pipeline.Pipeline, name string, n, records, badEvery int) ([]Feed, error) {
	feeds := make([]Feed, n)
	seed := uint64(time.Now().UnixNano())
	for i := range feeds {
		var b bytes.Buffer
		st, err := feedgen.Write(&b, feedgen.Options{Records: records, BadEvery: badEvery, Seed: seed + uint64(i)})
		if err != nil {
			return nil, err
		}
		feeds[i] = Feed{Body: b.Bytes(), Stats: st, Ref: feed.Ref{Bucket: p.SourceBucket,
			Key: fmt.Sprintf("%s%s-%03d.ndjson", p.SourcePrefix, name, i), Size: int64(b.Len())}}
	}
	return feeds, nil
}

// Upload puts the feeds at once; each S3 event starts a run through
// EventBridge, SQS and the starter.
func Upload(ctx context.Context, c *s3.Client, feeds []Feed) error {
	g, ctx := errgroup.WithContext(ctx)
	for i := range feeds {
		g.Go(func() error {
			f := &feeds[i]
			out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.Ref.Bucket, Key: &f.Ref.Key, Body: bytes.NewReader(f.Body)})
			if err != nil {
				return fmt.Errorf("upload s3://%s/%s: %w", f.Ref.Bucket, f.Ref.Key, err)
			}
			f.Ref.ETag = strings.Trim(aws.ToString(out.ETag), `"`)
			return nil
		})
	}
	return g.Wait()
}

// WaitClosed waits until ref's run has closed and returns its result (a
// failed run's result from its error's details). check is called on each
// look; an error from it ends the wait.
func WaitClosed(ctx context.Context, tc client.Client, ref feed.Ref, check func() error) (workflows.FeedResult, error) {
	id := ref.WorkflowID()
	for {
		if check != nil {
			if err := check(); err != nil {
				return workflows.FeedResult{}, err
			}
		}
		desc, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err == nil && desc.WorkflowExecutionInfo.CloseTime != nil {
			var res workflows.FeedResult
			err := tc.GetWorkflow(ctx, id, desc.WorkflowExecutionInfo.Execution.RunId).Get(ctx, &res)
			if d, ok := workflows.Details(err); ok {
				res = d
			}
			return res, err
		}
		select {
		case <-ctx.Done():
			return workflows.FeedResult{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Rows counts a feed's rows in the pipeline's table, and how many distinct
// lines they hold: rows > lines means a line was loaded twice.
func Rows(ctx context.Context, db *sql.DB, p *pipeline.Pipeline, feedID string) (rows, lines int64, err error) {
	err = db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT _LINE) FROM "+p.Snowflake.Table+" WHERE _FEED_ID = ?", feedID).Scan(&rows, &lines)
	if err != nil {
		return 0, 0, fmt.Errorf("count the rows of feed %s: %w", feedID, err)
	}
	return rows, lines, nil
}

// QuietLogger drops the Temporal client's own log lines from a harness's
// output.
type QuietLogger struct{}

// Debug implements log.Logger.
func (QuietLogger) Debug(string, ...any) {}

// Info implements log.Logger.
func (QuietLogger) Info(string, ...any) {}

// Warn implements log.Logger.
func (QuietLogger) Warn(string, ...any) {}

// Error implements log.Logger.
func (QuietLogger) Error(string, ...any) {}
