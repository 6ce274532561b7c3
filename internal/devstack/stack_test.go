package devstack

import (
	"context"
	"strings"
	"testing"
)

func TestStartNamesTheFixWhenTheVenvIsMissing(t *testing.T) {
	_, err := Start(context.Background(), Options{RunDir: t.TempDir(), Root: t.TempDir(), Venv: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make venv") {
		t.Fatalf("Start without a venv: %v, want an error that says to run `make venv`", err)
	}
}

func TestStartNamesTheFixWhenAPortIsTaken(t *testing.T) {
	// A fake venv with the three programs present passes the venv check.
	venv := t.TempDir()
	for _, p := range []string{"ministack", "fakesnow", "python3"} {
		writeExecutable(t, venv+"/bin/"+p)
	}
	l := listen(t)
	_, err := Start(context.Background(), Options{RunDir: t.TempDir(), Root: t.TempDir(), Venv: venv,
		TemporalBin: "/bin/false", AWSPort: l})
	if err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Fatalf("Start on a taken port: %v, want an error naming the port in use", err)
	}
}
