#!/usr/bin/env bash
# Creates or updates the project-local Python venv that runs the local stack's
# emulators (MiniStack for AWS, fakesnow for Snowflake), idempotently: it does
# nothing when .venv already matches requirements-stack.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${FEEDPIPE_VENV:-$root/.venv}
req=$root/requirements-stack.txt
py=${PYTHON:-python3}

command -v "$py" >/dev/null || { echo "venv.sh: $py not found; install Python 3.11+ (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "venv.sh: $("$py" --version) is too old; fakesnow needs Python 3.11+ (set PYTHON=python3.11)" >&2; exit 1; }

want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$venv/.requirements.sha256" ] && [ "$(cat "$venv/.requirements.sha256")" = "$want" ] && [ -x "$venv/bin/ministack" ]; then
  exit 0
fi
echo "venv.sh: installing the local stack's Python packages into $venv" >&2
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || {
  echo "venv.sh: '$py -m venv' failed; install the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
# DuckDB downloads extensions at run time, which a machine without internet cannot do:
# install httpfs (S3 reads for COPY INTO) from its wheel into DuckDB's extension directory.
"$venv/bin/python" -c 'from duckdb_extensions import import_extension; import_extension("httpfs", force_install=True)'
echo "$want" > "$venv/.requirements.sha256"
