// Package clients builds the Temporal, AWS and Snowflake clients of the
// worker and starter from the standard environment, so the same binaries run
// against the local stack and against Temporal Cloud, AWS and Snowflake.
//
// Temporal: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, or mTLS
// with TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH (and
// optionally TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME).
// Payload encryption (internal/codec): FEEDPIPE_CODEC_KEYS_FILE or
// FEEDPIPE_CODEC_KEY; unset, payloads travel unencrypted.
// AWS: the SDK's default chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, …);
// FEEDPIPE_S3_PATH_STYLE=true for emulators.
// Snowflake: SNOWFLAKE_DSN, or key-pair auth with SNOWFLAKE_ACCOUNT,
// SNOWFLAKE_USER, SNOWFLAKE_PRIVATE_KEY_PATH and optionally SNOWFLAKE_ROLE,
// SNOWFLAKE_WAREHOUSE.
package clients

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/snowflakedb/gosnowflake"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/feedpipe/feedpipe/internal/codec"
)

// Env looks up an environment variable; os.LookupEnv in production.
type Env func(string) (string, bool)

func (e Env) get(k, def string) string {
	if v, ok := e(k); ok && v != "" {
		return v
	}
	return def
}

// TemporalNamespace is the namespace the environment names (TEMPORAL_NAMESPACE,
// default "default").
func TemporalNamespace(env Env) string { return env.get("TEMPORAL_NAMESPACE", "default") }

// TemporalOptions are client.Options from the environment. When the
// environment configures codec keys (FEEDPIPE_CODEC_KEYS_FILE or
// FEEDPIPE_CODEC_KEY), the options' DataConverter encrypts every payload,
// and the FailureConverter encrypts failures' details, messages and stack
// traces.
func TemporalOptions(env Env, logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  env.get("TEMPORAL_ADDRESS", "localhost:7233"),
		Namespace: TemporalNamespace(env),
		Logger:    tlog.NewStructuredLogger(logger),
	}
	c, err := codec.FromEnv(env)
	if err != nil {
		return opts, fmt.Errorf("temporal: payload codec: %w", err)
	}
	if c != nil {
		// Failures get the codec too: their details (a run's result so far)
		// and their messages and stack traces, which name buckets and keys.
		opts.DataConverter = codec.DataConverter(c)
		opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter: opts.DataConverter, EncodeCommonAttributes: true})
	}
	cert, key := env.get("TEMPORAL_TLS_CLIENT_CERT_PATH", ""), env.get("TEMPORAL_TLS_CLIENT_KEY_PATH", "")
	if apiKey := env.get("TEMPORAL_API_KEY", ""); apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(apiKey)
		opts.ConnectionOptions.TLS = &tls.Config{}
	}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return opts, errors.New("temporal: set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH for mTLS")
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return opts, fmt.Errorf("temporal: load mTLS key pair %s, %s: %w", cert, key, err)
		}
		opts.ConnectionOptions.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	if opts.ConnectionOptions.TLS != nil {
		opts.ConnectionOptions.TLS.ServerName = env.get("TEMPORAL_TLS_SERVER_NAME", "")
		if ca := env.get("TEMPORAL_TLS_SERVER_CA_CERT_PATH", ""); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return opts, fmt.Errorf("temporal: read CA %s: %w", ca, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("temporal: no certificate in %s", ca)
			}
			opts.ConnectionOptions.TLS.RootCAs = pool
		}
	}
	return opts, nil
}

// DialTemporal connects to Temporal as the environment says. The client
// records the SDK's metrics into metrics, if not nil.
func DialTemporal(ctx context.Context, env Env, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := TemporalOptions(env, logger)
	if err != nil {
		return nil, err
	}
	opts.MetricsHandler = metrics
	return Dial(ctx, opts)
}

// Dial connects to Temporal with opts (from TemporalOptions), saying which
// settings to check when it cannot.
func Dial(ctx context.Context, opts client.Options) (client.Client, error) {
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s; set TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE): %w", opts.HostPort, opts.Namespace, err)
	}
	return c, nil
}

// AWS are the AWS service clients.
type AWS struct {
	Config  aws.Config
	S3      *s3.Client
	SQS     *sqs.Client
	Kinesis *kinesis.Client
	Glue    *glue.Client
}

// LoadAWS loads the SDK's default configuration chain.
func LoadAWS(ctx context.Context, env Env) (AWS, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(NewHTTPClient()), awsconfig.WithRetryer(NewRetryer))
	if err != nil {
		return AWS{}, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return AWS{}, errors.New("aws config: no region; set AWS_REGION")
	}
	pathStyle := env.get("FEEDPIPE_S3_PATH_STYLE", "") == "true"
	return AWS{
		Config:  cfg,
		S3:      NewS3(cfg, pathStyle),
		SQS:     sqs.NewFromConfig(cfg),
		Kinesis: kinesis.NewFromConfig(cfg),
		Glue:    glue.NewFromConfig(cfg),
	}, nil
}

// MaxConnsIdle is how many idle connections to one AWS endpoint the
// clients keep open. The SDK's default (10) is below what a worker uses at
// once (activity slots × staging readers), and every connection beyond it
// is closed after one request and opened again for the next: a TLS
// handshake on AWS, and on MiniStack a new connection per GET that costs
// more than the GET.
const MaxConnsIdle = 256

// NewHTTPClient is the HTTP client of feedpipe's AWS clients: the SDK's,
// keeping up to MaxConnsIdle connections to each endpoint.
func NewHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = MaxConnsIdle
		t.MaxIdleConnsPerHost = MaxConnsIdle
	})
}

// MaxAttempts is how many times feedpipe's AWS clients try one call that
// fails with a retryable error (throttling, 5xx, a connection reset).
const MaxAttempts = 8

// NewRetryer is the retry policy of feedpipe's AWS clients: the SDK's
// standard retryer (exponential backoff with jitter, up to 20 s between
// tries) with MaxAttempts tries and no client-wide retry quota. The SDK's
// defaults are 3 tries and a quota that, after about 100 failed tries
// without successes between, fails every call of the client at once
// ("retry quota exceeded"): one burst of S3 SlowDowns among a worker's 100+
// concurrent staging reads then failed every activity of the worker, and
// at a 5 % error rate one GET in 8,000 failed for good. Found by make chaos
// (aws-faults).
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.RateLimiter = ratelimit.None
	})
}

// NewS3 is the S3 client feedpipe uses: path-style addressing when
// pathStyle is set (emulators need it), no log line for each response
// without a checksum (emulators send none), and NewRetryer's retries.
func NewS3(cfg aws.Config, pathStyle bool) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
		o.Retryer = NewRetryer()
	})
}

// OpenSnowflake opens the Snowflake connection the environment describes,
// or returns nil when none is configured.
func OpenSnowflake(env Env) (*sql.DB, error) {
	if dsn := env.get("SNOWFLAKE_DSN", ""); dsn != "" {
		db, err := sql.Open("snowflake", dsn)
		if err != nil {
			return nil, fmt.Errorf("snowflake: SNOWFLAKE_DSN: %w", err)
		}
		return db, nil
	}
	account := env.get("SNOWFLAKE_ACCOUNT", "")
	if account == "" {
		return nil, nil
	}
	keyPath := env.get("SNOWFLAKE_PRIVATE_KEY_PATH", "")
	if keyPath == "" {
		return nil, errors.New("snowflake: SNOWFLAKE_ACCOUNT is set but SNOWFLAKE_PRIVATE_KEY_PATH is not; feedpipe authenticates with a key pair")
	}
	key, err := readRSAKey(keyPath)
	if err != nil {
		return nil, err
	}
	cfg := &gosnowflake.Config{
		Account:       account,
		User:          env.get("SNOWFLAKE_USER", ""),
		Role:          env.get("SNOWFLAKE_ROLE", ""),
		Warehouse:     env.get("SNOWFLAKE_WAREHOUSE", ""),
		Authenticator: gosnowflake.AuthTypeJwt,
		PrivateKey:    key,
	}
	return sql.OpenDB(gosnowflake.NewConnector(gosnowflake.SnowflakeDriver{}, *cfg)), nil
}

// RequireSnowflake is OpenSnowflake for a program that cannot do without
// Snowflake: no connection configured is an error naming the settings.
func RequireSnowflake(env Env) (*sql.DB, error) {
	db, err := OpenSnowflake(env)
	if err == nil && db == nil {
		err = errors.New("no Snowflake connection configured: set SNOWFLAKE_DSN, or SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PRIVATE_KEY_PATH")
	}
	return db, err
}

func readRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snowflake: read private key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("snowflake: %s is not a PEM file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("snowflake: %s: want an unencrypted PKCS#8 RSA key: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("snowflake: %s is not an RSA key", path)
	}
	return rk, nil
}

// Connect dials Temporal and loads the AWS clients, as the worker and the
// starter both need, the Temporal client recording into metrics (if not
// nil). The caller closes the Temporal client.
func Connect(ctx context.Context, env Env, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, AWS, error) {
	tc, err := DialTemporal(ctx, env, logger, metrics)
	if err != nil {
		return nil, AWS{}, err
	}
	awsc, err := LoadAWS(ctx, env)
	if err != nil {
		tc.Close()
		return nil, AWS{}, err
	}
	return tc, awsc, nil
}
