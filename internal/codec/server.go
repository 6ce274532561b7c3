package codec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// AllowedHeaders are the request headers the codec server accepts from a
// browser: the Temporal Web UI sends Content-Type and X-Namespace, and
// Authorization when it passes the user's access token on.
const AllowedHeaders = "Content-Type, X-Namespace, Authorization"

// Handler serves c as a remote codec, as the Temporal Web UI and the CLI
// call it: POST {path}/encode and {path}/decode with a JSON body
// {"payloads": [...]} (the UI posts to ENDPOINT/decode with the namespace
// in the X-Namespace header; `/{namespace}/decode` works the same). A
// request from a browser whose Origin is one of origins gets CORS headers,
// and its preflight (OPTIONS) is answered; other origins get none, so the
// browser refuses the answer.
func Handler(c *Codec, origins []string) http.Handler {
	codecs := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(origins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", AllowedHeaders)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost || !(strings.HasSuffix(r.URL.Path, "/encode") || strings.HasSuffix(r.URL.Path, "/decode")) {
			http.Error(w, "the codec server answers POST …/encode and POST …/decode", http.StatusNotFound)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<20)
		codecs.ServeHTTP(w, r)
	})
}

// Server is a running codec server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve listens on addr (host:port; port 0 picks a free one) and serves
// Handler(c, origins) until Close.
func Serve(addr string, c *Codec, origins []string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("codec server: listen on %s: %w", addr, err)
	}
	s := &Server{
		srv:  &http.Server{Handler: Handler(c, origins), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// URL is the server's base URL, the codec endpoint to give the Web UI.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Done receives the server's error (nil after Close) once it stops.
func (s *Server) Done() <-chan error { return s.done }

// Close stops the server, letting requests in flight finish for up to 5 s.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("codec server: stop: %w", err)
	}
	return nil
}
