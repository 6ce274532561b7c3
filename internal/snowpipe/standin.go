// Package snowpipe holds the local stack's stand-in for Snowpipe auto-ingest.
// Neither MiniStack nor fakesnow has Snowpipe: StandIn listens to the
// destination bucket's Object Created events (EventBridge → SQS) and runs the
// pipe's COPY INTO for each new file, as Snowpipe would. It exists only for
// the local stack; against real Snowflake, Snowpipe itself does this.
package snowpipe

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/s3event"
)

// StandIn plays Snowpipe for one table and stage.
type StandIn struct {
	sqs      *sqs.Client
	db       *sql.DB
	queueURL string
	names    provision.SnowflakeNames
	log      *slog.Logger
	wg       sync.WaitGroup
}

// NewStandIn returns a stand-in that reads queueURL and loads into names.Table.
func NewStandIn(c *sqs.Client, db *sql.DB, queueURL string, names provision.SnowflakeNames, log *slog.Logger) *StandIn {
	s := &StandIn{sqs: c, db: db, queueURL: queueURL, names: names, log: log}
	s.wg.Add(1)
	return s
}

// Run loads files until ctx ends. A message whose COPY fails stays on the
// queue and is retried after its visibility timeout, like Snowpipe's retries.
func (s *StandIn) Run(ctx context.Context) {
	defer s.wg.Done()
	defer s.db.Close()
	for ctx.Err() == nil {
		out, err := s.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &s.queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("snowpipe stand-in: receive", "queue", s.queueURL, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for _, m := range out.Messages {
			s.handle(ctx, aws.ToString(m.Body))
			if _, err := s.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &s.queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
				s.log.Warn("snowpipe stand-in: delete message", "err", err)
			}
		}
	}
}

// Wait blocks until Run has returned.
func (s *StandIn) Wait() { s.wg.Wait() }

func (s *StandIn) handle(ctx context.Context, body string) {
	objs, err := s3event.Parse(body)
	if errors.Is(err, s3event.ErrNotObjectCreated) {
		return
	}
	if err != nil {
		s.log.Warn("snowpipe stand-in: unreadable event, dropped", "err", err)
		return
	}
	for _, o := range objs {
		stmt := provision.CopyStatement(s.names, o.Key)
		// Snowpipe records a failed load in COPY_HISTORY/LOAD_HISTORY and
		// moves on; so does the stand-in (fakesnow records successful loads).
		// The workflow's ingestion check is what notices a file that never loads.
		rows, err := s.db.QueryContext(ctx, stmt)
		if err != nil {
			s.log.Warn("snowpipe stand-in: COPY INTO failed", "bucket", o.Bucket, "key", o.Key, "err", err)
			continue
		}
		rows.Close()
		s.log.Info("snowpipe stand-in: loaded", "bucket", o.Bucket, "key", o.Key, "table", s.names.Table)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
