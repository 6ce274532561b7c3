package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/snowflakedb/gosnowflake"

	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/sfconn"
)

// SupersedeInput names a confirmed upload whose key's earlier uploads it
// replaces.
type SupersedeInput struct {
	FeedID   string            `json:"feed_id"`
	Ref      feed.Ref          `json:"ref"`
	Pipeline pipeline.Pipeline `json:"pipeline"`
	// Modified is the source's LastModified as the put read it.
	Modified time.Time `json:"modified"`
}

// SupersedeResult says what replacing did.
type SupersedeResult struct {
	// Removed counts the rows of the key's other uploads that this call
	// removed from the table (this upload's own, if a newer one is loaded).
	Removed int64 `json:"removed"`
	// Current is the feed id of the key's newest loaded upload: this one,
	// or a newer one that replaced it.
	Current string `json:"current"`
}

// UploadOrder is the string that orders uploads of one key: later uploads
// sort after earlier ones. LastModified has one-second precision on S3, so
// the event's sequencer orders two uploads made within the same second.
func UploadOrder(modified time.Time, sequencer string) string {
	return modified.UTC().Format("20060102T150405.000000000Z") + "/" + feed.SequencerOrder(sequencer)
}

// RecordUpload records an upload in the pipeline's versions table (its
// columns: pipeline.VersionsColumns), not yet confirmed. The workflow calls it
// as its confirm stage begins, before it checks the load, so that rows
// Snowflake loads from the upload's files are known to be this upload's even
// if its run then fails: a later upload's SupersedeVersions removes them.
// Running it again changes nothing.
func (a *Activities) RecordUpload(ctx context.Context, in SupersedeInput) error {
	return a.versions(ctx, in, func(c *sql.Conn, v versionsSQL) error {
		return v.record(ctx, c, false)
	})
}

// SupersedeVersions marks a confirmed upload in the versions table (recording
// it if RecordUpload did not) and removes the rows of every upload of the
// same key that sorts before the newest confirmed one: confirmed or not, so
// the rows of a run that loaded its files and then failed go too. An older
// upload confirmed after a newer one therefore removes its own rows, and two
// uploads confirmed at once leave the newer one's; a newer upload not yet
// confirmed keeps its rows. Running it again changes nothing.
func (a *Activities) SupersedeVersions(ctx context.Context, in SupersedeInput) (SupersedeResult, error) {
	var res SupersedeResult
	err := a.versions(ctx, in, func(c *sql.Conn, v versionsSQL) error {
		if err := v.record(ctx, c, true); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "UPDATE "+v.versions+" SET CONFIRMED = TRUE WHERE FEED_ID = ?", in.FeedID); err != nil {
			return fmt.Errorf("mark the upload confirmed in %s: %w", v.versions, err)
		}
		var order string
		err := c.QueryRowContext(ctx, "SELECT UPLOAD_ORDER, FEED_ID FROM "+v.versions+" WHERE "+v.sameKey+" AND COALESCE(CONFIRMED, TRUE) "+
			"ORDER BY UPLOAD_ORDER DESC, FEED_ID DESC LIMIT 1", v.keyArgs...).Scan(&order, &res.Current)
		if err != nil {
			return fmt.Errorf("the newest confirmed upload in %s: %w", v.versions, err)
		}
		args := append(append([]any{}, v.keyArgs...), order, order, res.Current)
		out, err := c.ExecContext(ctx, "DELETE FROM "+v.table+" WHERE _FEED_ID IN (SELECT FEED_ID FROM "+v.versions+" WHERE "+v.sameKey+
			" AND (UPLOAD_ORDER < ? OR UPLOAD_ORDER = ? AND FEED_ID < ?))", args...)
		if err != nil {
			return fmt.Errorf("remove the rows of the earlier uploads from %s: %w", v.table, err)
		}
		if res.Removed, err = out.RowsAffected(); err != nil {
			return fmt.Errorf("rows removed from %s: %w", v.table, err)
		}
		return nil
	})
	if err != nil {
		return SupersedeResult{}, err
	}
	a.log(ctx).Info("replaced earlier uploads", "feed", in.Ref.String(), "removed_rows", res.Removed, "current", res.Current)
	return res, nil
}

// versionsSQL names the tables and the key of one upload.
type versionsSQL struct {
	in              SupersedeInput
	versions, table string
	sameKey         string
	keyArgs         []any
}

// record inserts the upload's row unless it is there.
func (v versionsSQL) record(ctx context.Context, c *sql.Conn, confirmed bool) error {
	p, ref := v.in.Pipeline, v.in.Ref
	if _, err := c.ExecContext(ctx, "INSERT INTO "+v.versions+" (PIPELINE, BUCKET, OBJECT_KEY, FEED_ID, UPLOAD_ORDER, RECORDED_AT, CONFIRMED) "+
		"SELECT ?, ?, ?, ?, ?, CURRENT_TIMESTAMP(), ? WHERE NOT EXISTS (SELECT 1 FROM "+v.versions+" WHERE FEED_ID = ?)",
		p.Name, ref.Bucket, ref.Key, v.in.FeedID, UploadOrder(v.in.Modified, ref.Sequencer), confirmed, v.in.FeedID); err != nil {
		return fmt.Errorf("record the upload in %s: %w", v.versions, err)
	}
	return nil
}

// versions runs fn on one Snowflake connection, with the errors of a
// missing table or grant made non-retryable and naming the fix.
func (a *Activities) versions(ctx context.Context, in SupersedeInput, fn func(*sql.Conn, versionsSQL) error) error {
	p, ref := in.Pipeline, in.Ref
	if a.Snowflake == nil {
		return nonRetryable(ErrVersions, "replace earlier uploads of %s: the worker has no Snowflake connection (set SNOWFLAKE_DSN)", ref)
	}
	ns := p.Snowflake.Database + "." + p.Snowflake.Schema + "."
	v := versionsSQL{in: in, versions: ns + p.VersionsTable, table: ns + p.Snowflake.Table,
		sameKey: "PIPELINE = ? AND BUCKET = ? AND OBJECT_KEY = ?", keyArgs: []any{p.Name, ref.Bucket, ref.Key}}
	err := sfconn.Do(ctx, a.Snowflake, func(c *sql.Conn) error { return fn(c, v) })
	if missingOrNotGranted(err) {
		return nonRetryable(ErrVersions, "replace earlier uploads of %s (pipeline %s, on_new_version = replace): %v. "+
			"Create the versions table and grant the worker's role INSERT, UPDATE and SELECT on it and DELETE on %s: CREATE TABLE IF NOT EXISTS %s (%s) "+
			"(a table made by an earlier feedpipe needs ALTER TABLE %s ADD COLUMN CONFIRMED BOOLEAN); "+
			"or set on_new_version = \"append\" to keep every upload's rows",
			ref, p.Name, err, v.table, v.versions, pipeline.VersionsColumns, v.versions)
	}
	if err != nil {
		return fmt.Errorf("replace earlier uploads of %s (pipeline %s, on_new_version = replace): %w", ref, p.Name, err)
	}
	return nil
}

// missingOrNotGranted says whether err is Snowflake's answer for an object
// that does not exist or that the role may not use (SQL compilation error
// 002003, insufficient privileges 003001), or a column the table lacks
// (000904), which no retry fixes.
func missingOrNotGranted(err error) bool {
	var se *gosnowflake.SnowflakeError
	if !errors.As(err, &se) {
		return false
	}
	// 000904: invalid identifier, as for CONFIRMED in a table made before it.
	return se.Number == 2003 || se.Number == 3001 || se.Number == 904 || se.SQLState == "42S02" || se.SQLState == "42501"
}
