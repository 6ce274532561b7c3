package devstack

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/feedpipe/feedpipe/internal/codec"
)

func lookupIn(env []string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		for _, kv := range env {
			if name, v, ok := strings.Cut(kv, "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}
}

// With the codec on, the stack generates a key into its run directory,
// exports the key file in Env (and so in the export lines), and serves a
// codec server the UI's origin may call; started again, it keeps the key.
func TestCodecKeyServerAndEnv(t *testing.T) {
	t.Setenv(codec.EnvKeysFile, "")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if env := (&Stack{}).Env(); strings.Contains(strings.Join(env, "\n"), codec.EnvKeysFile) {
		t.Errorf("codec off, yet Env names a key file: %v", env)
	}

	dir := t.TempDir()
	s := &Stack{log: quiet}
	if err := s.startCodec(Options{RunDir: dir, Codec: true}, 8233); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.CodecKeysFile != filepath.Join(dir, "codec-keys") || s.CodecURL == "" {
		t.Fatalf("key file %q, codec URL %q", s.CodecKeysFile, s.CodecURL)
	}
	if !strings.Contains(strings.Join(ExportLines(s.Env()), "\n"), "export "+codec.EnvKeysFile+"='"+s.CodecKeysFile+"'") {
		t.Errorf("export lines lack the key file: %v", ExportLines(s.Env()))
	}
	c, err := codec.FromEnv(lookupIn(s.Env()))
	if err != nil || c == nil {
		t.Fatalf("the worker's codec from Env: %v, %v", c, err)
	}
	enc, err := codec.DataConverter(c).ToPayloads("feed/feedpipe-source/customers/a.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(enc)

	// What the UI's browser does: a preflight, then POST ENDPOINT/decode.
	pre, _ := http.NewRequest(http.MethodOptions, s.CodecURL+"/decode", nil)
	pre.Header.Set("Origin", "http://127.0.0.1:8233")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Errorf("preflight from the UI: %s %v", resp.Status, resp.Header)
	}
	req, _ := http.NewRequest(http.MethodPost, s.CodecURL+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", "http://localhost:8233")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(base64.StdEncoding.EncodeToString([]byte("json/plain")))) || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8233" {
		t.Fatalf("decode: %s %s", resp.Status, out)
	}
	s.Stop()

	again := &Stack{log: quiet}
	if err := again.startCodec(Options{RunDir: dir, Codec: true}, -1); err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	c2, err := codec.FromEnv(lookupIn(again.Env()))
	if err != nil {
		t.Fatal(err)
	}
	var back string
	if err := codec.DataConverter(c2).FromPayload(enc.Payloads[0], &back); err != nil || back != "feed/feedpipe-source/customers/a.ndjson" {
		t.Errorf("restarted stack lost its key: %q, %v", back, err)
	}
}
