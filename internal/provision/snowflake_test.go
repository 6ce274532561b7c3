package provision

import (
	"strings"
	"testing"

	"github.com/feedpipe/feedpipe/deploy"
	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// The versions table deploy/snowflake.sql makes is the one SupersedeVersions
// writes, and the local names fill every variable of the file.
func TestSnowflakeSQLMatchesTheCode(t *testing.T) {
	n := DefaultSnowflakeNames()
	stmts, err := deploy.Statements("deploy/snowflake.sql", deploy.SnowflakeSQL, SQLVars(n, "feedpipe-dest"))
	if err != nil {
		t.Fatal(err)
	}
	want := "CREATE TABLE IF NOT EXISTS FEEDPIPE.RAW.FEEDPIPE_VERSIONS (" + pipeline.VersionsColumns + ")"
	found := false
	for _, s := range stmts {
		found = found || s.SQL == want
		if strings.HasPrefix(s.SQL, "CREATE TABLE IF NOT EXISTS FEEDPIPE.RAW.CUSTOMERS ") && strings.Count(s.SQL, "_FEED_ID") != 1 {
			t.Errorf("the table declares _FEED_ID twice: %s", s.SQL)
		}
	}
	if !found {
		t.Errorf("deploy/snowflake.sql has no %s", want)
	}
}
