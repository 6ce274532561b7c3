// Command snowpipe runs the local stack's Snowpipe stand-in
// (internal/snowpipe) on its own: it reads the destination bucket's Object
// Created events from the load queue and runs the pipe's COPY INTO for each
// new file, until SIGTERM. The process stack runs the same stand-in inside
// devstack; the container stack runs this command. Never used against real
// Snowflake, where Snowpipe does this.
//
//	AWS_ENDPOINT_URL=http://ministack:4566 AWS_REGION=us-east-1 \
//	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//	SNOWFLAKE_DSN='fake:snow@fakesnow:8098/FEEDPIPE/RAW?account=fakesnow&protocol=http' \
//	snowpipe [-queue NAME|URL] [-health-addr :8090]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/feedpipe/feedpipe/internal/clients"
	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/snowpipe"
	_ "github.com/snowflakedb/gosnowflake" // registers the "snowflake" database/sql driver
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "snowpipe:", err)
		os.Exit(1)
	}
}

func run() error {
	names := provision.DefaultNames()
	queue := flag.String("queue", names.LoadQueue, "the destination bucket's event queue: a name or a URL")
	healthAddr := flag.String("health-addr", "", "serve /healthz at ADDR (200 while the queue answers), e.g. :8090 (empty: none)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := clients.Env(os.LookupEnv)
	a, err := clients.LoadAWS(ctx, env)
	if err != nil {
		return err
	}
	db, err := clients.RequireSnowflake(env)
	if err != nil {
		return err
	}
	queueURL := *queue
	if !strings.Contains(queueURL, "://") {
		out, err := a.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: queue})
		if err != nil {
			return fmt.Errorf("queue %s (provisioned?): %w", *queue, err)
		}
		queueURL = aws.ToString(out.QueueUrl)
	}
	if *healthAddr != "" {
		l, err := net.Listen("tcp", *healthAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			cctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			if _, err := a.SQS.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{QueueUrl: &queueURL}); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
	}
	logger.Info("snowpipe stand-in: loading new files", "queue", queueURL, "table", names.Snowflake.Table)
	pipe := snowpipe.NewStandIn(a.SQS, db, queueURL, names.Snowflake, logger)
	go pipe.Run(ctx)
	<-ctx.Done()
	pipe.Wait()
	return nil
}
