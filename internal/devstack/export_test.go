package devstack

import (
	"os/exec"
	"strings"
	"testing"
)

// The export lines make stack prints set each value exactly when a shell
// sources them (unquoted, a DSN's & put the rest in the background and left
// SNOWFLAKE_DSN empty).
func TestExportLinesSurviveAShell(t *testing.T) {
	env := []string{
		"SNOWFLAKE_DSN=fake:snow@127.0.0.1:8098/FEEDPIPE/RAW?account=fakesnow&protocol=http&disableTelemetry=true",
		"ODD=it's $HOME `id` \"quoted\" * ;",
		"EMPTY=",
	}
	script := strings.Join(ExportLines(env), "\n") + "\nprintf '%s\\n' \"$SNOWFLAKE_DSN\" \"$ODD\" \"[$EMPTY]\"\n"
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	want := "fake:snow@127.0.0.1:8098/FEEDPIPE/RAW?account=fakesnow&protocol=http&disableTelemetry=true\n" +
		"it's $HOME `id` \"quoted\" * ;\n[]\n"
	if string(out) != want {
		t.Fatalf("the shell set\n%s\nwant\n%s", out, want)
	}
}
