package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/feedpipe/feedpipe/internal/provision"
)

func openSnowflake(t *testing.T) *sql.DB {
	t.Helper()
	db, err := stack.OpenSnowflake(stack.Names.Snowflake.Database, stack.Names.Snowflake.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func parquetOf(t *testing.T, rows []stagedRecord) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func count(t *testing.T, ctx context.Context, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// gosnowflake ↔ fakesnow: connect, CREATE TABLE, external stage on the
// destination bucket, COPY INTO from Parquet in MiniStack's S3 (DuckDB's
// httpfs installed from PyPI), SELECT COUNT, and LOAD_HISTORY with the file's
// row count — every Snowflake call ConfirmIngestion and the Snowpipe stand-in make.
func TestCompatSnowflakeCopyIntoFromS3Parquet(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	db := openSnowflake(t)
	table := fmt.Sprintf("COMPAT_COPY_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (_FEED_ID VARCHAR, _LINE BIGINT, ID BIGINT, NAME VARCHAR)"); err != nil {
		t.Fatal(err)
	}
	key := "compat-snowflake/" + strings.ToLower(table) + ".parquet"
	rows := []stagedRecord{{"f1", 1, 10, "ada"}, {"f1", 2, 20, "grace"}, {"f1", 3, 30, "édith"}}
	putObject(t, ctx, stack.Names.DestBucket, key, parquetOf(t, rows))

	names := stack.Names.Snowflake
	names.Table = table
	copyStmt, err := provision.CopyStatement(names, stack.Names.DestBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.QueryContext(ctx, copyStmt)
	if err != nil {
		t.Fatalf("COPY INTO: %v", err)
	}
	cols, _ := res.Columns()
	var status string
	var loaded int64
	for res.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			switch strings.ToLower(c) {
			case "status":
				status = fmt.Sprint(vals[i])
			case "rows_loaded":
				fmt.Sscan(fmt.Sprint(vals[i]), &loaded)
			}
		}
	}
	res.Close()
	if status != "LOADED" || loaded != 3 {
		t.Errorf("COPY result status=%q rows_loaded=%d, want LOADED 3", status, loaded)
	}
	if n := count(t, ctx, db, "SELECT COUNT(*) FROM "+table); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
	var name string
	if err := db.QueryRowContext(ctx, "SELECT NAME FROM "+table+" WHERE _LINE = 3").Scan(&name); err != nil || name != "édith" {
		t.Errorf("row 3 name = %q (%v), want édith", name, err)
	}
	var file, lhStatus string
	var lhRows int64
	err = db.QueryRowContext(ctx, fmt.Sprintf(
		"SELECT FILE_NAME, STATUS, ROW_COUNT FROM %s.INFORMATION_SCHEMA.LOAD_HISTORY WHERE TABLE_NAME = '%s'", names.Database, table)).
		Scan(&file, &lhStatus, &lhRows)
	if err != nil {
		t.Fatalf("LOAD_HISTORY: %v", err)
	}
	if !strings.HasSuffix(file, key) || lhStatus != "LOADED" || lhRows != 3 {
		t.Errorf("LOAD_HISTORY = %s %s %d, want …%s LOADED 3", file, lhStatus, lhRows, key)
	}

	// Snowpipe and COPY skip a file already loaded into the table: a second
	// COPY of the same file loads nothing (no doubled rows on redelivery).
	again, err := db.QueryContext(ctx, copyStmt)
	if err != nil {
		t.Fatalf("second COPY INTO: %v", err)
	}
	again.Close()
	if n := count(t, ctx, db, "SELECT COUNT(*) FROM "+table); n != 3 {
		t.Errorf("count after a second COPY of the same file = %d, want 3", n)
	}
}

// The Snowpipe stand-in: a Parquet file created in the destination bucket is
// loaded into the provisioned table through the bucket's EventBridge → SQS
// events, with no call from the test.
func TestCompatSnowpipeStandInLoadsNewFiles(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	db := openSnowflake(t)
	feed := fmt.Sprintf("pipe-%d", time.Now().UnixNano())
	putObject(t, ctx, stack.Names.DestBucket, "feeds/"+feed+".parquet", parquetOfCustomers(t, feed, 4))
	q := "SELECT COUNT(*) FROM " + stack.Names.Snowflake.Table + " WHERE _FEED_ID = ?"
	for ctx.Err() == nil {
		if n := count(t, ctx, db, q, feed); n == 4 {
			return
		} else if n > 4 {
			t.Fatalf("feed %s has %d rows, want 4", feed, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the Snowpipe stand-in did not load feeds/%s.parquet within the deadline", feed)
}

type customer struct {
	FeedID   string  `parquet:"_feed_id"`
	Line     int64   `parquet:"_line"`
	ID       int64   `parquet:"id"`
	Name     string  `parquet:"name"`
	Email    string  `parquet:"email"`
	Country  string  `parquet:"country"`
	Balance  float64 `parquet:"balance"`
	Active   bool    `parquet:"active"`
	SignedUp string  `parquet:"signed_up"`
}

func parquetOfCustomers(t *testing.T, feed string, n int) []byte {
	t.Helper()
	var rows []customer
	for i := range n {
		rows = append(rows, customer{feed, int64(i + 1), int64(100 + i), "n", "e@x", "FR", 1.5, true, "2026-01-01"})
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
