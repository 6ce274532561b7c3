"""feedpipe Glue Python-shell job: staged NDJSON records of one feed -> one Parquet file.

Arguments (Glue passes them as `--NAME value` on the command line; MiniStack passes
them as environment variables, so both are read):
  MANIFEST  s3://bucket/key of the feed's manifest: {"feed_id": ..., "bucket": ..., "keys": [...]}
  TARGET    s3://bucket/key to write the Parquet file to
  FEED_ID   the feed whose records to keep (staging objects may hold other feeds' records)
  COLUMNS   optional JSON list of the pipeline's columns [{"name", "type", "nullable"}]; when
            given, the file has exactly those columns with those types (unknown fields dropped),
            else pyarrow infers them

Each staged record is one JSON object per line carrying "_feed_id" and "_line". Records of
other feeds are skipped, duplicate line numbers (Kinesis and Firehose deliver at least once)
are dropped, rows are written in line order. Any malformed input fails the job with a
message that names the object and line, which Glue reports as the run's ErrorMessage.
"""

import io
import json
import os
import sys

import boto3
import pyarrow as pa
import pyarrow.parquet as pq


def arg(name, required=True):
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--" + name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--" + name + "="):
            return a.split("=", 1)[1]
    value = os.environ.get(name)
    if not value and required:
        fail(f"missing job argument --{name}")
    return value


TYPES = {"string": pa.string(), "json": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
         "bool": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}


def arrow_schema(columns_json):
    fields = [pa.field("_feed_id", pa.string(), nullable=False), pa.field("_line", pa.int64(), nullable=False)]
    for c in json.loads(columns_json):
        if c["type"] not in TYPES:
            fail(f"column {c['name']}: unsupported type {c['type']}")
        fields.append(pa.field(c["name"], TYPES[c["type"]], nullable=bool(c.get("nullable"))))
    return pa.schema(fields)


def fail(msg):
    sys.stderr.write(f"feedpipe convert: {msg}\n")
    sys.exit(1)


def split_s3(url):
    if not url.startswith("s3://") or "/" not in url[5:]:
        fail(f"not an s3://bucket/key URL: {url!r}")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def main():
    manifest_url, target_url, feed_id = arg("MANIFEST"), arg("TARGET"), arg("FEED_ID")
    s3 = boto3.client("s3")
    bucket, key = split_s3(manifest_url)
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as e:  # noqa: BLE001 - any failure here is the job's failure
        fail(f"read manifest {manifest_url}: {e}")
    rows = {}
    for staged in manifest.get("keys", []):
        body = s3.get_object(Bucket=manifest["bucket"], Key=staged)["Body"].read()
        for n, raw in enumerate(body.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as e:
                fail(f"s3://{manifest['bucket']}/{staged} line {n}: not JSON ({e})")
            if not isinstance(rec, dict) or "_line" not in rec:
                fail(f"s3://{manifest['bucket']}/{staged} line {n}: not a feedpipe record (no _line)")
            if rec.get("_feed_id") != feed_id:
                continue
            rows.setdefault(int(rec["_line"]), rec)
    if not rows:
        fail(f"no records of feed {feed_id} in the {len(manifest.get('keys', []))} staged objects")
    ordered = [rows[k] for k in sorted(rows)]
    columns = arg("COLUMNS", required=False)
    try:
        if columns:
            schema = arrow_schema(columns)
            for r in ordered:
                for f in schema:
                    if f.type == pa.string() and isinstance(r.get(f.name), (dict, list)):
                        r[f.name] = json.dumps(r[f.name], separators=(",", ":"))
            table = pa.Table.from_pylist(ordered, schema=schema)
        else:
            table = pa.Table.from_pylist(ordered)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
        fail(f"records of feed {feed_id} do not fit the columns: {e}")
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    tb, tk = split_s3(target_url)
    s3.put_object(Bucket=tb, Key=tk, Body=buf.getvalue())
    print(json.dumps({"feed_id": feed_id, "rows": len(rows), "target": target_url}))


if __name__ == "__main__":
    main()
