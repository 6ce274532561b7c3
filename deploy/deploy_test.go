package deploy

import (
	"slices"
	"strings"
	"testing"
)

func allVars() map[string]string {
	return map[string]string{"database": "RAW", "schema": "FEEDS", "table": "CUSTOMERS", "columns": "ID NUMBER, NAME VARCHAR",
		"versions_table": "V", "file_format": "FF", "integration": "INT", "stage": "ST", "pipe": "P",
		"bucket": "dest-bucket", "snowflake_role_arn": "arn:aws:iam::1:role/sf", "worker_role": "W",
		"worker_user": "U", "warehouse": "WH"}
}

func TestSnowflakeSQLHasEveryObjectWithItsVariables(t *testing.T) {
	stmts, err := Statements("snowflake.sql", SnowflakeSQL, allVars())
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, s := range stmts {
		if strings.Contains(s.SQL, "&{") || strings.Contains(s.SQL, "--") {
			t.Errorf("line %d: %s", s.Line, s.SQL)
		}
		text = append(text, s.SQL)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS RAW.FEEDS.CUSTOMERS (_FEED_ID VARCHAR, _LINE NUMBER, ID NUMBER, NAME VARCHAR)",
		"CREATE STORAGE INTEGRATION IF NOT EXISTS INT TYPE = EXTERNAL_STAGE STORAGE_PROVIDER = 'S3' ENABLED = TRUE STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::1:role/sf' STORAGE_ALLOWED_LOCATIONS = ('s3://dest-bucket/')",
		"CREATE STAGE IF NOT EXISTS RAW.FEEDS.ST URL = 's3://dest-bucket/' STORAGE_INTEGRATION = INT",
		"CREATE PIPE IF NOT EXISTS RAW.FEEDS.P AUTO_INGEST = TRUE AS COPY INTO RAW.FEEDS.CUSTOMERS",
		"GRANT MONITOR ON PIPE RAW.FEEDS.P TO ROLE W",
		"GRANT USAGE ON WAREHOUSE WH TO ROLE W",
		"GRANT ROLE W TO USER U",
		"FILE_FORMAT = (FORMAT_NAME = 'RAW.FEEDS.FF')",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("snowflake.sql lacks %q", want)
		}
	}
	// What the local stack skips is exactly what fakesnow cannot take, each with why.
	var skipped []string
	for _, s := range stmts {
		if s.LocalSkip != "" {
			skipped = append(skipped, strings.TrimSuffix(strings.Join(strings.Fields(s.SQL)[:2], " "), ","))
			if !strings.HasPrefix(s.LocalSkip, "fakesnow has no") {
				t.Errorf("line %d: skip reason %q", s.Line, s.LocalSkip)
			}
		}
	}
	if got := strings.Join(skipped, ","); got != "CREATE STORAGE,CREATE PIPE,CREATE ROLE,GRANT ROLE,GRANT USAGE,GRANT USAGE,GRANT USAGE,GRANT SELECT,GRANT SELECT,GRANT MONITOR" {
		t.Errorf("local skips: %s", got)
	}
}

func TestStatementsNameAMissingVariable(t *testing.T) {
	v := allVars()
	delete(v, "bucket")
	_, err := Statements("snowflake.sql", SnowflakeSQL, v)
	if err == nil || !strings.Contains(err.Error(), "no value for &{bucket} (line") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Statements("x.sql", "CREATE TABLE T (A INT)\n", nil); err == nil || !strings.Contains(err.Error(), "line 1 does not end with ;") {
		t.Fatalf("unterminated: %v", err)
	}
}

func TestThePipesCopyForOneFile(t *testing.T) {
	stmts, err := Statements("snowflake.sql", SnowflakeSQL, allVars())
	if err != nil {
		t.Fatal(err)
	}
	copy, err := PipeCopy(stmts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CopyFile(copy, "customers/f'1/part-00001.parquet")
	if err != nil {
		t.Fatal(err)
	}
	want := "COPY INTO RAW.FEEDS.CUSTOMERS FROM @RAW.FEEDS.ST FILES = ('customers/f''1/part-00001.parquet') FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestDashboardMetrics(t *testing.T) {
	names, err := DashboardMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"feedpipe_feeds_in_flight", "feedpipe_stage_duration_seconds", "feedpipe_records_loaded_total", "temporal_worker_task_slots_used"} {
		if !slices.Contains(names, want) {
			t.Errorf("dashboard metrics %v lack %s", names, want)
		}
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_bucket") || n == "rate" || n == "sum" {
			t.Errorf("%q is not a metric family", n)
		}
	}
}
