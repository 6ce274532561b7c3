package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

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
