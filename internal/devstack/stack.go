// Package devstack runs feedpipe's local stack as local processes: a real
// Temporal server with its Web UI (cmd/devtemporal), MiniStack for S3, SQS,
// EventBridge, Kinesis, Firehose and Glue, and fakesnow for Snowflake. It
// provisions every resource the pipeline needs and plays Snowpipe's
// auto-ingest, which neither emulator has. `make stack` and the integration
// tests both start it through Start.
package devstack

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/feedpipe/feedpipe/internal/codec"
	"github.com/feedpipe/feedpipe/internal/freeport"
	"github.com/feedpipe/feedpipe/internal/provision"
	"github.com/feedpipe/feedpipe/internal/snowpipe"
	_ "github.com/snowflakedb/gosnowflake" // registers the "snowflake" database/sql driver
)

// Credentials and region the emulators accept; they check neither.
const (
	AccessKeyID     = "test"
	SecretAccessKey = "test"
	Region          = "us-east-1"
)

// Options say where and how to run the stack. Only RunDir is required.
type Options struct {
	// RunDir receives each process's log and the emulators' data.
	RunDir string
	// Root is the repository root; default: the nearest parent of the working
	// directory whose go.mod is this module's.
	Root string
	// Venv is the Python venv with MiniStack and fakesnow; default Root/.venv
	// (or $FEEDPIPE_VENV). scripts/venv.sh creates it.
	Venv string
	// TemporalBin is the devtemporal binary; default $FEEDPIPE_DEVTEMPORAL, or
	// built from cmd/devtemporal into Root/bin (cached by the Go build cache).
	TemporalBin string
	// TemporalDB persists Temporal's state in this SQLite file; empty: in
	// memory (or RunDir/temporal.db with Persist).
	TemporalDB string
	// Persist keeps Temporal's and MiniStack's data in RunDir across a
	// restart of that part: Temporal's SQLite file, MiniStack's objects
	// (written as they come) and its other state (saved when it stops).
	// fakesnow's server keeps its tables in memory whatever its flags (its
	// -d applies to its Python library only): a restarted fakesnow is
	// provisioned again, empty. Off, everything is in memory: faster.
	Persist bool
	// Fixed ports on 127.0.0.1; 0 picks a free one. UIPort -1 turns the UI off.
	TemporalPort, UIPort, AWSPort, SnowflakePort int
	// Names of the provisioned resources; zero value: provision.DefaultNames().
	Names provision.Names
	// NoSnowpipe leaves out the Snowpipe stand-in.
	NoSnowpipe bool
	// Codec turns on payload encryption: Env() names a key file
	// (FEEDPIPE_CODEC_KEYS_FILE), so the worker and starter it configures
	// encrypt what they send to Temporal, and the stack serves those keys
	// as a codec server (in this process, on CodecPort) that the Web UI
	// is configured to decode payloads through. Off, payloads are plain.
	Codec bool
	// CodecKeysFile is the key file Codec uses; default
	// $FEEDPIPE_CODEC_KEYS_FILE, else RunDir/codec-keys, where a key is
	// generated if the file does not exist (and kept for later starts).
	CodecKeysFile string
	// CodecPort is the codec server's port on 127.0.0.1; 0 picks a free one.
	CodecPort int
	// Logger receives the harness's own log lines; default discards them.
	Logger *slog.Logger
}

// Stack is a running, provisioned local stack.
type Stack struct {
	// TemporalAddress is the frontend's host:port (TEMPORAL_ADDRESS).
	TemporalAddress string
	// TemporalNamespace is the namespace the server created.
	TemporalNamespace string
	// UIURL is the Temporal Web UI's base URL, "" when off.
	UIURL string
	// AWSEndpoint is MiniStack's URL (AWS_ENDPOINT_URL).
	AWSEndpoint string
	// SnowflakeHost and SnowflakePort address fakesnow.
	SnowflakeHost string
	SnowflakePort int
	// Names are the provisioned resources, AWS their identifiers.
	Names provision.Names
	AWS   provision.AWSResources
	// RunDir holds the processes' logs.
	RunDir string
	// Timings of the start, for the operator.
	Started map[string]time.Duration
	// CodecKeysFile is the payload key file (absolute), "" with the codec off.
	CodecKeysFile string
	// CodecURL is the codec server's base URL, the Web UI's codec
	// endpoint; "" with the codec off.
	CodecURL string

	parts  []*part
	pipe   *snowpipe.StandIn
	codec  *codec.Server
	cancel context.CancelFunc
	log    *slog.Logger
}

// Start starts every part, waits until each answers, provisions the resources
// and returns the running stack. On error it stops what it started.
func Start(ctx context.Context, opt Options) (_ *Stack, err error) {
	if opt.RunDir == "" {
		return nil, errors.New("devstack: Options.RunDir is required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Names.SourceBucket == "" {
		opt.Names = provision.DefaultNames()
	}
	if opt.Root == "" {
		if opt.Root, err = FindRoot(); err != nil {
			return nil, err
		}
	}
	if opt.Venv == "" {
		opt.Venv = os.Getenv("FEEDPIPE_VENV")
	}
	if opt.Venv == "" {
		opt.Venv = filepath.Join(opt.Root, ".venv")
	}
	if err := os.MkdirAll(opt.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: create run directory: %w", err)
	}
	for _, tool := range []string{"ministack", "fakesnow", "python3"} {
		if _, err := os.Stat(filepath.Join(opt.Venv, "bin", tool)); err != nil {
			return nil, fmt.Errorf("devstack: %s is missing from the venv %s; run `make venv` (scripts/venv.sh) to install the local stack's Python packages", tool, opt.Venv)
		}
	}

	s := &Stack{RunDir: opt.RunDir, Names: opt.Names, Started: map[string]time.Duration{}, log: opt.Logger}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	t0 := time.Now()

	// Start all three processes first, then wait for each: they boot in parallel.
	temporalBin := opt.TemporalBin
	if temporalBin == "" {
		temporalBin = os.Getenv("FEEDPIPE_DEVTEMPORAL")
	}
	if temporalBin == "" {
		if temporalBin, err = buildDevTemporal(ctx, opt.Root); err != nil {
			return nil, err
		}
		s.Started["build devtemporal"] = time.Since(t0)
	}
	ports, err := freeport.GetN(4)
	if err != nil {
		return nil, err
	}
	pick := func(p, free int) int {
		if p != 0 {
			return p
		}
		return free
	}
	awsPort, sfPort := pick(opt.AWSPort, ports[0]), pick(opt.SnowflakePort, ports[1])
	for _, p := range []int{opt.TemporalPort, opt.UIPort, opt.AWSPort, opt.SnowflakePort} {
		if p > 0 && !portFree(p) {
			return nil, fmt.Errorf("devstack: port %d on 127.0.0.1 is in use; stop what holds it (`ss -ltnp 'sport = :%d'`) or choose another port", p, p)
		}
	}

	// Temporal's frontend and UI get fixed ports too, so that a restarted
	// server is found where it was.
	tPort, uiPort := pick(opt.TemporalPort, ports[2]), pick(opt.UIPort, ports[3])
	temporalDB, awsPersist := opt.TemporalDB, []string{}
	if opt.Persist {
		if temporalDB == "" {
			temporalDB = filepath.Join(opt.RunDir, "temporal.db")
		}
		// MiniStack keeps objects on disk as they are written, and the other
		// services' state in STATE_DIR when it stops (SIGTERM).
		awsPersist = []string{"S3_PERSIST=1", "PERSIST_STATE=1", "STATE_DIR=" + filepath.Join(opt.RunDir, "ministack-state")}
	}

	tStart := time.Now()
	temporalOut := filepath.Join(opt.RunDir, "devtemporal.out")
	targs := []string{temporalBin, "-port", strconv.Itoa(tPort), "-ui-port", strconv.Itoa(uiPort),
		"-log", filepath.Join(opt.RunDir, "temporal.log")}
	if temporalDB != "" {
		targs = append(targs, "-db", temporalDB)
	}
	temporalEnv := os.Environ()
	if opt.Codec {
		if err := s.startCodec(opt, uiPort); err != nil {
			return nil, err
		}
		temporalEnv = append(temporalEnv, envCodecEndpoint+"="+s.CodecURL)
	}
	venvBin := filepath.Join(opt.Venv, "bin")
	s.AWSEndpoint = fmt.Sprintf("http://127.0.0.1:%d", awsPort)
	// MiniStack runs Glue Python-shell scripts with the `python3` on its PATH:
	// the venv's, which has boto3 and pyarrow. The scripts reach MiniStack
	// through AWS_ENDPOINT_URL like any AWS client.
	awsEnv := append(cleanEnv(), "PATH="+venvBin+":"+os.Getenv("PATH"),
		"GATEWAY_PORT="+strconv.Itoa(awsPort), "BIND_HOST=127.0.0.1", "MINISTACK_HOST=127.0.0.1",
		"S3_DATA_DIR="+filepath.Join(opt.RunDir, "s3"), "LOG_LEVEL=WARNING",
		"AWS_ENDPOINT_URL="+s.AWSEndpoint, "AWS_ACCESS_KEY_ID="+AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+SecretAccessKey, "AWS_DEFAULT_REGION="+Region, "AWS_REGION="+Region)
	awsEnv = append(awsEnv, awsPersist...)
	s.SnowflakeHost, s.SnowflakePort = "127.0.0.1", sfPort
	fakesnowTmp := filepath.Join(opt.RunDir, "fakesnow-tmp")
	if err := os.MkdirAll(fakesnowTmp, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s.parts = []*part{
		{name: PartTemporal, argv: targs, env: temporalEnv, log: temporalOut, ready: func(ctx context.Context, p *Process) error {
			ready, err := waitReadyLine(ctx, p, temporalOut, 90*time.Second)
			if err == nil {
				s.TemporalAddress, s.TemporalNamespace, s.UIURL = ready.Address, ready.Namespace, ready.UI
			}
			return err
		}},
		{name: PartMiniStack, argv: []string{filepath.Join(venvBin, "ministack")}, env: awsEnv, log: filepath.Join(opt.RunDir, "ministack.log"),
			ready: func(ctx context.Context, p *Process) error {
				return waitHealthy(ctx, p, s.AWSEndpoint+"/_localstack/health", 60*time.Second)
			}},
		{name: PartFakesnow, argv: []string{filepath.Join(venvBin, "fakesnow"), "-s", "--host", "127.0.0.1", "-p", strconv.Itoa(sfPort)},
			// fakesnow makes a temporary directory for its stages at import, and
			// never removes it: TMPDIR keeps them inside the run directory.
			env: append(cleanEnv(), "PATH="+venvBin+":"+os.Getenv("PATH"), "TMPDIR="+fakesnowTmp), log: filepath.Join(opt.RunDir, "fakesnow.log"),
			ready: func(ctx context.Context, p *Process) error {
				return waitHealthy(ctx, p, fmt.Sprintf("http://127.0.0.1:%d/", sfPort), 60*time.Second)
			}},
	}
	// Start all three first, then wait for each: they boot in parallel.
	for _, p := range s.parts {
		if err := p.start(false); err != nil {
			return nil, err
		}
	}
	for _, p := range s.parts {
		if err := p.ready(ctx, p.current()); err != nil {
			return nil, err
		}
		s.Started[p.name] = time.Since(tStart)
	}

	tProv := time.Now()
	if err := s.provision(ctx); err != nil {
		return nil, err
	}
	s.Started["provision"] = time.Since(tProv)

	if !opt.NoSnowpipe {
		pdb, err := s.OpenSnowflake(s.Names.Snowflake.Database, s.Names.Snowflake.Schema)
		if err != nil {
			return nil, err
		}
		runCtx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.pipe = snowpipe.NewStandIn(provision.NewAWSClients(s.AWSConfig(), true).SQS, pdb, s.AWS.LoadQueueURL, s.Names.Snowflake, opt.Logger)
		go s.pipe.Run(runCtx)
	}
	s.Started["total"] = time.Since(t0)
	return s, nil
}

// provision creates the AWS and Snowflake resources the pipelines need, or
// finds them there.
func (s *Stack) provision(ctx context.Context) error {
	clients := provision.NewAWSClients(s.AWSConfig(), true)
	aws, err := provision.AWS(ctx, clients, s.Names)
	if err != nil {
		return fmt.Errorf("devstack: provision AWS on %s: %w", s.AWSEndpoint, err)
	}
	s.AWS = aws
	db, err := s.OpenSnowflake("", "")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := provision.Snowflake(ctx, db, s.Names.Snowflake, s.Names.DestBucket, &provision.LocalS3{
		Endpoint: strings.TrimPrefix(s.AWSEndpoint, "http://"), KeyID: AccessKeyID, Secret: SecretAccessKey, Region: Region,
	}); err != nil {
		return fmt.Errorf("devstack: provision Snowflake on fakesnow: %w", err)
	}
	return nil
}

// AWSConfig is an aws.Config for the stack's MiniStack.
func (s *Stack) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.AWSEndpoint),
		// Emulators never throttle; keep SDK retries short so tests see errors fast.
		RetryMaxAttempts: 3,
	}
}

// SnowflakeDSN is a gosnowflake DSN for fakesnow; database and schema may be empty.
func (s *Stack) SnowflakeDSN(database, schema string) string {
	path := ""
	if database != "" {
		path = "/" + database
		if schema != "" {
			path += "/" + schema
		}
	}
	// fakesnow answers SQL it does not support with HTTP 500, which gosnowflake
	// retries until requestTimeout: keep that short so a bad statement fails fast.
	return fmt.Sprintf("fake:snow@%s:%d%s?account=fakesnow&protocol=http&disableTelemetry=true&requestTimeout=20&loginTimeout=20",
		s.SnowflakeHost, s.SnowflakePort, path)
}

// OpenSnowflake opens a gosnowflake connection pool to fakesnow.
func (s *Stack) OpenSnowflake(database, schema string) (*sql.DB, error) {
	db, err := sql.Open("snowflake", s.SnowflakeDSN(database, schema))
	if err != nil {
		return nil, fmt.Errorf("devstack: open Snowflake DSN: %w", err)
	}
	return db, nil
}

// Env is the environment a worker or starter needs to use this stack; with
// the codec on, it names the payload key file.
func (s *Stack) Env() []string {
	env := []string{
		"TEMPORAL_ADDRESS=" + s.TemporalAddress,
		"TEMPORAL_NAMESPACE=" + s.TemporalNamespace,
		"AWS_ENDPOINT_URL=" + s.AWSEndpoint,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_REGION=" + Region,
		"FEEDPIPE_S3_PATH_STYLE=true",
		"SNOWFLAKE_DSN=" + s.SnowflakeDSN(s.Names.Snowflake.Database, s.Names.Snowflake.Schema),
	}
	if s.CodecKeysFile != "" {
		env = append(env, codec.EnvKeysFile+"="+s.CodecKeysFile)
	}
	return env
}

// envCodecEndpoint gives devtemporal's Web UI its codec endpoint
// (temporaldev.EnvCodecEndpoint; not imported, which would build the
// Temporal server into every program that starts a stack).
const envCodecEndpoint = "TEMPORAL_CODEC_ENDPOINT"

// codecKeyID is the id of a key the stack generates.
const codecKeyID = "local-1"

// startCodec finds or generates the payload keys and serves them as a
// codec server that the Web UI at uiPort (-1: none) may call.
func (s *Stack) startCodec(opt Options, uiPort int) error {
	file := opt.CodecKeysFile
	if file == "" {
		file = os.Getenv(codec.EnvKeysFile)
	}
	if file == "" {
		file = filepath.Join(opt.RunDir, "codec-keys")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("devstack: codec key file %s: %w", file, err)
	}
	keys, err := codec.EnsureKeysFile(abs, codecKeyID)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	var origins []string
	if uiPort > 0 {
		origins = []string{fmt.Sprintf("http://127.0.0.1:%d", uiPort), fmt.Sprintf("http://localhost:%d", uiPort)}
	}
	srv, err := codec.Serve(fmt.Sprintf("127.0.0.1:%d", max(opt.CodecPort, 0)), codec.New(keys), origins)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.codec, s.CodecKeysFile, s.CodecURL = srv, abs, srv.URL()
	s.log.Info("devstack: payload codec on", "keys", abs, "encrypting", keys.EncryptingID(), "codec_url", s.CodecURL)
	return nil
}

// ProcessRSS is each child process's resident memory (with its children), in bytes.
func (s *Stack) ProcessRSS() map[string]int64 {
	m := map[string]int64{}
	for _, p := range s.parts {
		m[p.name] = p.current().RSS()
	}
	return m
}

// PIDs is each child process's id, for operators and for tests that check
// nothing is left running after Stop.
func (s *Stack) PIDs() map[string]int {
	m := map[string]int{}
	for _, p := range s.parts {
		m[p.name] = p.current().PID()
	}
	return m
}

// Check returns an error naming the first process that has exited.
func (s *Stack) Check() error {
	for _, p := range s.parts {
		if proc := p.current(); proc != nil {
			if done, err := proc.Exited(); done {
				return fmt.Errorf("devstack: %s exited (%v); last log lines:\n%s", p.name, err, proc.Tail(2000))
			}
		}
	}
	return nil
}

// Stop stops the Snowpipe stand-in and every process, and waits for them.
func (s *Stack) Stop() {
	if s.cancel != nil {
		s.cancel()
		s.pipe.Wait()
	}
	for i := len(s.parts) - 1; i >= 0; i-- {
		if proc := s.parts[i].current(); proc != nil {
			_ = syscall.Kill(-proc.PID(), syscall.SIGCONT) // a frozen part cannot stop
			proc.Stop(10 * time.Second)
		}
	}
	s.parts = nil
	if s.codec != nil {
		if err := s.codec.Close(); err != nil {
			s.log.Warn("devstack: stop the codec server", "err", err)
		}
		s.codec = nil
	}
}

// FindRoot returns the repository root: the nearest parent directory of the
// working directory whose go.mod declares this module.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/feedpipe/feedpipe\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devstack: not inside the feedpipe repository (no go.mod of github.com/feedpipe/feedpipe above the working directory); set Options.Root")
		}
		dir = parent
	}
}

// buildDevTemporal builds cmd/devtemporal into Root/bin. The Go build cache
// makes this a no-op when nothing changed; a lock file keeps concurrent test
// binaries from writing the output at once.
func buildDevTemporal(ctx context.Context, root string) (string, error) {
	out := filepath.Join(root, "bin", "devtemporal")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("devstack: lock %s: %w", out, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("devstack: lock %s: %w", out, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/devtemporal")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("devstack: go build ./cmd/devtemporal (the embedded Temporal server; a cold build takes minutes): %w\n%s", err, b)
	}
	return out, nil
}

type readyLine struct {
	Address   string `json:"address"`
	Namespace string `json:"namespace"`
	UI        string `json:"ui"`
}

func waitReadyLine(ctx context.Context, p *Process, path string, limit time.Duration) (readyLine, error) {
	deadline := time.Now().Add(limit)
	for {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var r readyLine
				if json.Unmarshal(sc.Bytes(), &r) == nil && r.Address != "" {
					f.Close()
					return r, nil
				}
			}
			f.Close()
		}
		if done, err := p.Exited(); done {
			return readyLine{}, fmt.Errorf("devstack: %s exited before it was ready (%v):\n%s", p.name, err, p.Tail(2000))
		}
		if time.Now().After(deadline) {
			return readyLine{}, fmt.Errorf("devstack: %s not ready after %s; see %s", p.name, limit, p.logPath)
		}
		select {
		case <-ctx.Done():
			return readyLine{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitHealthy(ctx context.Context, p *Process, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if done, werr := p.Exited(); done {
			return fmt.Errorf("devstack: %s exited before it was ready (%v):\n%s", p.name, werr, p.Tail(2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devstack: %s did not answer %s within %s (last error: %v); see %s", p.name, url, limit, err, p.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// cleanEnv is the harness's environment without settings that would point the
// emulators somewhere else (a developer's own AWS profile or endpoint).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "PATH" || k == "GATEWAY_PORT" || k == "EDGE_PORT" || k == "SERVICES" {
			continue
		}
		env = append(env, kv)
	}
	return env
}
