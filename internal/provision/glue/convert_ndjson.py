"""feedpipe Glue Python-shell job: staged NDJSON records of one feed -> one Parquet file.

Arguments (Glue passes them as `--NAME value` on the command line; MiniStack passes
them as environment variables, so both are read):
  MANIFEST  s3://bucket/key of the feed's manifest: {"feed_id": ..., "bucket": ..., "keys": [...]}
  TARGET    s3://bucket/key to write the Parquet file to
  FEED_ID   the feed whose records to keep (staging objects may hold other feeds' records)
  COLUMNS   optional JSON list of the pipeline's columns, as feedpipe's schema writes them
            ({"name", "type", "nullable", "precision", "scale", "fields", "items", ...}); when
            given, the file has exactly those columns with those types (unknown fields dropped,
            objects as structs, lists as lists, decimals exact), else pyarrow infers them

Each staged record is one JSON object per line carrying "_feed_id" and "_line". Records of
other feeds are skipped, duplicate line numbers (Kinesis and Firehose deliver at least once)
are dropped, rows are written in line order. Any malformed input fails the job with a
message that names the object and line, which Glue reports as the run's ErrorMessage.
"""

import datetime
import decimal
import io
import json
import os
import re
import sys

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


SCALARS = {"string": pa.string(), "json": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
           "bool": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}


def arrow_type(c, path):
    t = c.get("type")
    if t in SCALARS:
        if t in ("timestamp", "date") and c.get("formats"):
            raise ColumnError(f"column {path}: custom {t} formats are not supported by the Glue job; use conversion = \"local\"")
        return SCALARS[t]
    if t == "decimal":
        return pa.decimal128(int(c["precision"]), int(c.get("scale") or 0))
    if t == "object":
        return pa.struct([pa.field(f["name"], arrow_type(f, f"{path}.{f['name']}"), nullable=bool(f.get("nullable")))
                          for f in c.get("fields") or []])
    if t == "list":
        items = c.get("items") or {}
        return pa.list_(pa.field("element", arrow_type(items, path + "[]"), nullable=bool(items.get("nullable"))))
    raise ColumnError(f"column {path}: unsupported type {t}")


def arrow_schema(columns):
    fields = [pa.field("_feed_id", pa.string(), nullable=False), pa.field("_line", pa.int64(), nullable=False)]
    for c in columns:
        fields.append(pa.field(c["name"], arrow_type(c, c["name"]), nullable=bool(c.get("nullable"))))
    return pa.schema(fields)


class ColumnError(ValueError):
    """A value (or a column) that does not fit the declared columns."""


def coerce(v, c, path):
    """The value of JSON value v (numbers parsed as Decimal) for column c, or ColumnError."""
    t = c.get("type")
    if v is None:
        if not c.get("nullable"):
            raise ColumnError(f"field {path} is required")
        return None
    if t == "string":
        if isinstance(v, str):
            return v
        if c.get("any_scalar") and isinstance(v, bool):
            return "true" if v else "false"
        if c.get("any_scalar") and isinstance(v, (int, decimal.Decimal)):
            return str(v)
        raise ColumnError(f"field {path}: want a string, got {json.dumps(v, default=str)[:40]}")
    if t == "json":
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=_number)
    if t == "bool":
        if isinstance(v, bool):
            return v
        raise ColumnError(f"field {path}: want true or false, got {v!r}")
    if isinstance(v, bool):
        raise ColumnError(f"field {path}: want a {t}, got {str(v).lower()}")
    if t == "int64":
        if isinstance(v, int) or (isinstance(v, decimal.Decimal) and v == v.to_integral_value() and abs(v) <= 2**53):
            return int(v)
        raise ColumnError(f"field {path}: want an integer, got {v}")
    if t == "float64":
        if isinstance(v, (int, decimal.Decimal)):
            return float(v)
        raise ColumnError(f"field {path}: want a number, got {v!r}")
    if t == "decimal":
        try:
            d = decimal.Decimal(v)
        except (decimal.InvalidOperation, TypeError):
            raise ColumnError(f"field {path}: want a decimal number like 12.34, got {v!r}") from None
        scale, precision = int(c.get("scale") or 0), int(c["precision"])
        if not d.is_finite():
            raise ColumnError(f"field {path}: want a decimal number like 12.34, got {v!r}")
        if d != 0 and d.normalize().as_tuple().exponent < -scale:
            raise ColumnError(f"field {path}: {v} has more digits after the point than the column's {scale}")
        q = d.quantize(decimal.Decimal(1).scaleb(-scale))
        if len(q.as_tuple().digits) > precision:
            raise ColumnError(f"field {path}: {v} has more than the {precision} digits of decimal({precision},{scale})")
        return q
    if t == "timestamp":
        if not isinstance(v, str):
            raise ColumnError(f"field {path}: want a timestamp string, got {v}")
        return parse_timestamp(v, path)
    if t == "date":
        try:
            return datetime.date.fromisoformat(v)
        except (TypeError, ValueError):
            raise ColumnError(f"field {path}: want a date like 2026-01-31, got {v!r}") from None
    if t == "object":
        if not isinstance(v, dict):
            raise ColumnError(f"field {path}: want an object, got {json.dumps(v, default=str)[:40]}")
        return {f["name"]: coerce(v.get(f["name"]), f, f"{path}.{f['name']}") for f in c.get("fields") or []}
    if t == "list":
        if not isinstance(v, list):
            raise ColumnError(f"field {path}: want an array, got {json.dumps(v, default=str)[:40]}")
        items = c.get("items") or {}
        return [coerce(x, items, f"{path}[{i + 1}]") for i, x in enumerate(v)]
    raise ColumnError(f"field {path}: unsupported type {t}")


# RFC 3339 as feedpipe's local converter reads it by default, or a bare date (midnight UTC).
RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2}))?")


def parse_timestamp(v, path):
    """v as an aware UTC datetime, fractions past the microsecond cut off; or ColumnError."""
    m = RFC3339.fullmatch(v)
    try:
        if not m:
            raise ValueError
        y, mo, d, h, mi, s, frac, zone = m.groups()
        if h is None:
            return datetime.datetime(int(y), int(mo), int(d), tzinfo=datetime.timezone.utc)
        tz = datetime.timezone.utc
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            tz = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        us = int((frac or "").ljust(6, "0")[:6])
        ts = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), us, tzinfo=tz)
    except ValueError:
        raise ColumnError(f"field {path}: {v!r} is not an RFC 3339 timestamp like 2026-01-31T12:00:00Z") from None
    return ts.astimezone(datetime.timezone.utc)


def _number(v):
    if isinstance(v, decimal.Decimal):
        return float(v)  # json.loads gives Decimal for numbers with a point or an exponent only
    raise TypeError(f"not JSON: {v!r}")


def build_table(records, columns):
    """The Arrow table of records (JSON objects, numbers as Decimal) in line order, typed by columns
    when given (a list of column dicts), else inferred by pyarrow. Raises ColumnError naming the line."""
    if not columns:
        return pa.Table.from_pylist([json.loads(json.dumps(r, default=_number)) for r in records])
    schema = arrow_schema(columns)
    rows = []
    for r in records:
        row = {"_feed_id": r.get("_feed_id"), "_line": int(r["_line"])}
        for c in columns:
            try:
                row[c["name"]] = coerce(r.get(c["name"]), c, c["name"])
            except ColumnError as e:
                raise ColumnError(f"line {row['_line']}: {e}") from None
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def fail(msg):
    sys.stderr.write(f"feedpipe convert: {msg}\n")
    sys.exit(1)


def split_s3(url):
    if not url.startswith("s3://") or "/" not in url[5:]:
        fail(f"not an s3://bucket/key URL: {url!r}")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def main():
    import boto3  # here, so that build_table can be tested without it

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
                rec = json.loads(raw, parse_float=decimal.Decimal)
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
        table = build_table(ordered, json.loads(columns) if columns else None)
    except (ColumnError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
        fail(f"records of feed {feed_id} do not fit the columns: {e}")
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    tb, tk = split_s3(target_url)
    s3.put_object(Bucket=tb, Key=tk, Body=buf.getvalue())
    print(json.dumps({"feed_id": feed_id, "rows": len(rows), "target": target_url}))


if __name__ == "__main__":
    main()
