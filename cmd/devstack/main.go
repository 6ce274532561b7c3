// Command devstack runs feedpipe's local stack in the foreground: the Temporal
// server with its Web UI, MiniStack (AWS) and fakesnow (Snowflake), provisioned
// and with the Snowpipe stand-in running. It prints every endpoint and the
// environment a worker needs, writes each process's log to the run directory,
// and stops everything on Ctrl-C.
//
//	go run ./cmd/devstack -run-dir .run/stack
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/feedpipe/feedpipe/internal/devstack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	var opt devstack.Options
	flag.StringVar(&opt.RunDir, "run-dir", ".run/stack", "directory for the processes' logs and data")
	flag.BoolVar(&opt.Persist, "persist", true, "keep each part's data in RUN_DIR across restarts (Temporal's SQLite file, fakesnow's databases, MiniStack's objects and state)")
	flag.IntVar(&opt.TemporalPort, "temporal-port", 7233, "Temporal frontend port (0: a free one)")
	flag.IntVar(&opt.UIPort, "ui-port", 8233, "Temporal Web UI port (0: a free one)")
	flag.IntVar(&opt.AWSPort, "aws-port", 4566, "MiniStack port (0: a free one)")
	flag.IntVar(&opt.SnowflakePort, "snowflake-port", 8098, "fakesnow port (0: a free one)")
	flag.BoolVar(&opt.Codec, "codec", true, "encrypt payloads (the export lines name a key file, kept in RUN_DIR) and serve the codec to the Web UI, so the UI still reads inputs, results and errors")
	envFile := flag.String("env-file", "", "also write the stack's environment to this file (KEY=value lines)")
	flag.Parse()

	abs, err := filepath.Abs(opt.RunDir)
	if err != nil {
		return err
	}
	opt.RunDir = abs
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opt.Logger = logger

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	s, err := devstack.Start(ctx, opt)
	if err != nil {
		return err
	}
	defer s.Stop()

	fmt.Printf("feedpipe local stack is up (%s)\n", time.Since(t0).Round(time.Millisecond))
	fmt.Printf("  Temporal        %s  namespace %s\n", s.TemporalAddress, s.TemporalNamespace)
	fmt.Printf("  Temporal UI     %s\n", s.UIURL)
	fmt.Printf("  AWS (MiniStack) %s  buckets %s %s %s %s\n", s.AWSEndpoint, s.Names.SourceBucket,
		s.Names.StagingBucket, s.Names.DestBucket, s.Names.QuarantineBucket)
	fmt.Printf("                  stream %s → delivery stream %s → s3://%s/%s; Glue job %s\n", s.Names.Stream,
		s.Names.DeliveryStream, s.Names.StagingBucket, s.Names.StagingPrefix, s.Names.GlueJob)
	fmt.Printf("                  feed events queue %s\n", s.AWS.FeedQueueURL)
	fmt.Printf("  Snowflake       %s:%d (fakesnow)  table %s.%s.%s, stage @%s\n", s.SnowflakeHost, s.SnowflakePort,
		s.Names.Snowflake.Database, s.Names.Snowflake.Schema, s.Names.Snowflake.Table, s.Names.Snowflake.Stage)
	fmt.Printf("  Snowpipe        local stand-in on queue %s\n", s.AWS.LoadQueueURL)
	if s.CodecURL != "" {
		fmt.Printf("  Payload codec   %s (the UI decodes through it); keys %s\n", s.CodecURL, s.CodecKeysFile)
	}
	fmt.Printf("  Logs            %s\n", s.RunDir)
	pids, rss := s.PIDs(), s.ProcessRSS()
	for _, name := range []string{"temporal", "ministack", "fakesnow"} {
		fmt.Printf("  process %-10s pid %d  rss %.0f MiB\n", name, pids[name], float64(rss[name])/(1<<20))
	}
	var phases []string
	for k := range s.Started {
		phases = append(phases, k)
	}
	sort.Strings(phases)
	for _, k := range phases {
		fmt.Printf("  started %-18s %s\n", k, s.Started[k].Round(time.Millisecond))
	}
	fmt.Println("Environment for a worker or starter:")
	for _, line := range devstack.ExportLines(s.Env()) {
		fmt.Println("  " + line)
	}
	if *envFile != "" {
		var b []byte
		for _, kv := range s.Env() {
			b = append(b, kv+"\n"...)
		}
		if err := os.WriteFile(*envFile, b, 0o644); err != nil {
			return fmt.Errorf("write env file: %w", err)
		}
	}
	fmt.Println("A part that exits is started again (with its data, -persist); Ctrl-C stops everything.")

	s.Supervise(ctx, 2*time.Second, func(part string, exitErr, restartErr error) {
		if restartErr != nil {
			logger.Error("a part exited and could not be started again; it stays down", "part", part, "exit", exitErr, "err", restartErr)
			return
		}
		logger.Warn("a part exited and was started again", "part", part, "exit", exitErr)
	})
	fmt.Println("stopping…")
	return nil
}
