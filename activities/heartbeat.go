package activities

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/activity"
)

// stallLimit is how long a long activity may go without reporting progress
// (Progress or Touch) before its clock stops heartbeating for it and cancels
// its work: then Temporal's heartbeat timeout retries the stuck attempt,
// instead of a live clock hiding a hung call forever.
const stallLimit = 10 * time.Minute

// beat heartbeats an activity on a clock: every heartbeat_timeout/3 it sends
// the latest checkpoint, whatever the activity is doing (listing, reading,
// closing a Parquet file, uploading, merging). Progress records a new
// checkpoint and sends it at once; the worker's heartbeat throttle
// (MaxHeartbeatThrottleInterval) then delivers it to the server within about
// a second. A cancellation requested from the workflow reaches the activity
// through these heartbeats, as its context's cancellation.
//
// Every long activity goes through one: start it first, Stop it (deferred)
// last.
type beat struct {
	ctx     context.Context
	cancel  context.CancelFunc // ends the work of a stalled attempt
	every   time.Duration
	stall   time.Duration // stallLimit
	mu      sync.Mutex
	details any
	moved   time.Time // last Progress or Touch
	stop    chan struct{}
	done    chan struct{}
}

// startBeat starts the clock with details as the checkpoint so far (nil:
// none). The activity works under the returned context, which the clock
// cancels if the activity stalls.
func startBeat(ctx context.Context, details any) (context.Context, *beat) {
	every := 10 * time.Second
	if activity.IsActivity(ctx) {
		if t := activity.GetInfo(ctx).HeartbeatTimeout; t > 0 {
			every = t / 3
		}
	}
	return newBeat(ctx, details, every, stallLimit)
}

func newBeat(ctx context.Context, details any, every, stall time.Duration) (context.Context, *beat) {
	work, cancel := context.WithCancel(ctx)
	b := &beat{ctx: ctx, cancel: cancel, every: every, stall: stall, details: details, moved: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return work, b
}

func (b *beat) run() {
	defer close(b.done)
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.mu.Lock()
			stalled := time.Since(b.moved) >= b.stall
			if !stalled {
				b.send()
			}
			b.mu.Unlock()
			if stalled {
				if activity.IsActivity(b.ctx) {
					activity.GetLogger(b.ctx).Error("no progress for too long: stopping this attempt so that it is retried", "stall_limit", b.stall)
				}
				b.cancel()
				return
			}
		}
	}
}

// send heartbeats the current details; b.mu is held.
func (b *beat) send() {
	if !activity.IsActivity(b.ctx) {
		return
	}
	if b.details == nil {
		activity.RecordHeartbeat(b.ctx)
		return
	}
	activity.RecordHeartbeat(b.ctx, b.details)
}

// Progress records details as the activity's checkpoint and heartbeats it.
// details must not be changed afterwards (pass a copy).
func (b *beat) Progress(details any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.details, b.moved = details, time.Now()
	b.send()
}

// Touch says the activity is moving without a new checkpoint (a retry of a
// throttled call, a part of an upload).
func (b *beat) Touch() {
	b.mu.Lock()
	b.moved = time.Now()
	b.mu.Unlock()
}

// Stop ends the clock; it is safe to call more than once.
func (b *beat) Stop() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	b.cancel()
}

// Checkpoint objects: state too large for heartbeat details (a line set, the
// keys read) is kept gzip-compressed in S3, and the details point to it.

// lostCheckpoint says a checkpoint object cannot be used, and why: the stage
// then starts over, which is slower but never wrong.
type lostCheckpoint struct{ why string }

func (e *lostCheckpoint) Error() string { return "checkpoint lost: " + e.why }

// putCheckpoint writes what write produces, gzip-compressed, to bucket/key.
func (a *Activities) putCheckpoint(ctx context.Context, bucket, key string, write func(w io.Writer) error) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := write(zw); err != nil {
		return fmt.Errorf("checkpoint s3://%s/%s: %w", bucket, key, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("checkpoint s3://%s/%s: %w", bucket, key, err)
	}
	ctx, cancel := callContext(ctx)
	defer cancel()
	_, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(buf.Bytes())})
	return classifyAWS(err, fmt.Sprintf("save checkpoint s3://%s/%s", bucket, key))
}

// getCheckpoint hands the decompressed checkpoint bucket/key to read. A
// missing or damaged object is a *lostCheckpoint.
func (a *Activities) getCheckpoint(ctx context.Context, bucket, key string, read func(r *bufio.Reader) error) error {
	body, err := a.readObject(ctx, bucket, key)
	if err != nil {
		if ErrorTypeOf(err) == ErrNotFound {
			return &lostCheckpoint{fmt.Sprintf("s3://%s/%s not found", bucket, key)}
		}
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err == nil {
		err = read(bufio.NewReader(zr))
	}
	if err != nil {
		return &lostCheckpoint{fmt.Sprintf("s3://%s/%s is damaged: %v", bucket, key, err)}
	}
	return nil
}
