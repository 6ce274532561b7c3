// Command provision creates, idempotently, the AWS and Snowflake resources of
// the local pipelines (internal/provision: deploy/aws.yaml as a
// CloudFormation stack, deploy/snowflake.sql) on emulators at given
// endpoints, as the process stack does at every start. The container stack
// runs it once before the worker and starter.
//
//	AWS_ENDPOINT_URL=http://ministack:4566 AWS_REGION=us-east-1 \
//	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//	SNOWFLAKE_DSN='fake:snow@fakesnow:8098?account=fakesnow&protocol=http' \
//	provision [-wait 2m] [-snowflake-s3-endpoint ministack:4566]
//
// AWS comes from the SDK's environment, Snowflake from SNOWFLAKE_DSN (no
// database in it: provisioning creates the database). fakesnow reads the
// destination bucket through DuckDB's httpfs at -snowflake-s3-endpoint
// (default: AWS_ENDPOINT_URL's host:port), as fakesnow's host sees MiniStack.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/provision"
	_ "github.com/snowflakedb/gosnowflake" // registers the "snowflake" database/sql driver
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
}

func run() error {
	wait := flag.Duration("wait", 2*time.Minute, "how long to try again while the emulators do not answer yet")
	s3Endpoint := flag.String("snowflake-s3-endpoint", "", "host:port of the S3 endpoint as the Snowflake emulator reaches it (default: AWS_ENDPOINT_URL's)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := clients.Env(os.LookupEnv)
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return errors.New("AWS_ENDPOINT_URL is not set: provision is for emulators (against AWS, deploy deploy/aws.yaml as the README's Deploying section says)")
	}
	if *s3Endpoint == "" {
		u, err := url.Parse(endpoint)
		if err != nil {
			return fmt.Errorf("AWS_ENDPOINT_URL: %w", err)
		}
		*s3Endpoint = u.Host
	}
	a, err := clients.LoadAWS(ctx, env)
	if err != nil {
		return err
	}
	db, err := clients.RequireSnowflake(env)
	if err != nil {
		return err
	}
	defer db.Close()
	creds, err := a.Config.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("aws credentials: %w", err)
	}

	names := provision.DefaultNames()
	deadline := time.Now().Add(*wait)
	t0 := time.Now()
	for {
		res, err := provision.AWS(ctx, provision.NewAWSClients(a.Config, true), names)
		if err == nil {
			_, err = provision.Snowflake(ctx, db, names.Snowflake, names.DestBucket, &provision.LocalS3{
				Endpoint: *s3Endpoint, KeyID: creds.AccessKeyID, Secret: creds.SecretAccessKey, Region: a.Config.Region,
			})
		}
		if err == nil {
			fmt.Printf("provisioned in %s: stack %s on %s; feed events queue %s; Snowpipe stand-in queue %s; Snowflake %s.%s.%s\n",
				time.Since(t0).Round(time.Millisecond), names.StackName, endpoint, res.FeedQueueURL, res.LoadQueueURL,
				names.Snowflake.Database, names.Snowflake.Schema, names.Snowflake.Table)
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		logger.Warn("provision: not yet; trying again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
