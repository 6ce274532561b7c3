package pyarrowtest

import (
	"strings"
	"testing"
)

// A crash in the interpreter's teardown, after the script has printed all of
// its output, does not fail the run: here an exit handler aborts the
// process, as pyarrow's thread pools sometimes do at exit.
func TestRunSkipsTheInterpretersTeardown(t *testing.T) {
	out, err := run("import atexit, os\natexit.register(os.abort)\nprint('done')")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "done\n" {
		t.Fatalf("printed %q, want %q", out, "done\n")
	}
}

// The script's failures still fail the run: an uncaught exception with its
// traceback, and an exit code.
func TestRunKeepsTheScriptsFailures(t *testing.T) {
	for script, want := range map[string]string{
		"raise ValueError('bad column')":   "ValueError: bad column",
		"import sys\nsys.exit(3)":          "exit status 3",
		"import sys\nsys.exit('no rows')":  "no rows",
		"import sys\nprint(sys.argv[1])\n": "",
	} {
		out, err := run(script, "arg")
		if want == "" {
			if err != nil || string(out) != "arg\n" {
				t.Errorf("%q: printed %q, %v; want %q", script, out, err, "arg\n")
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", script, err, want)
		}
	}
}
