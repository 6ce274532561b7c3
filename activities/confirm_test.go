package activities

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/sqlfake"
)

var loadCols = []string{"FILE_NAME", "STATUS", "ROW_COUNT", "FIRST_ERROR_MESSAGE"}

// productionPipeline confirms with COPY_HISTORY, as on Snowflake.
func productionPipeline() pipeline.Pipeline {
	return pipeline.Pipeline{Name: "customers", DestBucket: "dest", DestPrefix: "customers/", Confirm: pipeline.ConfirmCopyHistory,
		Snowflake: pipeline.Snowflake{Database: "RAW", Schema: "FEEDS", Table: "CUSTOMERS", Stage: "FEEDPIPE_PARQUET", Pipe: "FEEDPIPE_PIPE"}}
}

// confirmWith runs CheckIngestion for two files of 5 and 4 rows against a
// Snowflake whose COPY_HISTORY holds history, whose table holds count rows
// of the feed and whose pipe reports pipeStatus.
func confirmWith(t *testing.T, history [][]driver.Value, count int64, pipeStatus string) (ConfirmStatus, error, *sqlfake.DB) {
	t.Helper()
	db, f := sqlfake.Open(func(q string, args []driver.NamedValue) sqlfake.Answer {
		switch {
		case strings.Contains(q, "COPY_HISTORY"):
			return sqlfake.Answer{Columns: loadCols, Rows: history}
		case strings.Contains(q, "COUNT(*)"):
			return sqlfake.Answer{Columns: []string{"COUNT(*)"}, Rows: [][]driver.Value{{count}}}
		case strings.Contains(q, "SYSTEM$PIPE_STATUS"):
			return sqlfake.Answer{Columns: []string{"SYSTEM$PIPE_STATUS"}, Rows: [][]driver.Value{{pipeStatus}}}
		}
		return sqlfake.Answer{Err: errors.New("unexpected statement " + q)}
	})
	t.Cleanup(func() { db.Close() })
	a := &Activities{Snowflake: db}
	st, err := a.CheckIngestion(context.Background(), ConfirmInput{FeedID: "f1", Pipeline: productionPipeline(), Expected: 9, Files: []ParquetFile{
		{Key: "customers/f1/part-00001.parquet", Rows: 5}, {Key: "customers/f1/part-00002.parquet", Rows: 4}}})
	return st, err, f
}

// COPY_HISTORY's FILE_NAME is the file's path relative to the stage (the
// stage's URL is the bucket, so the key); STATUS is "Loaded", "Load failed",
// "Partially loaded", "Load skipped" or "Load in progress".
func TestCopyHistoryConfirmsEachFileAndCountsTheFeedsRows(t *testing.T) {
	loaded := [][]driver.Value{
		{"customers/f1/part-00002.parquet", "Loaded", int64(4), ""},
		{"customers/f1/part-00001.parquet", "Loaded", int64(5), ""},
		{"customers/f1/part-00001.parquet", "Load failed", int64(0), "an earlier load, superseded"},
	}
	st, err, f := confirmWith(t, loaded, 9, "")
	if err != nil || !st.Done || st.Result.Loaded != 9 || st.Result.Strategy != pipeline.ConfirmCopyHistory {
		t.Fatalf("status %+v, err %v; want done with 9 rows by copy_history", st, err)
	}
	queries := f.Queries()
	q := queries[0]
	for _, want := range []string{"RAW.INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => 'FEEDS.CUSTOMERS'", "COALESCE(ROW_COUNT, 0)", "ORDER BY LAST_LOAD_TIME DESC"} {
		if !strings.Contains(q, want) {
			t.Errorf("COPY_HISTORY query lacks %q:\n%s", want, q)
		}
	}
	if len(queries) != 2 || !strings.Contains(queries[1], "SELECT COUNT(*) FROM RAW.FEEDS.CUSTOMERS WHERE _FEED_ID = ?") {
		t.Errorf("the feed's rows were not counted: %q", queries)
	}
	calls := f.Calls()
	if fmt.Sprint(calls[0].Args) != "[%customers/f1/%]" || fmt.Sprint(calls[1].Args) != "[f1]" {
		t.Errorf("bound %v to the COPY_HISTORY query and %v to the count; want the feed's Parquet prefix and its id", calls[0].Args, calls[1].Args)
	}

	// The files loaded as expected, but the table holds the feed twice (a
	// second COPY of a renamed file, a manual load): exactly once is checked.
	_, err, _ = confirmWith(t, loaded, 18, "")
	if typeOf(err) != ErrRowCount || !strings.Contains(err.Error(), "holds 18 rows of the feed, want 9") {
		t.Fatalf("err = %v, want RowCountMismatch naming 18 of 9", err)
	}
}

func TestCopyHistoryFailsOnAFailedLoad(t *testing.T) {
	for _, status := range []string{"Load failed", "Partially loaded", "Load skipped"} {
		_, err, _ := confirmWith(t, [][]driver.Value{
			{"customers/f1/part-00001.parquet", status, int64(0), "Numeric value 'abc' is not recognized"},
		}, 0, "")
		if typeOf(err) != ErrLoad || !strings.Contains(err.Error(), "Numeric value 'abc' is not recognized") || !strings.Contains(err.Error(), "part-00001.parquet") {
			t.Errorf("%s: err = %v, want LoadFailed with the file and Snowflake's first error", status, err)
		}
	}
}

// While files wait, the status says what the pipe is doing, and how to
// resume a paused one.
func TestCopyHistoryReportsThePipeWhileFilesWait(t *testing.T) {
	inProgress := [][]driver.Value{
		{"customers/f1/part-00001.parquet", "Loaded", int64(5), ""},
		{"customers/f1/part-00002.parquet", "Load in progress", int64(0), ""},
	}
	for _, tc := range []struct{ pipe, want string }{
		{`{"executionState":"RUNNING","pendingFileCount":1,"lastIngestedTimestamp":"2026-12-04T10:00:00.000Z"}`,
			"1 of 2 files loaded; pipe RAW.FEEDS.FEEDPIPE_PIPE is RUNNING with 1 files pending"},
		{`{"executionState":"PAUSED","pendingFileCount":2}`,
			"pipe RAW.FEEDS.FEEDPIPE_PIPE is PAUSED with 2 files pending: resume it with ALTER PIPE RAW.FEEDS.FEEDPIPE_PIPE SET PIPE_EXECUTION_PAUSED = FALSE"},
		{`{"executionState":"STALLED_STAGE_PERMISSION_ERROR","pendingFileCount":2,"error":"Access denied for the storage integration"}`,
			"is STALLED_STAGE_PERMISSION_ERROR with 2 files pending (Access denied for the storage integration)"},
		{`not json`, "pipe status unknown"},
	} {
		st, err, _ := confirmWith(t, inProgress, 5, tc.pipe)
		if err != nil || st.Done || !strings.Contains(st.Status, tc.want) {
			t.Errorf("pipe %s: status %+v, err %v; want waiting with %q", tc.pipe, st, err, tc.want)
		}
	}
}

func typeOf(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}
