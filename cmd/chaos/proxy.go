package main

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/faultproxy"
)

// The faults of AWS itself, injected by a proxy between the worker and
// MiniStack (the worker's AWS_ENDPOINT_URL points at it): throttling, 5xx,
// slow answers, connections reset mid-body, and calls held while the worker
// is killed.

// awsFaults is the proxy's setting for the aws-faults case: half of the
// PutRecords entries refused, S3 reads answered 500/503 or held 2–5 s, and
// source reads cut mid-body: every one at first (see proxyFaultsInjected),
// then sourceResets of them.
func awsFaults(sourceBucket string) faultproxy.Config {
	return faultproxy.Config{
		Seed:    uint64(time.Now().UnixNano()),
		Kinesis: faultproxy.KinesisFaults{FailFraction: 0.5},
		S3Get:   faultproxy.S3Faults{ErrorFraction: 0.05, HoldFraction: 0.01},
		S3List:  faultproxy.S3Faults{ErrorFraction: 0.1, HoldFraction: 0.05},
		Reset:   faultproxy.ResetFaults{Bucket: sourceBucket, Fraction: 1},
	}
}

// sourceResets is the share of source reads cut mid-body once the first
// ones have been: a feed reads its source a few times only, so a share
// alone could cut none.
const sourceResets = 0.3

// proxyFaultsInjected lets the first source reads be cut mid-body, then cuts
// only sourceResets of them (every one, for ever, would cut each retried
// read before its first batch); once the runs have closed, it fails unless
// the proxy injected every kind of fault it was set for.
func proxyFaultsInjected(ctx context.Context, e *env) error {
	for e.proxy.Stats().Resets < 3 && sleep(ctx, 20*time.Millisecond) {
	}
	cfg := e.proxy.Config()
	cfg.Reset.Fraction = sourceResets
	if err := e.proxy.SetConfig(cfg); err != nil {
		return err
	}
	e.note("%d source reads cut mid-body; from now on %.0f %% of them", e.proxy.Stats().Resets, 100*sourceResets)
	<-ctx.Done()
	st := e.proxy.Stats()
	e.note("proxy: %d PutRecords entries failed, %d S3 reads answered 500/503 (%d GET, %d LIST), %d held 2–5 s, %d source reads cut mid-body, %d forward errors",
		st.FailedEntries, st.GetErrors+st.ListErrors, st.GetErrors, st.ListErrors, st.GetHolds+st.ListHolds, st.Resets, st.ForwardErrors)
	var missing []string
	for name, n := range map[string]int{"failed entries": st.FailedEntries, "GET errors": st.GetErrors, "LIST errors": st.ListErrors,
		"holds": st.GetHolds + st.ListHolds, "resets": st.Resets} {
		if n == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the proxy injected no %s", strings.Join(missing, ", "))
	}
	return nil
}

// killsMidWrite holds the worker's writes that must be all or nothing — the
// merged quarantine object (PutObject to the quarantine bucket) and the
// publication of the Parquet files (CopyObject to the destination bucket) —
// and SIGKILLs the worker while one is held, twice each. A held call whose
// worker died is never forwarded, so the write happens only when a retried
// attempt makes it again.
func killsMidWrite(ctx context.Context, e *env) error {
	merged := "/" + e.p.QuarantineBucket + "/" + path.Dir(activities.QuarantineKey(*e.p, "x")) + "/" // the merged objects, not their parts
	dest := "/" + e.p.DestBucket + "/"
	writes := []struct {
		what  string
		match func(*http.Request) bool
	}{
		{"the merged quarantine object's PutObject", func(r *http.Request) bool {
			dir, name := path.Split(r.URL.Path)
			return r.Method == http.MethodPut && dir == merged && strings.HasSuffix(name, ".ndjson") && r.Header.Get("X-Amz-Copy-Source") == ""
		}},
		{"the Parquet publication's CopyObject", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, dest) && r.Header.Get("X-Amz-Copy-Source") != ""
		}},
	}
	for _, w := range writes {
		for range 2 {
			before := e.proxy.Stats().Holds
			e.proxy.Hold(w.match, 3*time.Second)
			for e.proxy.Stats().Holds == before {
				if !sleep(ctx, 50*time.Millisecond) {
					e.proxy.ClearHolds()
					return fmt.Errorf("no run made %s: %w", w.what, ctx.Err())
				}
			}
			abandoned := e.proxy.Stats().Abandoned
			stages := e.killWorker(ctx)
			e.proxy.ClearHolds()
			e.note("worker SIGKILLed while %s was held (%s)", w.what, stages)
			if !sleep(ctx, 3*time.Second) {
				return ctx.Err()
			}
			if e.proxy.Stats().Abandoned == abandoned {
				return fmt.Errorf("the kill did not land inside %s: no held call was abandoned", w.what)
			}
			if _, err := e.startWorker(); err != nil {
				return err
			}
		}
	}
	e.note("%d held writes abandoned by their killed workers, never forwarded", e.proxy.Stats().Abandoned)
	return nil
}
