#!/usr/bin/env bash
# Converter benchmark: our `feedpipe convert` against DuckDB on the same
# deterministic NDJSON feed (KIND wide: 26 customer fields, nested; ids: 10
# fields of values that hardly repeat), same compression (zstd) and row-group size
# (122,880 rows, DuckDB's default; ours also caps a row group at 64 MiB),
# alternating runs. Prints MB/s, peak RSS (/usr/bin/time -v) and output size
# for each run, then the medians and the ratio ours/DuckDB.
#
#   bench/convert.sh [SIZE_BYTES (default 1 GiB)] [RUNS (default 3)] [KIND (default wide)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-1073741824}
runs=${2:-3}
kind=${3:-wide}
case $kind in wide|ids) ;; *) echo "bench: KIND $kind: use wide or ids" >&2; exit 2 ;; esac
work=${BENCH_DIR:-$root/bench/out}
mkdir -p "$work"
bash "$root/scripts/venv.sh"
py=$root/.venv/bin/python
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (Debian: apt-get install time)" >&2; exit 1; }
(cd "$root" && go build -o "$work/feedpipe" ./cmd/feedpipe)

feed=$work/feed-$size.ndjson
[ "$kind" = wide ] || feed=$work/feed-$kind-$size.ndjson
if [ ! -s "$feed" ]; then
  "$work/feedpipe" gen "-$kind" -size "$size" -seed 42 "$feed"
fi
mb=$(python3 -c "import os,sys; print(os.path.getsize(sys.argv[1])/1e6)" "$feed")
cat > "$work/duckdb_convert.py" <<'PY'
import sys, duckdb
src, dst = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited')) TO '{dst}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)")
PY

measure() { # name cmd... → "seconds rss_kib bytes"
  local name=$1; shift
  local out=$work/$name.parquet
  rm -f "$out"
  /usr/bin/time -v -o "$work/$name.time" "$@" >/dev/null
  local secs rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/$name.time")
  echo "$secs $rss $(stat -c %s "$out")"
}

echo "feed: $feed ($mb MB), $runs runs each, alternating"
printf '%-8s %4s %9s %9s %10s %12s\n' engine run seconds MB/s "RSS MiB" "output MB"
ours=() duck=()
for i in $(seq 1 "$runs"); do
  read -r s r b < <(measure ours "$work/feedpipe" convert -compression zstd -row-group-rows 122880 "$feed" "$work/ours.parquet")
  ours+=("$s $r $b")
  printf '%-8s %4d %9.2f %9.1f %10.0f %12.1f\n' ours "$i" "$s" "$(echo "$mb / $s" | bc -l)" "$(echo "$r / 1024" | bc -l)" "$(echo "$b / 1000000" | bc -l)"
  read -r s r b < <(measure duckdb "$py" "$work/duckdb_convert.py" "$feed" "$work/duckdb.parquet")
  duck+=("$s $r $b")
  printf '%-8s %4d %9.2f %9.1f %10.0f %12.1f\n' duckdb "$i" "$s" "$(echo "$mb / $s" | bc -l)" "$(echo "$r / 1024" | bc -l)" "$(echo "$b / 1000000" | bc -l)"
done
# Our output must hold what DuckDB reads from the source: the same aggregates.
cat > "$work/compare.py" <<'PY'
import sys, duckdb
src, ours, kind = sys.argv[1], sys.argv[2], sys.argv[3]
q = ("select count(*), sum(id), count(email), round(sum(score), 3), epoch_us(max(created_at)), count(distinct name),"
     " sum(length(notes)), sum(active::int), count(referrer), count(address) from {}")
if kind == "ids":
    q = ("select count(*), sum(user_id), sum(order_id), count(distinct event_id), count(distinct session), sum(length(url)),"
         " count(distinct ip), count(distinct sku), count(distinct email), round(sum(amount), 2), epoch_us(max(ts)) from {}")
a = duckdb.sql(q.format(f"read_json('{src}', format='newline_delimited')")).fetchall()
b = duckdb.sql(q.format(f"'{ours}'")).fetchall()
print("output check:", "same aggregates as DuckDB's read of the feed" if a == b else f"DIFFERENT: duckdb {a} ours {b}")
sys.exit(0 if a == b else 1)
PY
"$py" "$work/compare.py" "$feed" "$work/ours.parquet" "$kind"

median() { sort -n | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
os=$(printf '%s\n' "${ours[@]}" | awk '{print $1}' | median); ds=$(printf '%s\n' "${duck[@]}" | awk '{print $1}' | median)
orss=$(printf '%s\n' "${ours[@]}" | awk '{print $2}' | median); drss=$(printf '%s\n' "${duck[@]}" | awk '{print $2}' | median)
ob=$(printf '%s\n' "${ours[@]}" | awk '{print $3}' | median); db=$(printf '%s\n' "${duck[@]}" | awk '{print $3}' | median)
echo
printf 'median   ours %.1f MB/s, %.0f MiB peak, %.1f MB out | duckdb %.1f MB/s, %.0f MiB peak, %.1f MB out\n' \
  "$(echo "$mb / $os" | bc -l)" "$(echo "$orss / 1024" | bc -l)" "$(echo "$ob / 1000000" | bc -l)" \
  "$(echo "$mb / $ds" | bc -l)" "$(echo "$drss / 1024" | bc -l)" "$(echo "$db / 1000000" | bc -l)"
printf 'ratio ours/duckdb: throughput %.2f  peak RSS %.2f  output size %.2f\n' \
  "$(echo "$ds / $os" | bc -l)" "$(echo "$orss / $drss" | bc -l)" "$(echo "$ob / $db" | bc -l)"
