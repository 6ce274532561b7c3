package clients

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/internal/codec"
)

func TestTemporalOptionsEncryptOnlyWhenTheCodecIsConfigured(t *testing.T) {
	o, err := TemporalOptions(envOf(nil), quiet)
	if err != nil || o.DataConverter != nil {
		t.Fatalf("no codec env: DataConverter %v, %v; want the SDK's default (nil)", o.DataConverter, err)
	}

	k, err := codec.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte(codec.KeyLine(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = TemporalOptions(envOf(map[string]string{codec.EnvKeysFile: file}), quiet)
	if err != nil || o.DataConverter == nil {
		t.Fatalf("codec env: DataConverter %v, %v", o.DataConverter, err)
	}
	p, err := o.DataConverter.ToPayload("feedpipe-source/customers/a.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[converter.MetadataEncoding]) != codec.Encoding || string(p.Metadata[codec.MetadataKeyID]) != "k1" ||
		strings.Contains(string(p.Data), "customers") {
		t.Errorf("payload not encrypted: %v", p)
	}
	var back string
	if err := o.DataConverter.FromPayload(p, &back); err != nil || back != "feedpipe-source/customers/a.ndjson" {
		t.Errorf("round trip: %q, %v", back, err)
	}

	_, err = TemporalOptions(envOf(map[string]string{codec.EnvKeysFile: filepath.Join(t.TempDir(), "missing")}), quiet)
	if err == nil || !strings.Contains(err.Error(), codec.EnvKeysFile) {
		t.Errorf("unreadable key file: %v", err)
	}
}

func TestTemporalOptionsEncryptFailures(t *testing.T) {
	k, err := codec.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	o, err := TemporalOptions(envOf(map[string]string{codec.EnvKey: "k1:" + base64.StdEncoding.EncodeToString(k.Secret)}), quiet)
	if err != nil || o.FailureConverter == nil {
		t.Fatalf("failure converter: %v, %v", o.FailureConverter, err)
	}
	f := o.FailureConverter.ErrorToFailure(temporal.NewNonRetryableApplicationError("feed s3://secret-bucket/k failed", "X", nil, "secret-detail"))
	if strings.Contains(f.String(), "secret") {
		t.Errorf("failure holds plaintext: %v", f)
	}
	if e := f.GetEncodedAttributes(); e == nil || string(e.Metadata[converter.MetadataEncoding]) != codec.Encoding {
		t.Errorf("message not encrypted: %v", f)
	}
	back := o.FailureConverter.FailureToError(f)
	var appErr *temporal.ApplicationError
	var detail string
	if !errors.As(back, &appErr) || !strings.Contains(back.Error(), "s3://secret-bucket/k") || appErr.Details(&detail) != nil || detail != "secret-detail" {
		t.Errorf("round trip: %v, detail %q", back, detail)
	}
}
