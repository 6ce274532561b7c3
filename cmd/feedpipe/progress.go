package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/feedpipe/feedpipe/internal/runs"
	"github.com/feedpipe/feedpipe/internal/termprogress"
)

// countingReader counts the bytes read through it, for a progress line
// (internal/convert has no progress hook of its own; its input is the
// measure).
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readProgress is the progress line of reading total bytes (0: not known)
// since start, with done read so far.
func readProgress(verb string, done, total int64, since time.Duration) string {
	rate := 0.0
	if since > 0 {
		rate = float64(done) / since.Seconds()
	}
	if total <= 0 {
		return fmt.Sprintf("%s: %s read, %s/s, ETA unknown (input size not known)", verb, runs.Bytes(done), runs.Bytes(int64(rate)))
	}
	s := fmt.Sprintf("%s: %s of %s (%.1f%%), %s/s", verb, runs.Bytes(done), runs.Bytes(total), 100*float64(done)/float64(total), runs.Bytes(int64(rate)))
	if eta, ok := runs.ETA(done, total, rate); ok {
		return s + ", ETA " + runs.Duration(eta).String()
	}
	return s + ", ETA unknown"
}

// showProgress redraws the line from c every 200 ms until the returned
// stop is called, which clears it. On no terminal it does nothing.
func showProgress(line *termprogress.Line, verb string, c *countingReader, total int64) (stop func()) {
	if !line.Terminal() {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line.Set(readProgress(verb, c.n.Load(), total, time.Since(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		line.Clear()
	}
}
