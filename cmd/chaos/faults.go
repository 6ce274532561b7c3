package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/faultproxy"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/workflows"
)

// faults are the cases, in the order they run.
var faults = []fault{
	{
		name: "worker-kills", feeds: 20, records: 2000,
		what:   "the worker SIGKILLed 10 times (4 at random moments, then 2 each in AwaitDelivery, Convert and ConfirmIngestion), started again 3 s after each",
		inject: workerKills,
	},
	{
		name: "two-workers", feeds: 6, records: 5000, workers: 2,
		what:   "two workers on the task queue; one SIGKILLed mid-stage and never started again",
		inject: oneOfTwoWorkersDies,
	},
	{
		name: "ministack-freeze", feeds: 6, records: 5000,
		what:   "MiniStack frozen (SIGSTOP) for 30 s in PutToKinesis, again in AwaitDelivery, again in Convert",
		inject: freezeInStages(devstack.PartMiniStack, workflows.StagePut, workflows.StageDelivery, workflows.StageConvert),
	},
	{
		name: "fakesnow-freeze", feeds: 6, records: 5000,
		what:   "fakesnow frozen for 30 s from the first Convert, so that runs enter ConfirmIngestion with it frozen",
		inject: freezeInStages(devstack.PartFakesnow, workflows.StageConvert+"|"+workflows.StageConfirm),
	},
	{
		name: "ministack-restart", feeds: 6, records: 5000,
		what:   "MiniStack stopped (SIGTERM, state saved) and started again in AwaitDelivery",
		inject: restartInStage(devstack.PartMiniStack, workflows.StageDelivery, 0),
	},
	{
		name: "temporal-restart", feeds: 6, records: 5000,
		what:   "the Temporal server stopped in AwaitDelivery and started again 10 s later (history in SQLite)",
		inject: restartInStage(devstack.PartTemporal, workflows.StageDelivery, 10*time.Second),
	},
	{
		name: "duplicate-events", feeds: 6, records: 2000,
		what:   "each S3 event delivered three times: twice before its run starts, once after it has closed; one run per feed version",
		upload: uploadDuplicated, inject: thirdDelivery, injectOutlasts: true,
	},
	{
		name: "out-of-order", feeds: 3, records: 2000,
		what:   "each key uploaded twice, the newer upload's event delivered first: the newer lands, the older fails saying it was overwritten, nothing of it loaded",
		upload: uploadOutOfOrder, inject: func(context.Context, *env) error { return nil },
	},
	{
		name: "overwrite-mid-put", feeds: 4, records: 20000,
		what:   "every source overwritten by a new upload while runs are in PutToKinesis, then the worker SIGKILLed: each old run lands whole or fails saying why with nothing loaded, never a mix; each new upload lands",
		inject: replaceMidPut(true), injectOutlasts: true,
	},
	{
		name: "delete-mid-put", feeds: 4, records: 20000,
		what:   "every source deleted while runs are in PutToKinesis, then the worker SIGKILLed: each run lands whole or fails saying the source was deleted, with nothing loaded",
		inject: replaceMidPut(false), injectOutlasts: true,
	},
	{
		name: "new-version", feeds: 4, records: 5000,
		what:   "a new upload of every key while the first upload's run is in PutToKinesis, fakesnow frozen until every run waits in ConfirmIngestion so both versions are confirmed together (customers replaces): both land, and only the newer upload's rows remain",
		inject: newVersionsInFlight,
	},
	{
		name: "aws-faults", feeds: 6, records: 5000,
		what:   "the worker's AWS calls through a fault proxy: 50 % of PutRecords entries refused as throttled, 5 % of S3 GETs and 10 % of LISTs answered 500/503, 1 % of GETs and 5 % of LISTs held 2–5 s, the first 3 source GETs and then 30 % of them cut mid-body",
		proxy:  func(p *pipeline.Pipeline) faultproxy.Config { return awsFaults(p.SourceBucket) },
		inject: proxyFaultsInjected,
	},
	{
		name: "kills-mid-write", feeds: 4, records: 5000,
		what:   "the merged quarantine PutObject held 3 s and the worker SIGKILLed inside it, twice; the same for the Parquet publication's CopyObject; started again 3 s after each",
		proxy:  func(*pipeline.Pipeline) faultproxy.Config { return faultproxy.Config{} },
		inject: killsMidWrite, injectOutlasts: true,
	},
	{
		name: "reset-after-outage", feeds: 2, records: 2000,
		what:   "fakesnow frozen from the first Convert until both runs fail past the shipped ingestion deadline, then thawed: one run reset with the `feedpipe reset` command its failure names, the other started again with `starter start`; both land once",
		inject: resetAfterOutage, injectOutlasts: true, patience: 25 * time.Minute, runs: 2,
	},
	{
		name: "poison-message", feeds: 4, records: 2000,
		what:   "3 messages that are no S3 event on the feed queue before the feeds: the feeds land, the messages reach the dead-letter queue after their receives",
		upload: uploadWithPoison, inject: poisonToDLQ, injectOutlasts: true,
	},
}

// frozenFor is how long a frozen part stays frozen.
const frozenFor = 30 * time.Second

// killStages are where the kills after the first four land: each waits
// until a run is in that stage (or a minute has passed), then a random
// moment more.
var killStages = []string{workflows.StageDelivery, workflows.StageDelivery, workflows.StageConvert,
	workflows.StageConvert, workflows.StageConfirm, workflows.StageConfirm}

func workerKills(ctx context.Context, e *env) error {
	for i := 1; i <= 10; i++ {
		if i > 4 {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := e.waitStage(wctx, killStages[i-5]); err != nil {
				e.note("kill %d: %v", i, err)
			}
			cancel()
		}
		pause := time.Duration(e.rng.IntN(2000)) * time.Millisecond
		if i <= 4 {
			pause += 2 * time.Second
		}
		if !sleep(ctx, pause) {
			return ctx.Err()
		}
		if e.openRuns(ctx) == 0 {
			return fmt.Errorf("every run had closed before kill %d of 10", i)
		}
		stages := e.killWorker(ctx)
		e.note("kill %d: worker SIGKILLed (%s)", i, stages)
		if !sleep(ctx, 3*time.Second) {
			return ctx.Err()
		}
		if _, err := e.startWorker(); err != nil {
			return err
		}
	}
	return nil
}

func oneOfTwoWorkersDies(ctx context.Context, e *env) error {
	if err := e.waitStage(ctx, workflows.StageDelivery); err != nil {
		return err
	}
	stages := e.killWorker(ctx)
	e.note("one of the two workers SIGKILLed (%s); the other goes on alone", stages)
	return nil
}

func freezeInStages(part string, stages ...string) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		for _, stage := range stages {
			if err := e.waitStage(ctx, strings.Split(stage, "|")...); err != nil {
				return err
			}
			at := e.stages(ctx)
			if err := e.stack.Freeze(part); err != nil {
				return err
			}
			e.note("%s frozen (%s)", part, at)
			sleep(ctx, frozenFor)
			if err := e.stack.Thaw(part); err != nil {
				return err
			}
			e.note("%s thawed", part)
		}
		return nil
	}
}

func restartInStage(part, stage string, down time.Duration) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		if err := e.waitStage(ctx, stage); err != nil {
			return err
		}
		at := e.stages(ctx)
		if err := e.stack.StopPart(part); err != nil {
			return err
		}
		e.note("%s stopped (%s)", part, at)
		sleep(ctx, down)
		if err := e.stack.StartPart(ctx, part); err != nil {
			return err
		}
		e.note("%s started again", part)
		return nil
	}
}

// openRuns is how many of the fault's runs have not closed.
func (e *env) openRuns(ctx context.Context) int {
	n := 0
	for _, f := range e.feedList() {
		desc, err := e.tc.DescribeWorkflowExecution(ctx, f.Ref.WorkflowID(), "")
		if err != nil || desc.WorkflowExecutionInfo.CloseTime == nil {
			n++
		}
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
