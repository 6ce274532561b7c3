package main

import (
	"context"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/clients"
)

// dialTemporal connects to Temporal as the worker does (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, …) and returns the client and its options (for the
// namespace and the data converter that decodes payloads).
func dialTemporal(ctx context.Context) (client.Client, client.Options, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts, err := clients.TemporalOptions(os.LookupEnv, logger)
	if err != nil {
		return nil, opts, err
	}
	c, err := clients.Dial(ctx, opts)
	if err != nil {
		return nil, opts, err
	}
	return c, opts, nil
}
