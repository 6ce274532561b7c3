// Command devtemporal runs a real Temporal server (SQLite) with the Temporal
// Web UI on loopback, for the local stack. It prints one JSON line with its
// addresses once it is ready and runs until SIGINT or SIGTERM.
//
//	devtemporal -db .run/temporal.db -port 7233 -ui-port 8233
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/feedpipe/feedpipe/internal/searchattr"
	"github.com/feedpipe/feedpipe/internal/temporaldev"
)

func main() {
	if err := run(); err != nil {
		slog.Error("devtemporal", "err", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg temporaldev.Config
	flag.StringVar(&cfg.DBFile, "db", "", "SQLite file to persist state in (empty: in memory)")
	flag.StringVar(&cfg.Namespace, "namespace", "default", "namespace to create")
	flag.IntVar(&cfg.Port, "port", 0, "frontend gRPC port on 127.0.0.1 (0: a free one)")
	flag.IntVar(&cfg.UIPort, "ui-port", 0, "Web UI port on 127.0.0.1 (0: a free one, -1: no UI)")
	flag.StringVar(&cfg.LogFile, "log", "", "server log file (empty: discard)")
	flag.StringVar(&cfg.LogLevel, "log-level", "warn", "server log level")
	flag.StringVar(&cfg.BindIP, "bind", "127.0.0.1", "address the frontend and UI listen on (0.0.0.0 in a container)")
	flag.Parse()
	cfg.SearchAttributes = searchattr.Definitions()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := temporaldev.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Stop()
	ready, _ := json.Marshal(map[string]string{
		"address": srv.Addr(), "namespace": srv.Namespace(), "ui": srv.UIURL(),
	})
	fmt.Println(string(ready))
	<-ctx.Done()
	return nil
}
