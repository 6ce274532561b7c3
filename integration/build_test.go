package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

// buildCmd builds ./cmd/NAME of this repository into a temporary directory
// and returns the binary's path: tests run the real programs.
func buildCmd(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	root, err := devstack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/"+name)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}
