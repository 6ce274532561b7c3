package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/feedpipe/feedpipe/internal/codec"
)

// runCodecServer serves the payload codec of the environment's keys
// (FEEDPIPE_CODEC_KEYS_FILE or FEEDPIPE_CODEC_KEY) over HTTP, for the
// Temporal Web UI's "codec endpoint" and `temporal --codec-endpoint`.
func runCodecServer(args []string) error {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "host:port to listen on (port 0: a free one)")
	origins := fs.String("origin", "http://127.0.0.1:8233", "comma-separated origins of the Temporal Web UI allowed to call the server from a browser (CORS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: feedpipe codec-server [-addr HOST:PORT] [-origin URL[,URL…]]")
	}
	c, err := codec.FromEnv(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("codec-server: %w", err)
	}
	if c == nil {
		return fmt.Errorf("codec-server: no keys; set %s (a file of `<id> <base64 key>` lines) or %s (`<id>:<base64 key>`)", codec.EnvKeysFile, codec.EnvKey)
	}
	srv, err := serveCodec(*addr, c, splitOrigins(*origins))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		return srv.Close()
	case err := <-srv.Done():
		if err != nil {
			return fmt.Errorf("codec-server: %w", err)
		}
		return nil
	}
}

// serveCodec starts the server and says where it listens.
func serveCodec(addr string, c *codec.Codec, origins []string) (*codec.Server, error) {
	srv, err := codec.Serve(addr, c, origins)
	if err != nil {
		return nil, fmt.Errorf("codec-server: %w", err)
	}
	fmt.Fprintf(os.Stderr, "codec-server: serving url=%s (POST /decode, /encode) keys=%s from %s encrypting=%s origins=%s\n",
		srv.URL(), strings.Join(c.Keys().IDs(), ","), c.Keys().Source(), c.Keys().EncryptingID(), strings.Join(origins, ","))
	return srv, nil
}

// splitOrigins splits a comma-separated list of origins, dropping blanks
// and trailing slashes (a browser's Origin header has none).
func splitOrigins(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}
