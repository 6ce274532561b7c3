package activities

import (
	"context"
	"testing"
	"time"
)

// The clock keeps an activity that reports progress alive, and cancels the
// work of one that stops reporting it, so a hung call cannot hide behind it.
func TestBeatCancelsAStalledAttempt(t *testing.T) {
	work, b := newBeat(context.Background(), nil, 5*time.Millisecond, 100*time.Millisecond)
	defer b.Stop()
	for range 10 { // 200 ms of progress: twice the stall limit
		time.Sleep(20 * time.Millisecond)
		b.Touch()
	}
	if work.Err() != nil {
		t.Fatal("the clock cancelled an attempt that was reporting progress")
	}
	select {
	case <-work.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the clock did not cancel an attempt that stopped reporting progress")
	}
}
