package provision

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// Column is one column of a Snowflake table.
type Column struct {
	Name string
	Type string // Snowflake type, e.g. NUMBER(38,0), VARCHAR, TIMESTAMP_NTZ
}

// SnowflakeNames are the Snowflake objects of one pipeline deployment.
type SnowflakeNames struct {
	Database string
	Schema   string
	Table    string
	Stage    string // external stage on the destination bucket
	Versions string // the loaded uploads of each key (pipelines with on_new_version = replace)
	Columns  []Column
}

// DefaultSnowflakeNames is the layout of the local stack's sample customers feed.
// _FEED_ID and _LINE identify each row's source feed and line, so loads can be
// reconciled per feed and duplicates found.
func DefaultSnowflakeNames() SnowflakeNames {
	return SnowflakeNames{
		Database: "FEEDPIPE",
		Schema:   "RAW",
		Table:    "CUSTOMERS",
		Stage:    "FEEDPIPE_DEST",
		Versions: "FEEDPIPE_VERSIONS",
		Columns: []Column{
			{"_FEED_ID", "VARCHAR"},
			{"_LINE", "BIGINT"},
			{"ID", "BIGINT"},
			{"NAME", "VARCHAR"},
			{"EMAIL", "VARCHAR"},
			{"COUNTRY", "VARCHAR"},
			{"BALANCE", "DOUBLE"},
			{"ACTIVE", "BOOLEAN"},
			{"SIGNED_UP", "VARCHAR"},
		},
	}
}

// LocalS3 tells a Snowflake emulator (fakesnow, DuckDB inside) how to reach
// an S3 emulator; real Snowflake reaches S3 through the stage's credentials or
// storage integration instead, so leave it nil there.
type LocalS3 struct {
	Endpoint string // host:port
	KeyID    string
	Secret   string
	Region   string
}

// Snowflake creates the database, schema, table and external stage of n on
// the destination bucket, if they do not exist. db must be a gosnowflake
// connection; each statement is sent on its own.
func Snowflake(ctx context.Context, db *sql.DB, n SnowflakeNames, destBucket string, local *LocalS3) error {
	var cols []string
	for _, c := range n.Columns {
		cols = append(cols, c.Name+" "+c.Type)
	}
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS " + n.Database,
		"CREATE SCHEMA IF NOT EXISTS " + n.Database + "." + n.Schema,
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s.%s (%s)", n.Database, n.Schema, n.Table, strings.Join(cols, ", ")),
		fmt.Sprintf("CREATE STAGE IF NOT EXISTS %s.%s.%s URL='s3://%s/' FILE_FORMAT=(TYPE=PARQUET)",
			n.Database, n.Schema, n.Stage, destBucket),
	}
	if n.Versions != "" {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s.%s (%s)", n.Database, n.Schema, n.Versions, pipeline.VersionsColumns))
	}
	if local != nil {
		// A DuckDB statement that fakesnow passes through: httpfs then reads
		// s3:// URLs from the emulator. Secrets live in the DuckDB instance,
		// so this is sent at every start. (fakesnow recognises CREATE SECRET
		// but not CREATE OR REPLACE SECRET.)
		stmts = append(stmts, fmt.Sprintf(
			"CREATE SECRET IF NOT EXISTS feedpipe_local_s3 (TYPE s3, KEY_ID '%s', SECRET '%s', REGION '%s', ENDPOINT '%s', URL_STYLE 'path', USE_SSL false)",
			local.KeyID, local.Secret, local.Region, local.Endpoint))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("snowflake provisioning %q: %w", s, err)
		}
	}
	return nil
}

// CopyStatement is the pipe's COPY INTO for one file of the stage: the
// statement Snowpipe runs on auto-ingest, and the local stand-in runs too.
func CopyStatement(n SnowflakeNames, key string) string {
	return fmt.Sprintf("COPY INTO %s.%s.%s FROM @%s.%s.%s FILES=('%s') FILE_FORMAT=(TYPE=PARQUET) MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE",
		n.Database, n.Schema, n.Table, n.Database, n.Schema, n.Stage, strings.ReplaceAll(key, "'", "''"))
}
