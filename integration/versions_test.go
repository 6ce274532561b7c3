package integration

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/activities"
	"github.com/feedpipe/feedpipe/internal/feed"
	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// The replace step against fakesnow, upload by upload: an upload is recorded
// before its files are published, so the rows of a run that loaded and then
// failed go when a newer upload is confirmed; an older upload confirmed late
// removes its own rows; a newer upload not yet confirmed keeps its rows; two
// confirmed at once leave the newer one's; and a retry changes nothing.
func TestReplaceRemovesEveryOlderUploadOfTheKey(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	db := openSnowflake(t)
	n := time.Now().UnixNano()
	table, versions := fmt.Sprintf("REPLACE_T_%d", n), fmt.Sprintf("REPLACE_V_%d", n)
	for _, q := range []string{
		"CREATE TABLE " + table + " (_FEED_ID VARCHAR, _LINE BIGINT, ID BIGINT)",
		"CREATE TABLE " + versions + " (" + pipeline.VersionsColumns + ")",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p := pipeline.Pipeline{Name: "customers", OnNewVersion: pipeline.NewVersionReplace, VersionsTable: versions,
		Snowflake: pipeline.Snowflake{Database: stack.Names.Snowflake.Database, Schema: stack.Names.Snowflake.Schema, Table: table}}
	a := &activities.Activities{Snowflake: db}
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	upload := func(id string, sec int, seq string, rows int) activities.SupersedeInput {
		in := activities.SupersedeInput{FeedID: id, Pipeline: p, Modified: t0.Add(time.Duration(sec) * time.Second),
			Ref: feed.Ref{Bucket: "src", Key: "customers/snapshot.ndjson", ETag: id, Sequencer: seq}}
		if err := a.RecordUpload(ctx, in); err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
		for i := 1; i <= rows; i++ { // Snowpipe loading the upload's files
			if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (?, ?, ?)", id, i, i); err != nil {
				t.Fatal(err)
			}
		}
		return in
	}
	confirm := func(in activities.SupersedeInput, wantRemoved int64, wantCurrent string) {
		t.Helper()
		res, err := a.SupersedeVersions(ctx, in)
		if err != nil {
			t.Fatalf("supersede %s: %v", in.FeedID, err)
		}
		if res.Removed != wantRemoved || res.Current != wantCurrent {
			t.Fatalf("supersede %s: removed %d rows, current %s; want %d and %s", in.FeedID, res.Removed, res.Current, wantRemoved, wantCurrent)
		}
	}

	upload("a-failed-after-load", 0, "", 3) // its run fails after Snowpipe loaded it: never confirmed
	c := upload("c", 20, "", 5)
	confirm(c, 3, "c") // the failed upload's rows go with the first newer confirmed one
	b := upload("b-older-late", 10, "", 4)
	confirm(b, 4, "c") // older, confirmed after c: removes its own rows
	d := upload("d-newer-unconfirmed", 30, "", 6)
	confirm(c, 0, "c") // a retry of c: d is newer and not confirmed, its rows stay
	checkFeeds(t, ctx, db, table, "c:5 d-newer-unconfirmed:6")
	confirm(d, 5, "d-newer-unconfirmed")
	checkFeeds(t, ctx, db, table, "d-newer-unconfirmed:6")

	// Two uploads of the same second, ordered by their sequencers, confirmed
	// at once: the newer one's rows stay, whichever finishes last.
	e := upload("e", 40, "0066A1", 2)
	f := upload("f", 40, "0066A2", 3)
	var wg sync.WaitGroup
	for _, in := range []activities.SupersedeInput{e, f} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.SupersedeVersions(ctx, in); err != nil {
				t.Errorf("supersede %s: %v", in.FeedID, err)
			}
		}()
	}
	wg.Wait()
	checkFeeds(t, ctx, db, table, "f:3")
}

// checkFeeds compares the table's rows per feed with want ("id:rows …").
func checkFeeds(t *testing.T, ctx context.Context, db *sql.DB, table, want string) {
	t.Helper()
	rows, err := db.QueryContext(ctx, "SELECT _FEED_ID, COUNT(*) FROM "+table+" GROUP BY _FEED_ID")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%d", id, n))
	}
	sort.Strings(got)
	if strings.Join(got, " ") != want {
		t.Fatalf("rows per feed: %s, want %s", strings.Join(got, " "), want)
	}
}
