package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/searchattr"
)

// runSetup prepares a deployment's external parts. Today: the Temporal
// namespace's search attributes.
func runSetup(args []string) error {
	const use = "usage: feedpipe setup temporal [-print-cloud-command]"
	if len(args) == 0 || args[0] != "temporal" {
		return errors.New(use)
	}
	fs := flag.NewFlagSet("setup temporal", flag.ContinueOnError)
	printOnly := fs.Bool("print-cloud-command", false, "print the tcld command that adds the attributes on Temporal Cloud, and connect to nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New(use)
	}
	ns := clients.TemporalNamespace(os.LookupEnv)
	if *printOnly {
		fmt.Println(searchattr.CloudCommand(ns, nil))
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := clients.DialTemporal(ctx, os.LookupEnv, logger, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	added, err := searchattr.Ensure(ctx, c.OperatorService(), ns)
	if err != nil {
		return err
	}
	if len(added) == 0 {
		fmt.Printf("namespace %s: feedpipe's %d search attributes were already there\n", ns, len(searchattr.Definitions()))
		return nil
	}
	fmt.Printf("namespace %s: added search attributes %s\n", ns, strings.Join(added, ", "))
	return nil
}
