"""feedpipe Glue Python-shell job: staged NDJSON records of one feed -> one Parquet file.

Arguments (Glue passes them as `--NAME value` on the command line; MiniStack passes them
as environment variables, so both are read):
  STAGING      s3://bucket/prefix/ - the feed's staging prefix (ends with "/"), under which
               Firehose's dynamic partitioning writes only this feed's records
               (<staging prefix>feed=<feed id>/YYYY/MM/DD/HH/<object>)
  LINES        the feed's line count: its records' line numbers run 1..LINES
  TARGET       s3://bucket/key to write the Parquet file to
  FEED_ID      the feed whose records to keep (records of any other feed are skipped)
  COLUMNS      optional JSON list of the pipeline's columns, as feedpipe's schema writes them
               ({"name", "type", "nullable", "precision", "scale", "fields", "items", ...}); when
               given, the file has exactly those columns with those types (unknown fields
               dropped, objects as structs, lists as lists, decimals exact), else pyarrow infers
               them from the feed's first batch of records (see below)
  WORKFLOW_ID  informational: the feedpipe workflow that started the run

Each staged record is one JSON object per line carrying "_feed_id" and "_line". The job
streams in bounded memory: it lists the prefix page by page (S3 lists keys in ascending
order, so objects are read in key order), reads one object at a time in chunks, drops
duplicate line numbers (Kinesis and Firehose deliver at least once; the first copy read
wins) with a bitset of LINES bits, and writes the records a batch at a time (BATCH_ROWS
records or BATCH_BYTES of NDJSON, whichever comes first) as the row groups of a local
Parquet file, which it then uploads to TARGET (multipart when big). Memory holds the
bitset and one batch, however big the feed. Rows are therefore in the order read, not in
line order; sort by _line when order matters.

Every batch has the same schema: COLUMNS' (with _feed_id and _line first), or, without
COLUMNS, the first record's keys with the types pyarrow infers from the first batch (other
keys are dropped, as pyarrow's from_pylist does); a later record that does not fit it
(a null-only column of the first batch that now has values, an integer column that now
has fractions, a new nested field) fails the job - declare the pipeline's columns to type
such feeds. A feed with no records gets a valid Parquet file with no rows and the schema.

Any malformed input fails the job with a message that names the object, the record's
line in it and, for a value, the record's _line and the field's path; Glue reports it as
the run's ErrorMessage.
"""

import datetime
import decimal
import json
import os
import re
import sys
import tempfile

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
        if isinstance(v, int) and not -2**63 <= v < 2**63:
            raise ColumnError(f"field {path}: {v} does not fit a 64-bit integer")
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


# What pyarrow raises for a value that does not convert to a type.
ARROW_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError)


def build_table(records, columns, schema=None, where=None):
    """The Arrow table of records (JSON objects, numbers as Decimal), in the order given, typed by
    columns when given (a list of column dicts), else inferred by pyarrow: from records alone, or,
    with schema (an earlier batch's), checked against and widened to it, so that
    every batch of a feed has the same schema. where optionally gives each record's location
    ("s3://bucket/key line 7"). Raises ColumnError naming the record (by where, else by its
    _line) and the field."""

    def at(i):
        line = records[i].get("_line")
        return f"{where[i]} (_line {line})" if where else f"line {line}"

    if not columns:
        return infer_table([json.loads(json.dumps(r, default=_number)) for r in records], schema, at)
    schema = arrow_schema(columns)
    rows = []
    for i, r in enumerate(records):
        row = {"_feed_id": r.get("_feed_id"), "_line": int(r["_line"])}
        for c in columns:
            try:
                row[c["name"]] = coerce(r.get(c["name"]), c, c["name"])
            except ColumnError as e:
                raise ColumnError(f"{at(i)}: {e}") from None
        rows.append(row)
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except ARROW_ERRORS:
        for i, row in enumerate(rows):  # name the first value that does not convert
            for f in schema:
                try:
                    pa.array([row.get(f.name)], type=f.type)
                except ARROW_ERRORS as e:
                    raise ColumnError(f"{at(i)}: field {f.name}: {e}") from None
        raise


def infer_table(rows, schema, at):
    """The table of rows (plain JSON values) as pyarrow types them: the columns of the first row,
    or with schema, schema's columns with the inferred types checked against (and widened to)
    schema's. at(i) names row i in errors."""
    names = schema.names if schema is not None else list(rows[0].keys()) if rows else []
    arrays = []
    for name in names:
        values = [r.get(name) for r in rows]
        arr = _infer(values, name, at)
        if schema is not None and arr.type != schema.field(name).type:
            arr = _widen(arr, values, schema.field(name).type, name, at)
        arrays.append(arr)
    if schema is None:
        return pa.Table.from_arrays(arrays, names=names)
    return pa.Table.from_arrays(arrays, schema=schema)


def _infer(values, name, at):
    """The array of values as pyarrow infers it, or ColumnError naming the first value that does
    not fit the ones before it."""
    try:
        return pa.array(values)
    except ARROW_ERRORS as e:
        err = e
    lo, hi = 1, len(values)  # values[:hi] fails; find the shortest prefix that does
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            pa.array(values[:mid])
            lo = mid + 1
        except ARROW_ERRORS as e:
            hi, err = mid, e
    raise ColumnError(f"{at(hi - 1)}: field {name}: {err}")


def _widen(arr, values, want, name, at):
    """arr (inferred from values) cast to type want, or ColumnError naming the first value that
    does not fit want."""
    if misfit(arr.type, want, name) is None:
        try:
            return arr.cast(want, safe=True)
        except ARROW_ERRORS:
            pass  # e.g. an integer too big for a float64: find it below
    for i, v in enumerate(values):
        try:
            one = pa.array([v])
            bad = misfit(one.type, want, name)
            if bad is None:
                one.cast(want, safe=True)
        except ARROW_ERRORS as e:
            bad = f"field {name}: {e}"
        if bad:
            raise ColumnError(f"{at(i)}: {bad}")
    raise ColumnError(f"{at(0)} and the records after it: field {name}: want {want}, got {arr.type}")


def misfit(got, want, path):
    """Why values pyarrow typed got do not fit type want, or None if they do: the same type,
    nulls, integers for floats, and lists and structs (by field name) of such."""
    if got == want or pa.types.is_null(got):
        return None
    if pa.types.is_integer(got) and pa.types.is_floating(want):
        return None
    if pa.types.is_list(got) and pa.types.is_list(want):
        return misfit(got.value_type, want.value_type, path + "[]")
    if pa.types.is_struct(got) and pa.types.is_struct(want):
        for f in got:
            i = want.get_field_index(f.name)
            if i < 0:
                return f"field {path}.{f.name}: not a field of {path} in the first batch"
            bad = misfit(f.type, want.field(i).type, f"{path}.{f.name}")
            if bad:
                return bad
        return None
    return f"field {path}: want {want}, got {got}"


class RecordError(ValueError):
    """A staged line that is not a record of the feed."""


# Records per batch; each batch is one row group of the file.
BATCH_ROWS = 65536
# NDJSON bytes per batch: the batch's Python objects take several times more.
BATCH_BYTES = 32 << 20
# Bytes read from a staged object at a time.
READ_CHUNK = 1 << 20
# The schema of a file with no records and no COLUMNS: what pyarrow infers for them.
NO_RECORDS = pa.schema([pa.field("_feed_id", pa.string()), pa.field("_line", pa.int64())])


class FeedWriter:
    """Writes one feed's staged records to a local Parquet file, a batch (one row group) at a
    time, keeping the first copy of each line (a bitset of the feed's line count)."""

    def __init__(self, path, feed_id, lines, columns):
        self.path, self.feed_id, self.lines, self.columns = path, feed_id, lines, columns or None
        self.schema = arrow_schema(columns) if columns else None
        self.seen = bytearray((lines + 7) // 8)
        self.writer = None
        self.batch, self.where, self.batch_bytes = [], [], 0
        self.rows = self.row_groups = self.duplicates = self.other_feeds = 0

    def add(self, rec, where, size):
        """Adds staged record rec (a JSON object with "_line"), read at where ("s3://bucket/key
        line 7") from size bytes of NDJSON."""
        if rec.get("_feed_id") != self.feed_id:
            self.other_feeds += 1
            return
        line = rec["_line"]
        if not isinstance(line, int) or isinstance(line, bool):
            raise RecordError(f"{where}: _line {json.dumps(line, default=str)} is not a line number")
        if not 1 <= line <= self.lines:
            raise RecordError(f"{where}: _line {line} is out of range: the feed has {self.lines} lines")
        byte, bit = (line - 1) >> 3, 1 << ((line - 1) & 7)
        if self.seen[byte] & bit:
            self.duplicates += 1
            return
        self.seen[byte] |= bit
        self.batch.append(rec)
        self.where.append(where)
        self.batch_bytes += size
        if len(self.batch) >= BATCH_ROWS or self.batch_bytes >= BATCH_BYTES:
            self.flush()

    def flush(self):
        """Writes the batch as a row group."""
        if not self.batch:
            return
        table = build_table(self.batch, self.columns, schema=self.schema, where=self.where)
        self.batch, self.where, self.batch_bytes = [], [], 0
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.row_groups += 1

    def close(self):
        """Writes the last batch and completes the file (with no rows when there were no records)."""
        self.flush()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema or NO_RECORDS, compression="zstd")
        self.writer.close()


def fail(msg):
    sys.stderr.write(f"feedpipe convert: {msg}\n")
    sys.exit(1)


def split_s3(url):
    if not url.startswith("s3://") or "/" not in url[5:]:
        fail(f"not an s3://bucket/key URL: {url!r}")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def s3_client():
    """The S3 client the job calls: list_objects_v2, get_object and upload_file."""
    import boto3  # here, so that build_table can be tested without it

    return boto3.client("s3")


def staged_keys(s3, bucket, prefix):
    """The keys of the objects under prefix, a page of the listing at a time, in S3's order
    (ascending)."""
    token = None
    while True:
        req = {"Bucket": bucket, "Prefix": prefix}
        if token:
            req["ContinuationToken"] = token
        try:
            page = s3.list_objects_v2(**req)
        except Exception as e:  # noqa: BLE001 - any failure here is the job's failure
            fail(f"list s3://{bucket}/{prefix}: {e}")
        for o in page.get("Contents") or []:
            if not o["Key"].endswith("/"):  # a "folder" marker
                yield o["Key"]
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


def object_lines(body, url):
    """The lines of a streaming object body (split at \\n), read READ_CHUNK bytes at a time."""
    pending = []
    while True:
        try:
            chunk = body.read(READ_CHUNK)
        except Exception as e:  # noqa: BLE001
            fail(f"read {url}: {e}")
        if not chunk:
            break
        parts = chunk.split(b"\n")
        pending.append(parts[0])
        if len(parts) > 1:
            yield b"".join(pending)
            yield from parts[1:-1]
            pending = [parts[-1]]
    tail = b"".join(pending)
    if tail:
        yield tail


def read_object(s3, bucket, key, out):
    """Adds the records of staged object key to out."""
    url = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as e:  # noqa: BLE001
        fail(f"read {url}: {e}")
    try:
        for n, raw in enumerate(object_lines(body, url), start=1):
            if not raw.strip():
                continue
            where = f"{url} line {n}"
            try:
                rec = json.loads(raw, parse_float=decimal.Decimal)
            except ValueError as e:
                raise RecordError(f"{where}: not JSON ({e})") from None
            if not isinstance(rec, dict) or "_line" not in rec:
                raise RecordError(f"{where}: not a feedpipe record (no _line)")
            out.add(rec, where, len(raw))
    finally:
        body.close()


def main():
    staging, target_url, feed_id = arg("STAGING"), arg("TARGET"), arg("FEED_ID")
    lines_arg, columns_arg = arg("LINES"), arg("COLUMNS", required=False)
    bucket, prefix = split_s3(staging)
    if not prefix.endswith("/"):
        fail(f"STAGING {staging!r} is not a prefix ending with /")
    target_bucket, target_key = split_s3(target_url)
    try:
        lines = int(lines_arg)
        if lines < 0:
            raise ValueError
    except ValueError:
        fail(f"LINES {lines_arg!r} is not a line count")
    try:
        columns = json.loads(columns_arg) if columns_arg else None
    except ValueError as e:
        fail(f"COLUMNS is not JSON: {e}")
    s3 = s3_client()
    with tempfile.TemporaryDirectory(prefix="feedpipe-convert-") as tmp:
        path = os.path.join(tmp, "feed.parquet")
        try:
            out = FeedWriter(path, feed_id, lines, columns)
        except (ColumnError, KeyError, TypeError, ValueError) as e:
            fail(f"COLUMNS of feed {feed_id}: {e}")
        objects = 0
        try:
            for key in staged_keys(s3, bucket, prefix):
                read_object(s3, bucket, key, out)
                objects += 1
            out.close()
        except RecordError as e:
            fail(str(e))
        except ColumnError as e:
            fail(f"records of feed {feed_id} do not fit the columns: {e}" if out.columns else
                 f"records of feed {feed_id} do not fit the types inferred from its first records "
                 f"(declare the pipeline's columns to type them): {e}")
        try:
            s3.upload_file(path, target_bucket, target_key)
        except Exception as e:  # noqa: BLE001
            fail(f"upload {target_url}: {e}")
    print(json.dumps({"feed_id": feed_id, "workflow_id": arg("WORKFLOW_ID", required=False), "rows": out.rows,
                      "lines": lines, "missing": lines - out.rows, "objects": objects, "duplicates": out.duplicates,
                      "other_feeds": out.other_feeds, "row_groups": out.row_groups, "target": target_url}))


if __name__ == "__main__":
    main()
    # The job's work is done and reported. Leave without the interpreter's teardown: pyarrow's
    # thread pools can abort the process there (SIGABRT, "terminate called without an active
    # exception"), which would fail a run whose Parquet file is already uploaded.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
