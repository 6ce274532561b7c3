package doctor

import (
	"context"
	"database/sql/driver"
	"strings"
	"testing"

	"github.com/feedpipe/feedpipe/internal/pipeline"
	"github.com/feedpipe/feedpipe/internal/sqlfake"
)

// The pipe check reads SYSTEM$PIPE_STATUS (which the local emulator lacks)
// and fails a pipe that is not running with the statement that resumes it.
func TestDoctorChecksThePipe(t *testing.T) {
	p := pipeline.Pipeline{Name: "customers", Confirm: pipeline.ConfirmCopyHistory, OnNewVersion: pipeline.NewVersionAppend,
		Snowflake: pipeline.Snowflake{Database: "RAW", Schema: "FEEDS", Table: "CUSTOMERS", Pipe: "FEEDPIPE_PIPE"}}
	for _, tc := range []struct{ status, want string }{
		{`{"executionState":"RUNNING","pendingFileCount":0}`, ""},
		{`{"executionState":"PAUSED","pendingFileCount":3}`, "ALTER PIPE RAW.FEEDS.FEEDPIPE_PIPE SET PIPE_EXECUTION_PAUSED = FALSE"},
	} {
		db, f := sqlfake.Open(func(q string, args []driver.NamedValue) sqlfake.Answer {
			if strings.Contains(q, "SYSTEM$PIPE_STATUS") {
				if len(args) != 1 || args[0].Value != "RAW.FEEDS.FEEDPIPE_PIPE" {
					t.Errorf("SYSTEM$PIPE_STATUS of %v", args)
				}
				return sqlfake.Answer{Columns: []string{"STATUS"}, Rows: [][]driver.Value{{tc.status}}}
			}
			return sqlfake.Answer{Columns: []string{"_FEED_ID", "_LINE"}} // the table check
		})
		var pipe *Check
		checks := Run(context.Background(), Deps{Snowflake: db}, &pipeline.Config{TaskQueue: "q", Pipelines: []pipeline.Pipeline{p}}, Options{})
		for i := range checks {
			if strings.HasPrefix(checks[i].Name, "Snowflake pipe RAW.FEEDS.FEEDPIPE_PIPE running") {
				pipe = &checks[i]
			}
		}
		switch {
		case pipe == nil:
			t.Fatalf("no pipe check among %+v (queries %q)", checks, f.Queries())
		case tc.want == "" && !pipe.OK:
			t.Errorf("a running pipe failed: %+v", pipe)
		case tc.want != "" && (pipe.OK || !strings.Contains(pipe.Fix, tc.want) || !strings.Contains(pipe.Problem, "PAUSED")):
			t.Errorf("a paused pipe: %+v, want a failure with %q", pipe, tc.want)
		}
		db.Close()
	}
}
