// Package pyarrowtest reads Parquet files with pyarrow, from the project's
// Python venv (make venv), for tests that check our files with an
// independent reader.
package pyarrowtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// File is what pyarrow read from a Parquet file.
type File struct {
	// Schema maps each top-level column to its Arrow type.
	Schema map[string]string
	// Rows are the file's rows: timestamps as "2006-01-02T15:04:05.000000Z"
	// in UTC, dates as "2006-01-02", decimals as strings, objects as maps,
	// lists as slices, numbers as float64.
	Rows []map[string]any
	// RowGroups holds the number of rows of each row group.
	RowGroups []int
}

const script = `
import json, sys, datetime, decimal, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
def conv(v):
    if isinstance(v, dict):
        return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list):
        return [conv(x) for x in v]
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v
print(json.dumps({"schema": {x.name: str(x.type) for x in t.schema},
                  "rows": [{k: conv(v) for k, v in r.items()} for r in t.to_pylist()],
                  "rowgroups": [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]}))
`

// exitHard runs the script held in $FEEDPIPE_PYARROWTEST_SCRIPT and leaves
// with os._exit, so that the interpreter's teardown never runs. pyarrow
// 26's thread pools can abort the process there ("terminate called without
// an active exception", SIGABRT) after the script has printed all of its
// output; CI failed on exactly that once. The script's own exit code, and a
// traceback for an uncaught exception, are kept.
const exitHard = `
import os, sys, traceback
code = 0
try:
    exec(compile(os.environ["FEEDPIPE_PYARROWTEST_SCRIPT"], "<test script>", "exec"), {"__name__": "__main__"})
except SystemExit as e:
    if e.code is None:
        code = 0
    elif isinstance(e.code, int):
        code = e.code
    else:
        print(e.code, file=sys.stderr)
        code = 1
except BaseException:
    traceback.print_exc()
    code = 1
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
`

// Run runs a Python script with the venv's interpreter and args, and
// returns what it printed; the test fails if it fails. The interpreter
// leaves without its teardown (see exitHard), so a crash there cannot fail
// a test whose script succeeded.
func Run(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	out, err := run(script, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run is Run's work, returning the failure instead of failing a test.
func run(script string, args ...string) ([]byte, error) {
	_, file, _, _ := runtime.Caller(0)
	py := filepath.Join(filepath.Dir(file), "..", "..", ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		return nil, fmt.Errorf("no %s: run `make venv` (this test runs pyarrow)", py)
	}
	cmd := exec.Command(py, append([]string{"-c", exitHard}, args...)...)
	cmd.Env = append(os.Environ(), "FEEDPIPE_PYARROWTEST_SCRIPT="+script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("python: %w\n%s", err, stderr.String())
	}
	return out, nil
}

// Read reads the Parquet file data with pyarrow; the test fails if pyarrow
// cannot.
func Read(t testing.TB, data []byte) File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.parquet")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := Run(t, script, path)
	var res struct {
		Schema    map[string]string
		Rows      []map[string]any
		RowGroups []int `json:"rowgroups"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return File{Schema: res.Schema, Rows: res.Rows, RowGroups: res.RowGroups}
}
