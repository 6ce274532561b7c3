package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/searchattr"
)

const setupUsage = `usage:
  feedpipe setup temporal [-print-cloud-command]
  feedpipe setup current-version -build-id ID [-deployment-name feedpipe] [-wait 2m]`

// runSetup prepares a deployment's external parts: the Temporal namespace's
// search attributes, and which worker build takes the runs.
func runSetup(args []string) error {
	if len(args) > 0 && args[0] == "current-version" {
		return runCurrentVersion(args[1:])
	}
	const use = setupUsage
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
	c, _, err := dialTemporal(ctx)
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

// runCurrentVersion makes a worker build the current version of its Worker
// Deployment: from then on, new runs and the next tasks of runs in flight go
// to its workers. It waits (up to -wait) for a worker of the build to poll,
// as the server knows a build only once one has.
func runCurrentVersion(args []string) error {
	fs := flag.NewFlagSet("setup current-version", flag.ContinueOnError)
	buildID := fs.String("build-id", "", "the build to make current (the workers' -build-id)")
	name := fs.String("deployment-name", "feedpipe", "the Worker Deployment (the workers' -deployment-name)")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for a worker of the build to poll")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *buildID == "" || fs.NArg() != 0 {
		return errors.New(setupUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, _, err := dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	h := c.WorkerDeploymentClient().GetHandle(*name)
	deadline := time.Now().Add(*wait)
	for {
		resp, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: *buildID})
		if err == nil {
			prev := "unversioned workers"
			if resp.PreviousVersion != nil && resp.PreviousVersion.BuildID != "" {
				prev = "build " + resp.PreviousVersion.BuildID
			}
			fmt.Printf("deployment %s: build %s is current (was %s)\n", *name, *buildID, prev)
			return nil
		}
		var notFound *serviceerror.NotFound
		var precondition *serviceerror.FailedPrecondition
		if !(errors.As(err, &notFound) || errors.As(err, &precondition)) || time.Now().After(deadline) {
			return fmt.Errorf("make build %s of deployment %s current: %w (start workers with -build-id %s -deployment-name %s first: the server knows a build once one of its workers polls)", *buildID, *name, err, *buildID, *name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
