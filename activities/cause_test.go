package activities

import (
	"context"
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
)

func TestStopCauseNamesWhy(t *testing.T) {
	for _, c := range []struct {
		cause error
		want  string
	}{
		{temporal.NewCanceledError(), "cancelled"},
		{serviceerror.NewNotFound("activity not found"), "heartbeat timeout"},
		{nil, "worker is stopping"},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(c.cause)
		if got := StopCause(ctx); !strings.Contains(got, c.want) {
			t.Errorf("cause %v: %q, want it to say %q", c.cause, got, c.want)
		}
	}
}
