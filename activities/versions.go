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

// SupersedeVersions records a confirmed upload in the pipeline's versions
// table (its columns: pipeline.VersionsColumns) and removes, in one statement, the rows of every upload of the same
// key except the newest one recorded. An older upload confirmed after a
// newer one therefore removes its own rows, and two uploads confirmed at
// once leave the newer one's. Running it again changes nothing.
func (a *Activities) SupersedeVersions(ctx context.Context, in SupersedeInput) (SupersedeResult, error) {
	p, ref := in.Pipeline, in.Ref
	if a.Snowflake == nil {
		return SupersedeResult{}, nonRetryable(ErrVersions, "replace earlier uploads of %s: the worker has no Snowflake connection (set SNOWFLAKE_DSN)", ref)
	}
	ns := p.Snowflake.Database + "." + p.Snowflake.Schema + "."
	versions, table := ns+p.VersionsTable, ns+p.Snowflake.Table
	sameKey := "PIPELINE = ? AND BUCKET = ? AND OBJECT_KEY = ?"
	var res SupersedeResult
	err := sfconn.Do(ctx, a.Snowflake, func(c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, "INSERT INTO "+versions+" (PIPELINE, BUCKET, OBJECT_KEY, FEED_ID, UPLOAD_ORDER, RECORDED_AT) "+
			"SELECT ?, ?, ?, ?, ?, CURRENT_TIMESTAMP() WHERE NOT EXISTS (SELECT 1 FROM "+versions+" WHERE FEED_ID = ?)",
			p.Name, ref.Bucket, ref.Key, in.FeedID, UploadOrder(in.Modified, ref.Sequencer), in.FeedID); err != nil {
			return fmt.Errorf("record the upload in %s: %w", versions, err)
		}
		newest := "SELECT FEED_ID FROM " + versions + " WHERE " + sameKey + " ORDER BY UPLOAD_ORDER DESC, FEED_ID DESC LIMIT 1"
		out, err := c.ExecContext(ctx, "DELETE FROM "+table+" WHERE _FEED_ID IN (SELECT FEED_ID FROM "+versions+" WHERE "+sameKey+" AND FEED_ID <> ("+newest+"))",
			p.Name, ref.Bucket, ref.Key, p.Name, ref.Bucket, ref.Key)
		if err != nil {
			return fmt.Errorf("remove the rows of the earlier uploads from %s: %w", table, err)
		}
		if res.Removed, err = out.RowsAffected(); err != nil {
			return fmt.Errorf("rows removed from %s: %w", table, err)
		}
		if err := c.QueryRowContext(ctx, newest, p.Name, ref.Bucket, ref.Key).Scan(&res.Current); err != nil {
			return fmt.Errorf("the newest upload in %s: %w", versions, err)
		}
		return nil
	})
	if missingOrNotGranted(err) {
		return SupersedeResult{}, nonRetryable(ErrVersions, "replace earlier uploads of %s (pipeline %s, on_new_version = replace): %v. "+
			"Create the versions table and grant the worker's role INSERT and SELECT on it and DELETE on %s: CREATE TABLE IF NOT EXISTS %s (%s); "+
			"or set on_new_version = \"append\" to keep every upload's rows",
			ref, p.Name, err, table, versions, pipeline.VersionsColumns)
	}
	if err != nil {
		return SupersedeResult{}, fmt.Errorf("replace earlier uploads of %s (pipeline %s, on_new_version = replace): %w", ref, p.Name, err)
	}
	a.log().Info("replaced earlier uploads", "feed", ref.String(), "removed_rows", res.Removed, "current", res.Current)
	return res, nil
}

// missingOrNotGranted says whether err is Snowflake's answer for an object
// that does not exist or that the role may not use (SQL compilation error
// 002003, insufficient privileges 003001), which no retry fixes.
func missingOrNotGranted(err error) bool {
	var se *gosnowflake.SnowflakeError
	if !errors.As(err, &se) {
		return false
	}
	return se.Number == 2003 || se.Number == 3001 || se.SQLState == "42S02" || se.SQLState == "42501"
}
