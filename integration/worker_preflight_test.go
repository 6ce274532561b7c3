package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// A worker that could not do its work refuses to start and says why and
// what to do, instead of taking runs and retrying them to their deadlines.
func TestWorkerRefusesToStartWithoutWhatItsPipelinesNeed(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildCmd(t, ctx, "worker")
	cfgPath := filepath.Join(root, "pipelines.local.toml")
	var noSnowflake []string
	for _, kv := range append(os.Environ(), stack.Env()...) {
		if !strings.HasPrefix(kv, "SNOWFLAKE_") {
			noSnowflake = append(noSnowflake, kv)
		}
	}
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "pipelines.toml")
	if err := os.WriteFile(missing, []byte(strings.Replace(string(src), `staging_bucket     = "feedpipe-staging"`, `staging_bucket     = "feedpipe-no-such-bucket"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		// As shipped: no Snowflake configured fails at once.
		{"no Snowflake", []string{"-config", cfgPath}, noSnowflake, []string{"Snowflake reachable", "SNOWFLAKE_DSN"}},
		// A missing bucket is looked at again for -preflight-wait (a
		// minute as shipped; 1 s here, for the message).
		{"missing bucket", []string{"-config", missing, "-preflight-wait", "1s"}, append(os.Environ(), stack.Env()...), []string{"feedpipe-no-such-bucket", "fix:", "feedpipe doctor"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, append(c.args, "-temp-dir", t.TempDir())...)
			cmd.Env = c.env
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the worker started:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("its message lacks %q:\n%s", w, out)
				}
			}
			if took := time.Since(start); took > time.Minute {
				t.Errorf("it took %s to refuse", took)
			}
		})
	}
}
