package activities

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/sfconn"
)

// ConfirmInput names the Parquet files Snowflake should have loaded.
type ConfirmInput struct {
	FeedID   string            `json:"feed_id"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
	Files    []ParquetFile     `json:"files"`
	Expected int64             `json:"expected"` // rows in all the files
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

// IngestionChecker reads whether Snowflake loaded a feed's stage files.
type IngestionChecker interface {
	// FileStatuses reports the latest load of each file whose path in the
	// pipeline's stage contains prefix, by that path's end (the S3 key).
	FileStatuses(ctx context.Context, db *sql.DB, p pipeline.Pipeline, prefix string) ([]FileLoad, error)
	// FeedRows counts the table's rows of feedID.
	FeedRows(ctx context.Context, db *sql.DB, p pipeline.Pipeline, feedID string) (int64, error)
}

// FileLoad is one file's latest load as Snowflake records it.
type FileLoad struct {
	FileName string // as Snowflake names it (a stage path or URL ending in the S3 key)
	LoadStatus
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

// FileStatuses implements IngestionChecker.
func (CopyHistoryChecker) FileStatuses(ctx context.Context, db *sql.DB, p pipeline.Pipeline, prefix string) ([]FileLoad, error) {
	q := fmt.Sprintf(`SELECT FILE_NAME, STATUS, COALESCE(ROW_COUNT, 0), COALESCE(FIRST_ERROR_MESSAGE, '')
FROM TABLE(%s.INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME => '%s.%s', START_TIME => DATEADD(DAY, -14, CURRENT_TIMESTAMP())))
WHERE FILE_NAME LIKE ?
ORDER BY LAST_LOAD_TIME DESC`, p.Snowflake.Database, p.Snowflake.Schema, p.Snowflake.Table)
	return queryLoads(ctx, db, q, "%"+prefix+"%")
}

// FeedRows implements IngestionChecker: COPY_HISTORY's row counts say what
// each load added, not that no other load added the feed's rows too, so the
// table is counted as well.
func (CopyHistoryChecker) FeedRows(ctx context.Context, db *sql.DB, p pipeline.Pipeline, feedID string) (int64, error) {
	return countFeedRows(ctx, db, p, feedID)
}

// LoadHistoryChecker confirms loads with INFORMATION_SCHEMA.LOAD_HISTORY and
// a count of the feed's rows in the table: what fakesnow offers.
type LoadHistoryChecker struct{}

// FileStatuses implements IngestionChecker.
func (LoadHistoryChecker) FileStatuses(ctx context.Context, db *sql.DB, p pipeline.Pipeline, prefix string) ([]FileLoad, error) {
	q := fmt.Sprintf(`SELECT FILE_NAME, STATUS, ROW_COUNT, COALESCE(FIRST_ERROR_MESSAGE, '')
FROM %s.INFORMATION_SCHEMA.LOAD_HISTORY
WHERE TABLE_NAME = ? AND SCHEMA_NAME = ? AND FILE_NAME LIKE ?
ORDER BY LAST_LOAD_TIME DESC`, p.Snowflake.Database)
	return queryLoads(ctx, db, q, strings.ToUpper(p.Snowflake.Table), strings.ToUpper(p.Snowflake.Schema), "%"+prefix+"%")
}

// FeedRows implements IngestionChecker.
func (LoadHistoryChecker) FeedRows(ctx context.Context, db *sql.DB, p pipeline.Pipeline, feedID string) (int64, error) {
	return countFeedRows(ctx, db, p, feedID)
}

// countFeedRows counts the table's rows of one feed: the check that each
// line landed once, whatever loaded it.
func countFeedRows(ctx context.Context, db *sql.DB, p pipeline.Pipeline, feedID string) (int64, error) {
	var n int64
	q := fmt.Sprintf("SELECT COUNT(*) FROM %s.%s.%s WHERE _FEED_ID = ?", p.Snowflake.Database, p.Snowflake.Schema, p.Snowflake.Table)
	err := sfconn.Do(ctx, db, func(c *sql.Conn) error { return c.QueryRowContext(ctx, q, feedID).Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("count rows of feed %s: %w", feedID, err)
	}
	return n, nil
}

// queryLoads runs a load-status query on one connection (dropped if its
// session is gone: sfconn) and scans its rows.
func queryLoads(ctx context.Context, db *sql.DB, q string, args ...any) (out []FileLoad, err error) {
	err = sfconn.Do(ctx, db, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, q, args...)
		out, err = scanLoads(rows, err)
		return err
	})
	return out, err
}

func scanLoads(rows *sql.Rows, err error) ([]FileLoad, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FileLoad
	for rows.Next() {
		var l FileLoad
		if err := rows.Scan(&l.FileName, &l.Status, &l.Rows, &l.FirstError); err != nil {
			return nil, err
		}
		l.Found = true
		l.Status = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(l.Status), " ", "_"))
		out = append(out, l)
	}
	return out, rows.Err()
}

// latestLoad returns the newest load of key among loads (ordered newest first).
func latestLoad(loads []FileLoad, key string) LoadStatus {
	for _, l := range loads {
		if l.FileName == key || strings.HasSuffix(l.FileName, "/"+key) {
			return l.LoadStatus
		}
	}
	return LoadStatus{}
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
	prefix := ParquetPrefix(p, in.FeedID)
	if len(in.Files) > 0 {
		prefix = path.Dir(in.Files[0].Key) + "/"
	}
	loads, err := checker.FileStatuses(ctx, a.Snowflake, p, prefix)
	if err != nil {
		return ConfirmStatus{}, fmt.Errorf("confirm feed %s: load status of %s* in %s (Snowflake %s): %w", in.FeedID, prefix, table, p.Confirm, err)
	}
	out := ConfirmStatus{}
	var loaded, rows int64
	for _, f := range in.Files {
		st := latestLoad(loads, f.Key)
		switch st.Status {
		case "LOADED":
			if st.Rows != f.Rows {
				return out, nonRetryable(ErrRowCount, "confirm feed %s: Snowflake loaded %d rows of %s into %s, want %d", in.FeedID, st.Rows, f.Key, table, f.Rows)
			}
			loaded++
			rows += st.Rows
		case "LOAD_FAILED", "PARTIALLY_LOADED", "LOAD_SKIPPED":
			return out, nonRetryable(ErrLoad, "confirm feed %s: Snowflake %s %s into %s: %s. Fix the table or file and reload it with COPY INTO",
				in.FeedID, strings.ToLower(strings.ReplaceAll(st.Status, "_", " ")), f.Key, table, st.FirstError)
		}
	}
	out.Status = fmt.Sprintf("%d of %d files loaded", loaded, len(in.Files))
	if loaded < int64(len(in.Files)) {
		if p.Snowflake.Pipe != "" && p.Confirm == pipeline.ConfirmCopyHistory {
			st, err := PipeState(ctx, a.Snowflake, p)
			if err != nil {
				out.Status += fmt.Sprintf("; pipe status unknown: %v", err)
			} else {
				out.Status += "; " + st.String()
				if !st.Running() {
					a.log(ctx).Warn("the pipe that loads the feed is not running", "feed", in.FeedID, "pipe", st.Pipe, "state", st.ExecutionState, "error", st.Error)
				}
			}
		}
		return out, nil
	}
	n, err := checker.FeedRows(ctx, a.Snowflake, p, in.FeedID)
	if err != nil {
		return out, fmt.Errorf("confirm feed %s: %w", in.FeedID, err)
	}
	if n != in.Expected && n == 0 && a.superseded(ctx, p, in.FeedID) {
		// A newer upload of the key was confirmed meanwhile and removed this
		// upload's rows (replace): the load happened, the rows are gone by
		// design. The replace step then names the newer upload.
		n = in.Expected
	}
	if n != in.Expected {
		return out, nonRetryable(ErrRowCount, "confirm feed %s: %s holds %d rows of the feed, want %d (a file of this feed was loaded twice, or rows were deleted)", in.FeedID, table, n, in.Expected)
	}
	if rows != in.Expected {
		return out, nonRetryable(ErrRowCount, "confirm feed %s: Snowflake loaded %d rows from the feed's %d files into %s, want %d", in.FeedID, rows, len(in.Files), table, in.Expected)
	}
	out.Done, out.Result = true, ConfirmResult{Loaded: rows, Status: "LOADED", Strategy: p.Confirm}
	return out, nil
}

// PipeStatus is the part of SYSTEM$PIPE_STATUS's JSON that says why files
// wait.
type PipeStatus struct {
	Pipe             string `json:"-"`
	ExecutionState   string `json:"executionState"`
	PendingFileCount int64  `json:"pendingFileCount"`
	Error            string `json:"error"`
	LastIngested     string `json:"lastIngestedTimestamp"`
}

// Running says whether the pipe loads new files.
func (s PipeStatus) Running() bool { return s.ExecutionState == "RUNNING" }

// String is the status for an operator, with the fix when the pipe is paused.
func (s PipeStatus) String() string {
	out := fmt.Sprintf("pipe %s is %s with %d files pending", s.Pipe, s.ExecutionState, s.PendingFileCount)
	if s.Error != "" {
		out += " (" + s.Error + ")"
	}
	if strings.HasPrefix(s.ExecutionState, "PAUSED") {
		out += fmt.Sprintf(": resume it with ALTER PIPE %s SET PIPE_EXECUTION_PAUSED = FALSE", s.Pipe)
	} else if !s.Running() {
		out += ": see Snowflake's SYSTEM$PIPE_STATUS for what to fix, then recreate or resume the pipe"
	}
	return out
}

// PipeState reads the pipeline's pipe status with SYSTEM$PIPE_STATUS.
func PipeState(ctx context.Context, db *sql.DB, p pipeline.Pipeline) (PipeStatus, error) {
	name := p.Snowflake.Database + "." + p.Snowflake.Schema + "." + p.Snowflake.Pipe
	var raw string
	err := sfconn.Do(ctx, db, func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT SYSTEM$PIPE_STATUS(?)", name).Scan(&raw)
	})
	if err != nil {
		return PipeStatus{}, fmt.Errorf("SYSTEM$PIPE_STATUS('%s'): %w", name, err)
	}
	st := PipeStatus{Pipe: name}
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return PipeStatus{}, fmt.Errorf("SYSTEM$PIPE_STATUS('%s') answered %.200q: %w", name, raw, err)
	}
	return st, nil
}

// superseded says whether a newer upload of feedID's key is confirmed in the
// replace pipeline's versions table, which removes feedID's rows. Any error
// answers no: the caller then reports the row count as it found it.
func (a *Activities) superseded(ctx context.Context, p pipeline.Pipeline, feedID string) bool {
	if p.OnNewVersion != pipeline.NewVersionReplace || p.VersionsTable == "" {
		return false
	}
	v := p.Snowflake.Database + "." + p.Snowflake.Schema + "." + p.VersionsTable
	q := "SELECT COUNT(*) FROM " + v + " n, " + v + " m WHERE m.FEED_ID = ? AND n.FEED_ID <> m.FEED_ID " +
		"AND n.PIPELINE = m.PIPELINE AND n.BUCKET = m.BUCKET AND n.OBJECT_KEY = m.OBJECT_KEY AND COALESCE(n.CONFIRMED, TRUE) " +
		"AND (n.UPLOAD_ORDER > m.UPLOAD_ORDER OR n.UPLOAD_ORDER = m.UPLOAD_ORDER AND n.FEED_ID > m.FEED_ID)"
	var newer int64
	err := sfconn.Do(ctx, a.Snowflake, func(c *sql.Conn) error { return c.QueryRowContext(ctx, q, feedID).Scan(&newer) })
	return err == nil && newer > 0
}
