package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/feedgen"
	"github.com/feedpipe/feedpipe/internal/runs"
	"github.com/feedpipe/feedpipe/workflows"
)

// feedpipeCLI runs the built feedpipe binary against the stack and returns
// its stdout; a failure includes its stderr.
func feedpipeCLI(t *testing.T, ctx context.Context, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), stack.Env()...)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("feedpipe %s: %v\n%s", strings.Join(args, " "), err, exit.Stderr)
		}
		t.Fatalf("feedpipe %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// waitStarted waits until the listener has started the run for ref.
func waitStarted(t *testing.T, ctx context.Context, ref feed.Ref) {
	t.Helper()
	for {
		if _, err := tc.DescribeWorkflowExecution(ctx, ref.WorkflowID(), ""); err == nil {
			return
		} else if ctx.Err() != nil {
			t.Fatalf("no run %s was started: %v", ref.WorkflowID(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The operator's view of runs, through the real binary: `feedpipe runs`
// finds runs by their search attributes with their counts, `feedpipe
// status` shows a finished run's result and a failed run's error, and, for
// a running run, the live progress its activity heartbeats.
func TestRunsAndStatusCLI(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	bin := buildCmd(t, ctx, "feedpipe")
	stamp := time.Now().UnixNano()
	// A big feed, to be caught while it runs, a clean one and one over the
	// reject threshold, all at once.
	bigBody, _ := generate(t, feedgen.Options{Records: 20000, Seed: 21})
	big := upload(t, ctx, fmt.Sprintf("customers/runs-live-%d.ndjson", stamp), bigBody)
	cleanBody, _ := generate(t, feedgen.Options{Records: 300, Seed: 22})
	clean := upload(t, ctx, fmt.Sprintf("customers/runs-clean-%d.ndjson", stamp), cleanBody)
	overBody, _ := generate(t, feedgen.Options{Records: 100, BadEvery: 10, Seed: 23})
	over := upload(t, ctx, fmt.Sprintf("customers/runs-over-%d.ndjson", stamp), overBody)

	t.Run("live progress", func(t *testing.T) {
		waitStarted(t, ctx, big)
		terminated := false
		terminate := func() {
			if !terminated {
				terminated = true
				if err := tc.TerminateWorkflow(ctx, big.WorkflowID(), "", "runs_test: live progress seen"); err != nil {
					t.Errorf("terminate %s: %v", big.WorkflowID(), err)
				}
			}
		}
		defer terminate()
		for {
			var st runs.Status
			decodeJSON(t, feedpipeCLI(t, ctx, bin, "status", "-workflow-id", big.WorkflowID(), "-sample", "1s", "-json"), &st)
			if !st.Running() {
				t.Fatalf("the run ended (%s) before its progress was seen", st.Status)
			}
			var live *runs.Activity
			for i, a := range st.Activities {
				if (a.Type == "PutToKinesis" || a.Type == "CheckDelivery") && a.Done > 0 {
					live = &st.Activities[i]
				}
			}
			if live == nil {
				if ctx.Err() != nil {
					t.Fatalf("no pending activity with progress seen; last status %+v", st)
				}
				continue
			}
			if live.Attempt < 1 || live.LastHeartbeat.IsZero() || live.Total <= 0 || live.ETAText == "" || live.Summary == "" {
				t.Errorf("live progress %+v: want attempt, heartbeat time, a total, an ETA (or why not) and a summary", *live)
			}
			if st.Stage != workflows.StagePut && st.Stage != workflows.StageDelivery {
				t.Errorf("stage %s with %s pending", st.Stage, live.Type)
			}
			// (The query runs a moment after the description: the stage may
			// have moved on.)
			if st.Progress == nil || !slices.Contains(workflows.RunningStages(), st.Progress.Stage) {
				t.Errorf("the workflow's own view %+v (%s), want a running stage", st.Progress, st.ProgressError)
			}
			t.Logf("live: %s %s of %d %s: %s; rate %.0f/s from %s; ETA %s", live.Type, runs.Count(live.Done), live.Total, live.Unit, live.Summary, live.Rate, live.RateFrom, live.ETAText)
			t.Logf("feedpipe status (text):\n%s", feedpipeCLI(t, ctx, bin, "status", "-workflow-id", big.WorkflowID(), "-sample", "2s"))
			var running []runs.Run
			decodeJSON(t, feedpipeCLI(t, ctx, bin, "runs", "-running", "-pipeline", "customers", "-json"), &running)
			if !hasRun(running, big.WorkflowID()) {
				t.Errorf("runs -running does not list %s: %+v", big.WorkflowID(), running)
			}

			// -watch in a pipe: a line per change while it runs, the full
			// view once it has ended, then it exits.
			var watchOut strings.Builder
			watch := exec.CommandContext(ctx, bin, "status", "-workflow-id", big.WorkflowID(), "-watch", "-every", "1s")
			watch.Env, watch.Stdout, watch.Stderr = append(os.Environ(), stack.Env()...), &watchOut, os.Stderr
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second)
			terminate()
			if err := watch.Wait(); err != nil {
				t.Errorf("status -watch: %v\n%s", err, watchOut.String())
			}
			w := watchOut.String()
			if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d Running `).MatchString(w) || !regexp.MustCompile(`(?m)^status +Terminated after `).MatchString(w) ||
				!regexp.MustCompile(`(?m)^error +Terminated: `).MatchString(w) {
				t.Errorf("status -watch printed:\n%s\nwant Running lines, then the view of the terminated run", w)
			}
			t.Logf("feedpipe status -watch (in a pipe):\n%s", w)
			return
		}
	})

	t.Run("completed", func(t *testing.T) {
		res, err := waitRun(t, ctx, clean)
		if err != nil {
			t.Fatalf("run failed: %v", err)
		}
		var found *runs.Run
		for found == nil {
			var rs []runs.Run
			decodeJSON(t, feedpipeCLI(t, ctx, bin, "runs", "-pipeline", "customers", "-stage", "Done", "-since", "15m", "-limit", "1000", "-json"), &rs)
			for i := range rs {
				if rs[i].WorkflowID == clean.WorkflowID() {
					found = &rs[i]
				}
			}
			if found == nil {
				if ctx.Err() != nil {
					t.Fatalf("runs -pipeline customers -stage Done does not list %s", clean.WorkflowID())
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		if found.Status != "Completed" || found.Stage != "Done" || found.Pipeline != "customers" || found.Key != clean.Key ||
			found.Read != res.Counts.Read || found.Rejected != res.Counts.Rejected || found.Loaded != res.Counts.Loaded || found.Duration <= 0 {
			t.Errorf("run %+v, want Completed, Done, counts of %+v", *found, res.Counts)
		}
		t.Logf("feedpipe runs (text):\n%s", feedpipeCLI(t, ctx, bin, "runs", "-pipeline", "customers", "-since", "15m", "-limit", "5"))

		out := feedpipeCLI(t, ctx, bin, "status", "-workflow-id", clean.WorkflowID(), "-json")
		t.Logf("feedpipe status -json:\n%s", out)
		var st runs.Status
		decodeJSON(t, out, &st)
		if st.Status != "Completed" || st.Stage != workflows.StageDone || st.Counts != res.Counts || st.Pipeline != "customers" || st.Error != nil {
			t.Errorf("status %+v, want Completed in Done with counts %+v", st, res.Counts)
		}
		if len(st.Durations) != 4 || st.Durations[workflows.StagePut] <= 0 {
			t.Errorf("durations %v, want one per stage", st.Durations)
		}
		// Durations are strings people read, never nanosecond integers.
		var raw struct {
			Elapsed   any            `json:"elapsed"`
			Durations map[string]any `json:"durations"`
			Progress  struct {
				Durations map[string]any `json:"durations"`
			} `json:"progress"`
		}
		decodeJSON(t, out, &raw)
		for name, v := range map[string]any{"elapsed": raw.Elapsed, "Convert": raw.Durations["Convert"], "progress Convert": raw.Progress.Durations["Convert"]} {
			s, ok := v.(string)
			if _, err := time.ParseDuration(s); !ok || err != nil {
				t.Errorf("%s is %v (%T), want a duration string", name, v, v)
			}
		}
		t.Logf("feedpipe status (text):\n%s", feedpipeCLI(t, ctx, bin, "status", "-workflow-id", clean.WorkflowID()))
	})

	t.Run("failed", func(t *testing.T) {
		if _, err := waitRun(t, ctx, over); err == nil {
			t.Fatal("run succeeded, want it over the reject threshold")
		}
		var st runs.Status
		decodeJSON(t, feedpipeCLI(t, ctx, bin, "status", "-bucket", over.Bucket, "-key", over.Key, "-json"), &st)
		p, err := config.Get("customers")
		if err != nil {
			t.Fatal(err)
		}
		if st.WorkflowID != over.WorkflowID() || st.Status != "Failed" || st.Stage != workflows.StageFailed || st.FailedIn != workflows.StagePut ||
			st.Error == nil || st.Error.Type != activities.ErrRejectThreshold || !strings.Contains(st.Error.Message, "line 10:") ||
			st.QuarantineKey != activities.QuarantineKey(*p, over.ID()) || st.Counts.Rejected != 10 {
			t.Errorf("status %+v (error %v), want Failed in PutToKinesis with RejectThresholdExceeded and the quarantine key", st, st.Error)
		}
		text := string(feedpipeCLI(t, ctx, bin, "status", "-workflow-id", over.WorkflowID()))
		if !regexp.MustCompile(`(?m)^error +`+activities.ErrRejectThreshold+`: `).MatchString(text) || !strings.Contains(text, activities.QuarantineKey(*p, over.ID())) {
			t.Errorf("status text does not give the error type first and the quarantine object:\n%s", text)
		}
		t.Logf("feedpipe status (text):\n%s", text)
		var failed []runs.Run
		decodeJSON(t, feedpipeCLI(t, ctx, bin, "runs", "-failed", "-pipeline", "customers", "-since", "15m", "-limit", "1000", "-json"), &failed)
		if !hasRun(failed, over.WorkflowID()) || hasRun(failed, clean.WorkflowID()) {
			t.Errorf("runs -failed: %+v, want %s and not %s", failed, over.WorkflowID(), clean.WorkflowID())
		}
		// A value that tries to leave its quotes matches nothing and is no error.
		var none []runs.Run
		decodeJSON(t, feedpipeCLI(t, ctx, bin, "runs", "-pipeline", `customers' OR FeedStage = 'Failed`, "-json"), &none)
		if len(none) != 0 {
			t.Errorf("a quoted-out pipeline name matched %d runs", len(none))
		}
	})
}

func hasRun(rs []runs.Run, id string) bool {
	for _, r := range rs {
		if r.WorkflowID == id {
			return true
		}
	}
	return false
}
