-- feedpipe's Snowflake objects for one pipeline: run once per deployment, as a
-- role that may create them (SYSADMIN for the objects, ACCOUNTADMIN for the
-- storage integration). Every statement is idempotent.
--
--   snowsql -o variable_substitution=true -f deploy/snowflake.sql \
--     -D database=RAW -D schema=FEEDS -D table=CUSTOMERS \
--     -D columns="ID NUMBER, NAME VARCHAR, EMAIL VARCHAR" \
--     -D versions_table=FEEDPIPE_VERSIONS -D file_format=FEEDPIPE_PARQUET \
--     -D integration=FEEDPIPE_S3 -D stage=FEEDPIPE_DEST -D pipe=FEEDPIPE_PIPE \
--     -D bucket=<destination bucket> -D snowflake_role_arn=<the stack's SnowflakeRoleArn output> \
--     -D worker_role=FEEDPIPE_WORKER -D worker_user=<the worker's Snowflake user> \
--     -D warehouse=<the warehouse its queries run on>
--
-- The local stack applies this same file to fakesnow (internal/provision).
-- A statement marked "local: skip" is one fakesnow cannot take; the reason
-- follows the mark. Lines starting with -- are comments; a statement ends
-- with ; at the end of a line.

CREATE DATABASE IF NOT EXISTS &{database};

CREATE SCHEMA IF NOT EXISTS &{database}.&{schema};

-- _FEED_ID and _LINE name each row's feed and line: the confirm step counts a
-- feed's rows by _FEED_ID, and a line loaded twice shows as a repeated pair.
CREATE TABLE IF NOT EXISTS &{database}.&{schema}.&{table} (_FEED_ID VARCHAR, _LINE NUMBER, &{columns});

-- The uploads of each key of a replace pipeline, recorded before their load
-- is checked and confirmed once it is (columns: see
-- pipeline.VersionsColumns). A table made by an earlier feedpipe lacks
-- CONFIRMED: ALTER TABLE ... ADD COLUMN CONFIRMED BOOLEAN.
CREATE TABLE IF NOT EXISTS &{database}.&{schema}.&{versions_table} (PIPELINE VARCHAR, BUCKET VARCHAR, OBJECT_KEY VARCHAR, FEED_ID VARCHAR, UPLOAD_ORDER VARCHAR, RECORDED_AT TIMESTAMP_NTZ, CONFIRMED BOOLEAN);

CREATE FILE FORMAT IF NOT EXISTS &{database}.&{schema}.&{file_format} TYPE = PARQUET;

-- Snowflake reads the destination bucket through the role the CloudFormation
-- stack made for it. After creating the integration, run
-- DESC INTEGRATION &{integration} and give its STORAGE_AWS_IAM_USER_ARN and
-- STORAGE_AWS_EXTERNAL_ID to the stack (parameters SnowflakeIamUserArn and
-- SnowflakeExternalId), which lets that user assume the role.
-- local: skip, fakesnow has no storage integrations (its stage reads MiniStack with a DuckDB secret instead)
CREATE STORAGE INTEGRATION IF NOT EXISTS &{integration}
  TYPE = EXTERNAL_STAGE
  STORAGE_PROVIDER = 'S3'
  ENABLED = TRUE
  STORAGE_AWS_ROLE_ARN = '&{snowflake_role_arn}'
  STORAGE_ALLOWED_LOCATIONS = ('s3://&{bucket}/');

-- The stage's URL is the bucket's root, so a file's path in the stage, which
-- COPY_HISTORY reports as FILE_NAME, is its S3 key: the confirm step matches
-- the keys Convert wrote against it.
CREATE STAGE IF NOT EXISTS &{database}.&{schema}.&{stage}
  URL = 's3://&{bucket}/'
  STORAGE_INTEGRATION = &{integration}
  FILE_FORMAT = (FORMAT_NAME = '&{database}.&{schema}.&{file_format}');

-- The pipe loads each Parquet file once, when its Object Created
-- notification arrives. Columns match by name, so the file's column order
-- does not matter and _FEED_ID/_LINE land in their columns. Snowpipe's
-- ON_ERROR default, SKIP_FILE, loads nothing of a file with a bad row and
-- records it as failed, which fails the run's confirm step with Snowflake's
-- first error. The format is given inline (the same as the stage's named
-- one) because the local emulator's COPY takes no FORMAT_NAME; the local
-- Snowpipe stand-in runs this COPY for each new file. Then point the
-- destination bucket's notifications at the pipe: deploy deploy/aws.yaml
-- again with SnowpipeQueueArn = the notification_channel of SHOW PIPES.
-- local: skip, fakesnow has no pipes (the stand-in in internal/snowpipe runs the pipe's COPY per file)
CREATE PIPE IF NOT EXISTS &{database}.&{schema}.&{pipe}
  AUTO_INGEST = TRUE
  AS COPY INTO &{database}.&{schema}.&{table}
  FROM @&{database}.&{schema}.&{stage}
  FILE_FORMAT = (TYPE = PARQUET)
  MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;

-- The worker's role: it counts and removes rows, records uploads, and reads
-- load history and the pipe's status, on the warehouse, as the worker's user.
-- local: skip, fakesnow has no roles
CREATE ROLE IF NOT EXISTS &{worker_role};
-- local: skip, fakesnow has no roles
GRANT ROLE &{worker_role} TO USER &{worker_user};
-- local: skip, fakesnow has no grants
GRANT USAGE ON WAREHOUSE &{warehouse} TO ROLE &{worker_role};
-- local: skip, fakesnow has no grants
GRANT USAGE ON DATABASE &{database} TO ROLE &{worker_role};
-- local: skip, fakesnow has no grants
GRANT USAGE ON SCHEMA &{database}.&{schema} TO ROLE &{worker_role};
-- local: skip, fakesnow has no grants
GRANT SELECT, DELETE ON TABLE &{database}.&{schema}.&{table} TO ROLE &{worker_role};
-- local: skip, fakesnow has no grants
GRANT SELECT, INSERT, UPDATE ON TABLE &{database}.&{schema}.&{versions_table} TO ROLE &{worker_role};
-- local: skip, fakesnow has no grants
GRANT MONITOR ON PIPE &{database}.&{schema}.&{pipe} TO ROLE &{worker_role};
