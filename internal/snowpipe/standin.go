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
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/feedpipe/feedpipe/deploy"
	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/s3event"
	"github.com/feedpipe/feedpipe/internal/sfconn"
)

// StandIn plays Snowpipe for one table and stage.
type StandIn struct {
	sqs      *sqs.Client
	db       *sql.DB
	queueURL string
	names    provision.SnowflakeNames
	log      *slog.Logger
	wg       sync.WaitGroup
	copies   map[string]string // the pipe's COPY by destination bucket, made once (Run's goroutine only)
}

// NewStandIn returns a stand-in that reads queueURL and loads into names.Table.
func NewStandIn(c *sqs.Client, db *sql.DB, queueURL string, names provision.SnowflakeNames, log *slog.Logger) *StandIn {
	s := &StandIn{sqs: c, db: db, queueURL: queueURL, names: names, log: log, copies: map[string]string{}}
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
			if err := s.handle(ctx, aws.ToString(m.Body)); err != nil {
				// Left on the queue: SQS hands it out again after its
				// visibility timeout.
				s.log.Warn("snowpipe stand-in: Snowflake unreachable; the file is loaded again later", "err", err)
				continue
			}
			if _, err := s.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &s.queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
				s.log.Warn("snowpipe stand-in: delete message", "err", err)
			}
		}
	}
}

// copyStatement is the pipe's COPY for one file, from deploy/snowflake.sql
// parsed once per bucket.
func (s *StandIn) copyStatement(bucket, key string) (string, error) {
	copy, ok := s.copies[bucket]
	if !ok {
		var err error
		if copy, err = provision.PipeCopy(s.names, bucket); err != nil {
			return "", err
		}
		s.copies[bucket] = copy
	}
	return deploy.CopyFile(copy, key)
}

// Wait blocks until Run has returned.
func (s *StandIn) Wait() { s.wg.Wait() }

// handle loads the files an event names. It returns an error only when
// Snowflake could not be reached (the message is then kept for a retry);
// COPY INTO itself skips files it loaded before.
func (s *StandIn) handle(ctx context.Context, body string) error {
	objs, err := s3event.Parse(body)
	if errors.Is(err, s3event.ErrNotObjectCreated) {
		return nil
	}
	if err != nil {
		s.log.Warn("snowpipe stand-in: unreadable event, dropped", "err", err)
		return nil
	}
	for _, o := range objs {
		stmt, err := s.copyStatement(o.Bucket, o.Key)
		if err != nil {
			s.log.Error("snowpipe stand-in: no COPY for the file", "bucket", o.Bucket, "key", o.Key, "err", err)
			continue
		}
		// Snowpipe records a failed load in COPY_HISTORY/LOAD_HISTORY and
		// moves on; so does the stand-in (fakesnow records successful loads).
		// The workflow's ingestion check is what notices a file that never loads.
		err = sfconn.Do(ctx, s.db, func(c *sql.Conn) error {
			rows, err := c.QueryContext(ctx, stmt)
			if err == nil {
				rows.Close()
			}
			return err
		})
		switch {
		case sfconn.ConnectionLost(err) || isUnreachable(err):
			return fmt.Errorf("COPY INTO for s3://%s/%s: %w", o.Bucket, o.Key, err)
		case err != nil:
			s.log.Warn("snowpipe stand-in: COPY INTO failed", "bucket", o.Bucket, "key", o.Key, "err", err)
			continue
		}
		s.log.Info("snowpipe stand-in: loaded", "bucket", o.Bucket, "key", o.Key, "table", s.names.Table)
	}
	return nil
}

// isUnreachable reports whether err says the server did not answer at all.
func isUnreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
