package clients

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

func envOf(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestTemporalOptionsFromEnvironment(t *testing.T) {
	o, err := TemporalOptions(envOf(nil), quiet)
	if err != nil || o.HostPort != "localhost:7233" || o.Namespace != "default" || o.ConnectionOptions.TLS != nil {
		t.Errorf("defaults: %+v %v", o, err)
	}
	o, err = TemporalOptions(envOf(map[string]string{"TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233",
		"TEMPORAL_NAMESPACE": "ns.acct", "TEMPORAL_API_KEY": "k", "TEMPORAL_TLS_SERVER_NAME": "ns.acct.tmprl.cloud"}), quiet)
	if err != nil || o.Credentials == nil || o.ConnectionOptions.TLS == nil || o.ConnectionOptions.TLS.ServerName != "ns.acct.tmprl.cloud" {
		t.Errorf("API key: %+v %v", o, err)
	}
	_, err = TemporalOptions(envOf(map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": "/x.pem"}), quiet)
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS_CLIENT_KEY_PATH") {
		t.Errorf("half an mTLS pair: %v", err)
	}
}

func TestOpenSnowflakeKeyPair(t *testing.T) {
	if db, err := OpenSnowflake(envOf(nil)); db != nil || err != nil {
		t.Errorf("nothing configured: %v %v", db, err)
	}
	_, err := OpenSnowflake(envOf(map[string]string{"SNOWFLAKE_ACCOUNT": "a"}))
	if err == nil || !strings.Contains(err.Error(), "SNOWFLAKE_PRIVATE_KEY_PATH") {
		t.Errorf("account without key: %v", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(t.TempDir(), "key.p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenSnowflake(envOf(map[string]string{"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_USER": "u", "SNOWFLAKE_PRIVATE_KEY_PATH": path}))
	if err != nil || db == nil {
		t.Fatalf("key pair: %v", err)
	}
	db.Close()
	if err := os.WriteFile(path, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSnowflake(envOf(map[string]string{"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_PRIVATE_KEY_PATH": path})); err == nil || !strings.Contains(err.Error(), "not a PEM file") {
		t.Errorf("bad key file: %v", err)
	}
}

// The AWS clients try a throttled call MaxAttempts times, and no burst of
// failures exhausts a client-wide retry quota: the SDK's default quota
// refuses every retry after about 100 failed tries, which failed every
// staging read of a worker after one burst of S3 SlowDowns.
func TestRetryerRidesOutBurstsOfThrottling(t *testing.T) {
	ctx := context.Background()
	slowDown := &smithy.GenericAPIError{Code: "SlowDown", Message: "Please reduce your request rate."}
	for name, tc := range map[string]struct {
		r        aws.Retryer
		attempts int
		quota    bool // some of 1,000 retries are refused
	}{
		"feedpipe":     {NewRetryer(), MaxAttempts, false},
		"SDK defaults": {retry.NewStandard(), 3, true},
	} {
		if got := tc.r.MaxAttempts(); got != tc.attempts {
			t.Errorf("%s: %d attempts, want %d", name, got, tc.attempts)
		}
		if !tc.r.IsErrorRetryable(slowDown) {
			t.Errorf("%s: SlowDown is not retried", name)
		}
		refused := 0
		for range 1000 {
			if _, err := tc.r.GetRetryToken(ctx, slowDown); err != nil {
				refused++
			}
		}
		if (refused > 0) != tc.quota {
			t.Errorf("%s: %d of 1,000 retries refused by a retry quota", name, refused)
		}
	}
}
