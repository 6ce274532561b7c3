package activities

import (
	"context"
	"sync"
	"time"

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
	work, cancel := context.WithCancel(ctx)
	b := &beat{ctx: ctx, cancel: cancel, every: every, details: details, moved: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
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
			stalled := time.Since(b.moved) >= stallLimit
			if !stalled {
				b.send()
			}
			b.mu.Unlock()
			if stalled {
				activity.GetLogger(b.ctx).Error("no progress for too long: stopping this attempt so that it is retried", "stall_limit", stallLimit)
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
