// Package temporaldev runs a real Temporal server (SQLite persistence) and the
// Temporal Web UI inside one process, for laptops and tests that have no
// Docker. It is the local stand-in for Temporal Cloud: the worker and starter
// reach it through TEMPORAL_ADDRESS exactly as they reach a production cluster.
package temporaldev

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/feedpipe/feedpipe/internal/freeport"
)

// Config says how to run the embedded server. The zero value is usable: an
// in-memory database, namespace "default", free loopback ports, the UI on.
type Config struct {
	// DBFile persists state in this SQLite file; empty keeps it in memory.
	DBFile string
	// Namespace is created at start if it does not exist. Default "default".
	Namespace string
	// Port is the frontend gRPC port on 127.0.0.1; 0 picks a free one.
	Port int
	// UIPort is the Web UI's HTTP port on 127.0.0.1; 0 picks a free one;
	// -1 disables the UI.
	UIPort int
	// SearchAttributes are registered on the namespace at creation.
	SearchAttributes map[string]enumspb.IndexedValueType
	// LogFile receives the server's logs; empty discards them.
	LogFile string
	// LogLevel is the server's log level (debug, info, warn, error). Default warn.
	LogLevel string
	// BindIP is the address the frontend and UI listen on; default 127.0.0.1.
	// A container sets 0.0.0.0 so that other containers can reach it.
	BindIP string
	// Codec is the payload codec server the Web UI decodes payloads
	// through; its zero value: $TEMPORAL_CODEC_ENDPOINT (the variable the
	// UI's own container reads), or none.
	Codec CodecConfig
}

// EnvCodecEndpoint is the environment variable that gives the UI a codec
// endpoint when Config.Codec.Endpoint is empty (cmd/devtemporal has no flag
// for it; the local stack sets the variable).
const EnvCodecEndpoint = "TEMPORAL_CODEC_ENDPOINT"

// CodecConfig is the Web UI's codec endpoint: the browser posts the
// payloads it shows to Endpoint+"/decode" (header X-Namespace), so the
// codec server must allow the UI's origin (CORS).
type CodecConfig struct {
	// Endpoint is the codec server's base URL, e.g. http://127.0.0.1:8081.
	Endpoint string
	// PassAccessToken sends the user's access token (Authorization) along.
	PassAccessToken bool
	// IncludeCredentials sends the browser's cookies along.
	IncludeCredentials bool
}

// Server is a running Temporal server with its Web UI.
type Server struct {
	srv       temporal.Server
	ui        *uiserver.Server
	uiDone    chan error
	addr      string
	uiURL     string
	namespace string
	// codecEndpoint is the codec server the UI decodes payloads through.
	codecEndpoint string
}

// Start starts the server and the UI and returns once the frontend accepts
// connections and the UI answers HTTP.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if cfg.BindIP == "" {
		cfg.BindIP = "127.0.0.1"
	}
	if cfg.Codec.Endpoint == "" {
		cfg.Codec.Endpoint = os.Getenv(EnvCodecEndpoint)
	}
	ports, err := freeport.GetN(9)
	if err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = ports[0]
	}
	if cfg.UIPort == 0 {
		cfg.UIPort = ports[1]
	}

	sqlCfg := config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
	}
	if cfg.DBFile == "" {
		// A named shared in-memory database: every connection of the server
		// sees the same data, and it is gone when the process exits. The
		// SQLite plugin creates the schema of an in-memory database itself.
		sqlCfg.DatabaseName = fmt.Sprintf("feedpipe-%d-%d", os.Getpid(), time.Now().UnixNano())
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
	} else {
		abs, err := filepath.Abs(cfg.DBFile)
		if err != nil {
			return nil, fmt.Errorf("temporal db file %s: %w", cfg.DBFile, err)
		}
		sqlCfg.DatabaseName = abs
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		sqlCfg.ConnectAttributes["_journal_mode"] = "wal"
		if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
				return nil, fmt.Errorf("create directory for temporal db %s: %w", abs, err)
			}
			if err := sqlite.SetupSchema(&sqlCfg); err != nil {
				return nil, fmt.Errorf("create temporal schema in %s: %w", abs, err)
			}
		} else if err := forgetMembers(ctx, abs); err != nil {
			return nil, err
		}
	}

	const clusterName = "active"
	ns, err := sqlite.NewNamespaceConfig(clusterName, cfg.Namespace, false, cfg.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", cfg.Namespace, err)
	}
	// CreateNamespaces skips namespaces that exist, so a persisted database
	// keeps its history across restarts.
	if err := sqlite.CreateNamespaces(&sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", cfg.Namespace, err)
	}

	hostPort := fmt.Sprintf("127.0.0.1:%d", cfg.Port)
	svc := func(grpc, membership int, ip string) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpc, MembershipPort: membership, BindOnIP: ip}}
	}
	scfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: maxJoin, BroadcastAddress: "127.0.0.1"},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: &sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: hostPort},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": svc(cfg.Port, ports[2], cfg.BindIP),
			"history":  svc(ports[3], ports[4], "127.0.0.1"),
			"matching": svc(ports[5], ports[6], "127.0.0.1"),
			"worker":   svc(ports[7], ports[8], "127.0.0.1"),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: hostPort},
	}

	var logger tlog.Logger = tlog.NewNoopLogger()
	if cfg.LogFile != "" {
		logger = tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: cfg.LogLevel, OutputFile: cfg.LogFile}))
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&scfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&scfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal claim mapper: %w", err)
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(scfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// New search attributes and upserts are visible at once, which
			// tests and the demo rely on when they list runs by attribute.
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server on %s: %w", hostPort, err)
	}
	s := &Server{srv: srv, addr: hostPort, namespace: cfg.Namespace}
	if err := waitTCP(ctx, hostPort); err != nil {
		_ = srv.Stop()
		return nil, err
	}

	if cfg.UIPort > 0 {
		s.uiURL = fmt.Sprintf("http://127.0.0.1:%d", cfg.UIPort)
		s.codecEndpoint = cfg.Codec.Endpoint
		s.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
			TemporalGRPCAddress: hostPort,
			Host:                cfg.BindIP,
			Port:                cfg.UIPort,
			EnableUI:            true,
			DefaultNamespace:    cfg.Namespace,
			HideLogs:            true,
			DisableNewsFetch:    true,
			CORS:                uiconfig.CORS{CookieInsecure: true},
			Codec: uiconfig.Codec{
				Endpoint:           cfg.Codec.Endpoint,
				PassAccessToken:    cfg.Codec.PassAccessToken,
				IncludeCredentials: cfg.Codec.IncludeCredentials,
			},
		}))
		s.uiDone = make(chan error, 1)
		go func() { s.uiDone <- s.ui.Start() }()
		if err := waitHTTP(ctx, s.uiURL+"/healthz"); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Addr is the frontend's host:port, the value for TEMPORAL_ADDRESS.
func (s *Server) Addr() string { return s.addr }

// Namespace is the namespace the server was started with.
func (s *Server) Namespace() string { return s.namespace }

// UIURL is the Web UI's base URL, or "" when the UI is off.
func (s *Server) UIURL() string { return s.uiURL }

// CodecEndpoint is the codec endpoint the UI was given, or "".
func (s *Server) CodecEndpoint() string { return s.codecEndpoint }

// Stop stops the UI and the server.
func (s *Server) Stop() {
	if s.ui != nil {
		s.ui.Stop()
		<-s.uiDone
	}
	_ = s.srv.Stop()
}

func waitTCP(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal frontend %s did not accept connections: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal UI %s did not answer: %v", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// maxJoin bounds how long the server's services may take to find each other
// at start. The server's default (30 s) is too short on a busy 2-core
// machine, where a restart has been seen to need 58 s.
const maxJoin = 2 * time.Minute

// forgetMembers empties the persisted cluster membership of a database this
// server opens again. Every service of the previous process is gone (each
// start takes new ports), but ringpop tries to join the members the table
// still lists before it bootstraps alone; on a busy machine that outlasted
// the join limit and the restarted server exited ("failed to start ringpop:
// join duration … exceeded"). One process owns the file, so no member listed
// there can be alive.
func forgetMembers(ctx context.Context, dbFile string) error {
	// The SQLite persistence plugin imported above registers the "sqlite"
	// driver (modernc.org/sqlite).
	db, err := sql.Open("sqlite", "file:"+dbFile+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open temporal db %s: %w", dbFile, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("clear the previous process's cluster members in %s: %w", dbFile, err)
	}
	return nil
}
