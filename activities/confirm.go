package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// ConfirmInput names the Parquet file Snowflake should have loaded.
type ConfirmInput struct {
	FeedID     string            `json:"feed_id"`
	Pipeline   pipeline.Pipeline `json:"pipeline"`
	ParquetKey string            `json:"parquet_key"`
	Expected   int64             `json:"expected"` // rows in the file
}

// ConfirmResult is what Snowflake reports.
type ConfirmResult struct {
	Loaded   int64  `json:"loaded"`
	Status   string `json:"status"`
	Strategy string `json:"strategy"`
}

// LoadStatus is one file's load as Snowflake records it.
type LoadStatus struct {
	Found      bool
	Status     string // LOADED, LOAD_FAILED, PARTIALLY_LOADED (normalised)
	Rows       int64  // rows the load reports
	FirstError string
}

// IngestionChecker reads whether Snowflake loaded a stage file.
type IngestionChecker interface {
	// FileStatus reports the load of key (a path in the pipeline's stage).
	FileStatus(ctx context.Context, db *sql.DB, p pipeline.Pipeline, key string) (LoadStatus, error)
	// FeedRows counts the table's rows of feedID, or returns -1 when the
	// strategy does not count rows.
	FeedRows(ctx context.Context, db *sql.DB, p pipeline.Pipeline, feedID string) (int64, error)
}

// Checker returns the strategy the pipeline's confirm setting names.
func Checker(p pipeline.Pipeline) IngestionChecker {
	if p.Confirm == pipeline.ConfirmLoadHistory {
		return LoadHistoryChecker{}
	}
	return CopyHistoryChecker{}
}

// CopyHistoryChecker confirms loads with Snowflake's COPY_HISTORY table
// function, which covers Snowpipe and COPY loads of the last 14 days.
type CopyHistoryChecker struct{}

// FileStatus implements IngestionChecker.
func (CopyHistoryChecker) FileStatus(ctx context.Context, db *sql.DB, p pipeline.Pipeline, key string) (LoadStatus, error) {
	q := fmt.Sprintf(`SELECT STATUS, ROW_COUNT, COALESCE(FIRST_ERROR_MESSAGE, '')
FROM TABLE(%s.INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => '%s.%s', START_TIME => DATEADD(DAY, -14, CURRENT_TIMESTAMP())))
WHERE FILE_NAME = ? OR ENDSWITH(FILE_NAME, ?)
ORDER BY LAST_LOAD_TIME DESC LIMIT 1`, p.Snowflake.Database, p.Snowflake.Schema, p.Snowflake.Table)
	return scanStatus(db.QueryRowContext(ctx, q, key, "/"+key))
}

// FeedRows implements IngestionChecker; COPY_HISTORY's row count is enough.
func (CopyHistoryChecker) FeedRows(context.Context, *sql.DB, pipeline.Pipeline, string) (int64, error) {
	return -1, nil
}

// LoadHistoryChecker confirms loads with INFORMATION_SCHEMA.LOAD_HISTORY and
// a count of the feed's rows in the table: what fakesnow offers.
type LoadHistoryChecker struct{}

// FileStatus implements IngestionChecker.
func (LoadHistoryChecker) FileStatus(ctx context.Context, db *sql.DB, p pipeline.Pipeline, key string) (LoadStatus, error) {
	q := fmt.Sprintf(`SELECT STATUS, ROW_COUNT, COALESCE(FIRST_ERROR_MESSAGE, '')
FROM %s.INFORMATION_SCHEMA.LOAD_HISTORY
WHERE TABLE_NAME = ? AND SCHEMA_NAME = ? AND ENDSWITH(FILE_NAME, ?)
ORDER BY LAST_LOAD_TIME DESC LIMIT 1`, p.Snowflake.Database)
	return scanStatus(db.QueryRowContext(ctx, q, strings.ToUpper(p.Snowflake.Table), strings.ToUpper(p.Snowflake.Schema), "/"+key))
}

// FeedRows implements IngestionChecker.
func (LoadHistoryChecker) FeedRows(ctx context.Context, db *sql.DB, p pipeline.Pipeline, feedID string) (int64, error) {
	var n int64
	q := fmt.Sprintf("SELECT COUNT(*) FROM %s.%s.%s WHERE _FEED_ID = ?", p.Snowflake.Database, p.Snowflake.Schema, p.Snowflake.Table)
	if err := db.QueryRowContext(ctx, q, feedID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of feed %s: %w", feedID, err)
	}
	return n, nil
}

func scanStatus(row *sql.Row) (LoadStatus, error) {
	var st LoadStatus
	err := row.Scan(&st.Status, &st.Rows, &st.FirstError)
	if errors.Is(err, sql.ErrNoRows) {
		return LoadStatus{}, nil
	}
	if err != nil {
		return LoadStatus{}, err
	}
	st.Found = true
	st.Status = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(st.Status), " ", "_"))
	return st, nil
}

// ConfirmStatus is what one look at Snowflake found.
type ConfirmStatus struct {
	Done   bool          `json:"done"`
	Status string        `json:"status"` // the file's load status, "" while Snowflake has no record of it
	Result ConfirmResult `json:"result"` // when Done
}

// CheckIngestion looks once at whether Snowflake loaded the feed's Parquet
// file with the expected row count, and fails with what Snowflake reported
// when the load failed. The workflow calls it again after a timer until the
// file is loaded, so waiting holds no worker slot.
func (a *Activities) CheckIngestion(ctx context.Context, in ConfirmInput) (ConfirmStatus, error) {
	p := in.Pipeline
	if a.Snowflake == nil {
		return ConfirmStatus{}, errors.New("confirm ingestion: the worker has no Snowflake connection (set SNOWFLAKE_DSN)")
	}
	checker := Checker(p)
	table := p.Snowflake.Database + "." + p.Snowflake.Schema + "." + p.Snowflake.Table
	st, err := checker.FileStatus(ctx, a.Snowflake, p, in.ParquetKey)
	if err != nil {
		return ConfirmStatus{}, fmt.Errorf("confirm feed %s: load status of %s in %s (Snowflake %s): %w", in.FeedID, in.ParquetKey, table, p.Confirm, err)
	}
	out := ConfirmStatus{Status: st.Status}
	if !st.Found {
		return out, nil
	}
	switch st.Status {
	case "LOADED":
		if st.Rows != in.Expected {
			return out, nonRetryable(ErrRowCount, "confirm feed %s: Snowflake loaded %d rows of %s into %s, want %d", in.FeedID, st.Rows, in.ParquetKey, table, in.Expected)
		}
		rows, err := checker.FeedRows(ctx, a.Snowflake, p, in.FeedID)
		if err != nil {
			return out, fmt.Errorf("confirm feed %s: %w", in.FeedID, err)
		}
		if rows >= 0 && rows != in.Expected {
			return out, nonRetryable(ErrRowCount, "confirm feed %s: %s holds %d rows of the feed, want %d (a file of this feed was loaded twice, or rows were deleted)", in.FeedID, table, rows, in.Expected)
		}
		out.Done, out.Result = true, ConfirmResult{Loaded: st.Rows, Status: st.Status, Strategy: p.Confirm}
		return out, nil
	case "LOAD_FAILED", "PARTIALLY_LOADED":
		return out, nonRetryable(ErrLoad, "confirm feed %s: Snowflake %s %s into %s: %s. Fix the table or file, then reload with COPY INTO and reset the workflow to ConfirmIngestion",
			in.FeedID, strings.ToLower(strings.ReplaceAll(st.Status, "_", " ")), in.ParquetKey, table, st.FirstError)
	}
	return out, nil
}
