package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/doctor"
	"github.com/feedpipe/feedpipe/internal/pipeline"
)

// runDoctor checks every resource the config names and prints ✓ or ✗ with
// the fix; it fails when any check does.
func runDoctor(args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	cfgPath := fs.String("config", envOr("FEEDPIPE_CONFIG", "pipelines.toml"), "pipelines config file")
	queue := fs.String("queue", os.Getenv("FEEDPIPE_QUEUE_URL"), "the starter's feed queue URL (its -queue), to check its dead-letter queue")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on the checks after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("usage: feedpipe doctor [-config FILE] [-queue URL]")
	}
	cfg, err := pipeline.Load(*cfgPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	env := clients.Env(os.LookupEnv)
	d := doctor.Deps{Namespace: clients.TemporalNamespace(env)}
	if awsc, err := clients.LoadAWS(ctx, env); err == nil {
		d.S3, d.SQS, d.Kinesis, d.Glue, d.Firehose = awsc.S3, awsc.SQS, awsc.Kinesis, awsc.Glue, firehose.NewFromConfig(awsc.Config)
	}
	sf, err := clients.OpenSnowflake(env)
	if d.SnowflakeErr = err; sf != nil {
		defer sf.Close()
		d.Snowflake = sf
	}
	tc, err := clients.DialTemporal(ctx, env, logger, nil)
	if d.TemporalErr = err; err == nil {
		defer tc.Close()
		d.Temporal = tc
	}
	if !doctor.Print(os.Stdout, doctor.Run(ctx, d, cfg, doctor.Options{QueueURL: *queue})) {
		return errors.New("some checks failed; fix them as each says")
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
