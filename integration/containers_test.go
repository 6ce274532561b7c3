package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/provision"
)

// The container stack: the images `make images` builds (docker/*.Dockerfile)
// started by testcontainers-go on a Docker network of the test's own, as
// docker-compose.yml starts them: Temporal, MiniStack and fakesnow; the
// provisioner once; then the Snowpipe stand-in, the worker and the starter.
// The tests reach the containers through ports published on 127.0.0.1 only;
// the containers reach each other by name on the network.
//
// testcontainers' reaper (Ryuk) is an image from a registry this machine
// cannot reach, so it is off and the stack removes what it made itself:
// every container, its anonymous volumes and the network, at the end of the
// run, when the run fails, and (by label) what an earlier run that was killed
// left behind. `make test-containers` checks `docker ps -a` after the run.

// containerLabel marks every container and network the integration tests
// make, so that leftovers of a killed run can be found and removed.
const containerLabel = "io.feedpipe.integration"

// containerImage is the image of a part, as scripts/docker.sh tags it.
func containerImage(part string) string { return "feedpipe-" + part + ":dev" }

// Ports the parts listen on inside their containers (docker/*.Dockerfile).
const (
	temporalPort  = "7233/tcp"
	uiPort        = "8233/tcp"
	ministackPort = "4566/tcp"
	fakesnowPort  = "8098/tcp"
)

// containerStack is a running container stack.
type containerStack struct {
	runDir  string
	network *testcontainers.DockerNetwork
	docker  *testcontainers.DockerClient

	mu         sync.Mutex
	containers []namedContainer // in start order
	logger     *os.File
}

type namedContainer struct {
	name string
	c    testcontainers.Container
}

// Env inside the network: the addresses the worker, starter and Snowpipe
// stand-in containers use (docker-compose.yml's).
var containerAWSEnv = map[string]string{
	"AWS_ENDPOINT_URL":       "http://ministack:4566",
	"AWS_ACCESS_KEY_ID":      devstack.AccessKeyID,
	"AWS_SECRET_ACCESS_KEY":  devstack.SecretAccessKey,
	"AWS_REGION":             devstack.Region,
	"FEEDPIPE_S3_PATH_STYLE": "true",
}

func containerSnowflakeDSN(path string) string {
	return "fake:snow@fakesnow:8098" + path + "?account=fakesnow&protocol=http&disableTelemetry=true&requestTimeout=20&loginTimeout=20"
}

func withEnv(base map[string]string, kv ...string) map[string]string {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// startContainerStack starts the container stack and returns the addresses
// the tests use, as a devstack.Stack whose parts are containers.
func startContainerStack(ctx context.Context, runDir string) (_ *devstack.Stack, _ *containerStack, err error) {
	// Read once by testcontainers, before its first call.
	if err := os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true"); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, nil, err
	}
	cs := &containerStack{runDir: runDir}
	if cs.logger, err = os.Create(filepath.Join(runDir, "testcontainers.log")); err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			cs.Stop()
		}
	}()
	// testcontainers' own lines (its banner, each container's steps) go to
	// the run directory's testcontainers.log, not the test's output.
	tclog.SetDefault(cs)
	if cs.docker, err = testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		return nil, nil, fmt.Errorf("containers: Docker: %w (start it with scripts/docker.sh)", err)
	}
	removeLeftovers(ctx, cs.docker, cs.logf)
	for _, part := range []string{"temporal", "ministack", "fakesnow", "provision", "snowpipe", "worker", "starter"} {
		if _, _, err := cs.docker.ImageInspectWithRaw(ctx, containerImage(part)); err != nil {
			return nil, nil, fmt.Errorf("containers: image %s: %w (build the images with make images)", containerImage(part), err)
		}
	}
	if cs.network, err = tcnetwork.New(ctx, tcnetwork.WithLabels(map[string]string{containerLabel: "true"})); err != nil {
		return nil, nil, fmt.Errorf("containers: network: %w", err)
	}

	// The three servers start together; each waits for its image's health check.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	servers := []struct {
		name  string
		ports []string
		env   map[string]string
		tmpfs string
	}{
		{"temporal", []string{temporalPort, uiPort}, nil, "/data"},
		{"ministack", []string{ministackPort}, map[string]string{"MINISTACK_HOST": "ministack"}, "/data"},
		{"fakesnow", []string{fakesnowPort}, nil, ""},
	}
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cs.start(ctx, s.name, s.name, s.ports, s.env, nil, s.tmpfs, wait.ForHealthCheck().WithStartupTimeout(3*time.Minute))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}

	// The provisioner runs once and must succeed before the rest start.
	prov, err := cs.start(ctx, "provision", "provision", nil,
		withEnv(containerAWSEnv, "SNOWFLAKE_DSN", containerSnowflakeDSN("")),
		[]string{"-snowflake-s3-endpoint", "ministack:4566"}, "", wait.ForExit().WithExitTimeout(3*time.Minute))
	if err != nil {
		return nil, nil, err
	}
	if st, err := prov.State(ctx); err != nil || st.ExitCode != 0 {
		return nil, nil, fmt.Errorf("containers: the provisioner failed (exit %v, %v):\n%s", exitCode(st), err, containerLog(ctx, prov, 3000))
	}

	names := provision.DefaultNames()
	sfEnv := withEnv(containerAWSEnv, "SNOWFLAKE_DSN", containerSnowflakeDSN("/"+names.Snowflake.Database+"/"+names.Snowflake.Schema))
	healthy := wait.ForHealthCheck().WithStartupTimeout(2 * time.Minute)
	if _, err := cs.start(ctx, "snowpipe", "snowpipe", nil, sfEnv, nil, "", healthy); err != nil {
		return nil, nil, err
	}
	if _, err := cs.start(ctx, "worker", "worker", nil, withEnv(sfEnv, "TEMPORAL_ADDRESS", "temporal:7233"), nil, "", healthy); err != nil {
		return nil, nil, err
	}
	if _, err := cs.start(ctx, "starter", "starter", nil, withEnv(containerAWSEnv, "TEMPORAL_ADDRESS", "temporal:7233",
		"FEEDPIPE_QUEUE_URL", "http://ministack:4566/000000000000/"+names.FeedQueue), nil, "", healthy); err != nil {
		return nil, nil, err
	}

	s := &devstack.Stack{TemporalNamespace: "default", SnowflakeHost: "127.0.0.1", Names: names, RunDir: runDir}
	if s.TemporalAddress, err = cs.published(ctx, "temporal", temporalPort); err != nil {
		return nil, nil, err
	}
	ui, err := cs.published(ctx, "temporal", uiPort)
	if err != nil {
		return nil, nil, err
	}
	s.UIURL = "http://" + ui
	aws, err := cs.published(ctx, "ministack", ministackPort)
	if err != nil {
		return nil, nil, err
	}
	s.AWSEndpoint = "http://" + aws
	sf, err := cs.named("fakesnow").MappedPort(ctx, fakesnowPort)
	if err != nil {
		return nil, nil, err
	}
	s.SnowflakePort = sf.Int()
	cs.logf("container stack up: Temporal %s (UI %s), MiniStack %s, fakesnow 127.0.0.1:%d", s.TemporalAddress, s.UIURL, s.AWSEndpoint, s.SnowflakePort)
	return s, cs, nil
}

func exitCode(st *container.State) any {
	if st == nil {
		return "unknown"
	}
	return st.ExitCode
}

func (cs *containerStack) logf(format string, args ...any) {
	if cs.logger != nil {
		fmt.Fprintf(cs.logger, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
}

// Printf is testcontainers' logger: its lines go to the run directory.
func (cs *containerStack) Printf(format string, args ...any) { cs.logf(format, args...) }

// start creates and starts a container of the part's image with the alias
// on the stack's network, its ports published on 127.0.0.1 (a free port
// each), and waits with waitFor. tmpfs, if set, is mounted over the image's
// volume, so that the container leaves no volume behind. With no ports
// given, the image's exposed ports are published (on 127.0.0.1 too).
func (cs *containerStack) start(ctx context.Context, name, part string, ports []string, env map[string]string, cmd []string, tmpfs string, waitFor wait.Strategy, files ...testcontainers.ContainerFile) (testcontainers.Container, error) {
	if len(ports) == 0 {
		// Given no ports, testcontainers publishes the image's on every
		// interface: name them, so that they are published on 127.0.0.1.
		img, _, err := cs.docker.ImageInspectWithRaw(ctx, containerImage(part))
		if err != nil {
			return nil, fmt.Errorf("containers: image %s: %w", containerImage(part), err)
		}
		for p := range img.Config.ExposedPorts {
			ports = append(ports, string(p))
		}
	}
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        containerImage(part),
			ExposedPorts: ports,
			Env:          env,
			Cmd:          cmd,
			Labels:       map[string]string{containerLabel: "true"},
			WaitingFor:   waitFor,
			Files:        files,
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = nat.PortMap{}
				for _, p := range ports {
					hc.PortBindings[nat.Port(p)] = []nat.PortBinding{{HostIP: "127.0.0.1"}}
				}
				if tmpfs != "" {
					hc.Tmpfs = map[string]string{tmpfs: ""}
				}
			},
		},
		Started: true,
		Logger:  cs,
	}
	if err := tcnetwork.WithNetwork([]string{part}, cs.network).Customize(&req); err != nil {
		return nil, err
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if c != nil {
		cs.mu.Lock()
		cs.containers = append(cs.containers, namedContainer{name, c})
		cs.mu.Unlock()
	}
	if err != nil {
		tail := ""
		if c != nil {
			tail = "\n" + containerLog(ctx, c, 3000)
		}
		return nil, fmt.Errorf("containers: start %s (%s): %w%s", name, containerImage(part), err, tail)
	}
	cs.logf("started %s", name)
	return c, nil
}

func (cs *containerStack) named(name string) testcontainers.Container {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.containers {
		if c.name == name {
			return c.c
		}
	}
	return nil
}

// published is the 127.0.0.1 address a container's port is published on.
func (cs *containerStack) published(ctx context.Context, name, port string) (string, error) {
	p, err := cs.named(name).MappedPort(ctx, nat.Port(port))
	if err != nil {
		return "", fmt.Errorf("containers: %s port %s: %w", name, port, err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p.Int()), nil
}

// containerLog is the end of a container's output.
func containerLog(ctx context.Context, c testcontainers.Container, n int) string {
	r, err := c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(tail(b, n))
}

// LogTails is the end of each container's output, for a failed run.
func (cs *containerStack) LogTails(n int64) string {
	cs.mu.Lock()
	cs2 := append([]namedContainer(nil), cs.containers...)
	cs.mu.Unlock()
	var b strings.Builder
	for _, c := range cs2 {
		fmt.Fprintf(&b, "==> container %s <==\n%s\n", c.name, containerLog(context.Background(), c.c, int(n)))
	}
	return b.String()
}

// Stop removes every container (with its volumes) and the network, newest
// first, and closes the Docker client.
func (cs *containerStack) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs.mu.Lock()
	all := cs.containers
	cs.containers = nil
	cs.mu.Unlock()
	for i := len(all) - 1; i >= 0; i-- {
		if err := all[i].c.Terminate(ctx); err != nil {
			cs.logf("remove %s: %v", all[i].name, err)
		}
	}
	if cs.network != nil {
		if err := cs.network.Remove(ctx); err != nil {
			cs.logf("remove network: %v", err)
		}
	}
	if cs.docker != nil {
		removeLeftovers(ctx, cs.docker, cs.logf)
		cs.docker.Close()
	}
	if cs.logger != nil {
		cs.logger.Close()
	}
}

// removeLeftovers removes the containers, volumes and networks that carry
// containerLabel: those of this run that Terminate missed, or of an earlier
// run that was killed before it could clean up.
func removeLeftovers(ctx context.Context, d *testcontainers.DockerClient, logf func(string, ...any)) {
	label := filters.NewArgs(filters.Arg("label", containerLabel))
	if cs, err := d.ContainerList(ctx, container.ListOptions{All: true, Filters: label}); err == nil {
		for _, c := range cs {
			logf("removing leftover container %s (%s)", c.ID[:12], c.Image)
			if err := d.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				logf("remove container %s: %v", c.ID[:12], err)
			}
		}
	}
	if vs, err := d.VolumeList(ctx, volume.ListOptions{Filters: label}); err == nil {
		for _, v := range vs.Volumes {
			_ = d.VolumeRemove(ctx, v.Name, true)
		}
	}
	if ns, err := d.NetworkList(ctx, network.ListOptions{Filters: label}); err == nil {
		for _, n := range ns {
			logf("removing leftover network %s", n.Name)
			_ = d.NetworkRemove(ctx, n.ID)
		}
	}
}

// containerWorker is a worker container started by a test.
type containerWorker struct {
	cs *containerStack
	c  testcontainers.Container
}

// startWorkerContainer starts a worker container with the given pipelines
// file, on the stack's network, as the compose worker is started.
func (cs *containerStack) startWorkerContainer(t *testing.T, cfgPath string) *containerWorker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	names := provision.DefaultNames()
	env := withEnv(containerAWSEnv, "TEMPORAL_ADDRESS", "temporal:7233",
		"SNOWFLAKE_DSN", containerSnowflakeDSN("/"+names.Snowflake.Database+"/"+names.Snowflake.Schema))
	c, err := cs.start(ctx, "worker-"+t.Name(), "worker", nil, env, []string{"-stop-timeout", "1s"}, "",
		wait.ForLog("worker starting").WithStartupTimeout(2*time.Minute),
		testcontainers.ContainerFile{HostFilePath: cfgPath, ContainerFilePath: "/etc/feedpipe/pipelines.toml", FileMode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	return &containerWorker{cs: cs, c: c}
}

// Kill sends SIGKILL to the worker's process (docker kill) and waits until
// the container has stopped.
func (w *containerWorker) Kill(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.cs.docker.ContainerKill(ctx, w.c.GetContainerID(), "KILL"); err != nil {
		t.Fatal(err)
	}
	ok, errc := w.cs.docker.ContainerWait(ctx, w.c.GetContainerID(), container.WaitConditionNotRunning)
	select {
	case <-ok:
	case err := <-errc:
		t.Fatal(err)
	}
}

// Log is the worker's output.
func (w *containerWorker) Log() []byte {
	return []byte(containerLog(context.Background(), w.c, 1<<20))
}

// The container stack runs each part once, publishes its ports on 127.0.0.1
// only, and its provisioner ran once and exited 0.
func TestContainerStackLeavesOnlyWhatItRuns(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c, ok := parts.(*containers)
	if !ok {
		t.Skip("runs on the container stack (FEEDPIPE_STACK=containers)")
	}
	list, err := c.docker.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", containerLabel), filters.Arg("network", c.network.Name))})
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]int{}
	for _, ctr := range list {
		part := strings.TrimSuffix(strings.TrimPrefix(ctr.Image, "feedpipe-"), ":dev")
		if ctr.State == "running" {
			running[part]++
		} else if part != "provision" {
			t.Errorf("container %s (%s) is %s: %s", ctr.ID[:12], ctr.Image, ctr.State, ctr.Status)
		}
		for _, p := range ctr.Ports {
			if p.PublicPort != 0 && p.IP != "127.0.0.1" {
				t.Errorf("%s publishes port %d on %q: every port must be on 127.0.0.1 only", ctr.Image, p.PrivatePort, p.IP)
			}
		}
	}
	// Kill tests may have started workers of their own; the stack's parts
	// run once each.
	for _, part := range []string{"temporal", "ministack", "fakesnow", "snowpipe", "starter"} {
		if running[part] != 1 {
			t.Errorf("%d %s containers running, want 1", running[part], part)
		}
	}
	if running["worker"] < 1 {
		t.Error("no worker container running")
	}
	st, err := c.named("provision").State(ctx)
	if err != nil || st.Running || st.ExitCode != 0 {
		t.Errorf("provisioner: %+v %v, want exited 0", st, err)
	}
}
