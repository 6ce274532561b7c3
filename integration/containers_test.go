package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"gopkg.in/yaml.v3"

	"github.com/feedpipe/feedpipe/internal/devstack"
	"github.com/feedpipe/feedpipe/internal/provision"
)

// The container stack: the services of docker-compose.yml, read from that
// file (images, commands, environments, ports, volumes, start order), started
// by testcontainers-go on a Docker network of the run's own, where each
// service is reachable by its name as under Compose. Two things differ from
// `docker compose up`, both so that a run leaves nothing behind and does not
// collide with a Compose stack: each published port is a free port on
// 127.0.0.1 (not the file's fixed one), and each named volume is a tmpfs.
//
// testcontainers' reaper (Ryuk) is an image from a registry this machine
// cannot reach, so it is off and the run removes what it made: every
// container (with its anonymous volumes) and the network carry the labels
// containerSession (this run's id) and containerOwner (its pid); the run
// removes its own at the end, also when a test failed, on SIGINT/SIGTERM and
// before go test's timeout, and at its start those of earlier runs whose
// process is gone. `make test-containers` checks afterwards that nothing
// with its session's label is left.
const (
	containerSession = "io.feedpipe.integration.session"
	containerOwner   = "io.feedpipe.integration.pid"
)

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string                      `yaml:"image"`
	Command     []string                    `yaml:"command"`
	Environment map[string]string           `yaml:"environment"`
	Ports       []string                    `yaml:"ports"`
	Volumes     []string                    `yaml:"volumes"`
	DependsOn   map[string]composeCondition `yaml:"depends_on"`
}

type composeCondition struct {
	Condition string `yaml:"condition"`
}

// readCompose reads and checks the compose file: every port published on
// 127.0.0.1, every volume a named one.
func readCompose(path string) (*composeFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("containers: %s: %w", path, err)
	}
	for name, s := range f.Services {
		if s.Image == "" {
			return nil, fmt.Errorf("containers: %s: service %s has no image", path, name)
		}
		for _, p := range s.Ports {
			if _, _, err := composePort(p); err != nil {
				return nil, fmt.Errorf("containers: %s: service %s: %w", path, name, err)
			}
		}
		for _, v := range s.Volumes {
			if _, _, ok := strings.Cut(v, ":"); !ok {
				return nil, fmt.Errorf("containers: %s: service %s: volume %q is not NAME:PATH", path, name, v)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				return nil, fmt.Errorf("containers: %s: service %s depends on %s, which is not a service", path, name, dep)
			}
		}
	}
	return &f, nil
}

// composePort returns the container port of a "127.0.0.1:HOST:CONTAINER"
// entry, and refuses one that is not bound to 127.0.0.1.
func composePort(p string) (nat.Port, string, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 || parts[0] != "127.0.0.1" {
		return "", "", fmt.Errorf("port %q is not 127.0.0.1:HOST:CONTAINER: every port must be bound to 127.0.0.1 only", p)
	}
	port, err := nat.NewPort("tcp", parts[2])
	return port, parts[1], err
}

// startOrder is the services in waves: each wave's services depend only on
// those of earlier waves. A service that another depends on with
// service_completed_successfully is a one-shot.
func (f *composeFile) startOrder() (waves [][]string, oneShot map[string]bool, err error) {
	oneShot = map[string]bool{}
	for _, s := range f.Services {
		for dep, c := range s.DependsOn {
			if c.Condition == "service_completed_successfully" {
				oneShot[dep] = true
			}
		}
	}
	done := map[string]bool{}
	for len(done) < len(f.Services) {
		var wave []string
		for name, s := range f.Services {
			if done[name] {
				continue
			}
			ready := true
			for dep := range s.DependsOn {
				ready = ready && done[dep]
			}
			if ready {
				wave = append(wave, name)
			}
		}
		if len(wave) == 0 {
			return nil, nil, errors.New("containers: the services' depends_on form a cycle")
		}
		sort.Strings(wave)
		for _, name := range wave {
			done[name] = true
		}
		waves = append(waves, wave)
	}
	return waves, oneShot, nil
}

// containerStack is a running container stack.
type containerStack struct {
	compose *composeFile
	session string
	network *testcontainers.DockerNetwork
	docker  *testcontainers.DockerClient
	logger  *os.File

	mu         sync.Mutex
	containers map[string]testcontainers.Container // by name: the service, or a test's worker
}

// startContainerStack starts the services of root/docker-compose.yml and
// returns the addresses the tests use, as a devstack.Stack whose parts are
// containers. On error it removes what it started.
func startContainerStack(ctx context.Context, root, runDir string) (_ *devstack.Stack, _ *containerStack, err error) {
	// Read once by testcontainers, before its first call.
	if err := os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true"); err != nil {
		return nil, nil, fmt.Errorf("containers: %w", err)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("containers: %w", err)
	}
	cs := &containerStack{containers: map[string]testcontainers.Container{}, session: os.Getenv("FEEDPIPE_CONTAINERS_SESSION")}
	if cs.session == "" {
		cs.session = fmt.Sprintf("pid-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	if cs.compose, err = readCompose(filepath.Join(root, "docker-compose.yml")); err != nil {
		return nil, nil, err
	}
	if cs.logger, err = os.Create(filepath.Join(runDir, "testcontainers.log")); err != nil {
		return nil, nil, fmt.Errorf("containers: %w", err)
	}
	defer func() {
		if err != nil {
			_ = cs.Stop()
		}
	}()
	// testcontainers' own lines (its banner, each container's steps) go to
	// the run directory's testcontainers.log, not the test's output.
	tclog.SetDefault(cs)
	if cs.docker, err = testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		return nil, nil, fmt.Errorf("containers: Docker: %w (start it with scripts/docker.sh)", err)
	}
	cs.removeOrphans(ctx)
	for name, s := range cs.compose.Services {
		if _, err := cs.docker.ImageInspect(ctx, s.Image); err != nil {
			return nil, nil, fmt.Errorf("containers: service %s: image %s: %w (build the images with make images)", name, s.Image, err)
		}
	}
	if cs.network, err = tcnetwork.New(ctx, tcnetwork.WithLabels(cs.labels())); err != nil {
		return nil, nil, fmt.Errorf("containers: network: %w", err)
	}
	waves, oneShot, err := cs.compose.startOrder()
	if err != nil {
		return nil, nil, err
	}
	for _, wave := range waves {
		errs := make([]error, len(wave))
		var wg sync.WaitGroup
		for i, name := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = cs.startService(ctx, name, oneShot[name])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, nil, err
		}
	}

	s := &devstack.Stack{TemporalNamespace: "default", SnowflakeHost: "127.0.0.1", Names: provision.DefaultNames(), RunDir: runDir}
	var ui, aws, sf string
	for _, a := range []struct {
		service, port string
		addr          *string
	}{
		{"temporal", "7233/tcp", &s.TemporalAddress},
		{"temporal", "8233/tcp", &ui},
		{"ministack", "4566/tcp", &aws},
		{"fakesnow", "8098/tcp", &sf},
	} {
		if *a.addr, err = cs.published(ctx, a.service, a.port); err != nil {
			return nil, nil, err
		}
	}
	s.UIURL, s.AWSEndpoint = "http://"+ui, "http://"+aws
	_, sfPort, _ := strings.Cut(sf, ":")
	if s.SnowflakePort, err = strconv.Atoi(sfPort); err != nil {
		return nil, nil, fmt.Errorf("containers: fakesnow's port %q: %w", sf, err)
	}
	cs.logf("container stack up (session %s): Temporal %s (UI %s), MiniStack %s, fakesnow 127.0.0.1:%d",
		cs.session, s.TemporalAddress, s.UIURL, s.AWSEndpoint, s.SnowflakePort)
	return s, cs, nil
}

// labels mark what this run makes.
func (cs *containerStack) labels() map[string]string {
	return map[string]string{containerSession: cs.session, containerOwner: strconv.Itoa(os.Getpid())}
}

func (cs *containerStack) logf(format string, args ...any) {
	if cs.logger != nil {
		fmt.Fprintf(cs.logger, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
}

// Printf is testcontainers' logger: its lines go to the run directory.
func (cs *containerStack) Printf(format string, args ...any) { cs.logf(format, args...) }

// startService starts a compose service and waits until it is healthy (the
// image's health check) or, for a one-shot, until it has exited 0.
func (cs *containerStack) startService(ctx context.Context, name string, oneShot bool) error {
	svc := cs.compose.Services[name]
	var waitFor wait.Strategy = wait.ForHealthCheck().WithStartupTimeout(3 * time.Minute)
	if oneShot {
		waitFor = wait.ForExit().WithExitTimeout(3 * time.Minute)
	}
	c, err := cs.start(ctx, name, name, svc, waitFor)
	if err != nil {
		return err
	}
	if oneShot {
		st, err := c.State(ctx)
		if err != nil {
			return fmt.Errorf("containers: %s: %w", name, err)
		}
		if st.ExitCode != 0 {
			return fmt.Errorf("containers: %s exited %d:\n%s", name, st.ExitCode, containerLog(ctx, c, 3000))
		}
	}
	cs.logf("started %s", name)
	return nil
}

// start creates and starts a container of svc under the given name, on the
// stack's network with the alias (the service's name) as its host name: its ports
// published on 127.0.0.1 (a free port each; with none in the file, the
// image's exposed ports, which testcontainers would otherwise publish on
// every interface), its named volumes as tmpfs (nothing left behind), and
// waits with waitFor.
func (cs *containerStack) start(ctx context.Context, name, alias string, svc composeService, waitFor wait.Strategy, files ...testcontainers.ContainerFile) (testcontainers.Container, error) {
	var ports []string
	for _, p := range svc.Ports {
		port, _, _ := composePort(p)
		ports = append(ports, string(port))
	}
	if len(ports) == 0 {
		img, err := cs.docker.ImageInspect(ctx, svc.Image)
		if err != nil {
			return nil, fmt.Errorf("containers: %s: image %s: %w", name, svc.Image, err)
		}
		for p := range img.Config.ExposedPorts {
			ports = append(ports, string(p))
		}
	}
	tmpfs := map[string]string{}
	for _, v := range svc.Volumes {
		_, path, _ := strings.Cut(v, ":")
		tmpfs[path] = ""
	}
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        svc.Image,
			ExposedPorts: ports,
			Env:          svc.Environment,
			Cmd:          svc.Command,
			Labels:       cs.labels(),
			WaitingFor:   waitFor,
			Files:        files,
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = nat.PortMap{}
				for _, p := range ports {
					hc.PortBindings[nat.Port(p)] = []nat.PortBinding{{HostIP: "127.0.0.1"}}
				}
				hc.Tmpfs = tmpfs
			},
		},
		Started: true,
		Logger:  cs,
	}
	if err := tcnetwork.WithNetwork([]string{alias}, cs.network).Customize(&req); err != nil {
		return nil, fmt.Errorf("containers: %s: %w", name, err)
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if c != nil {
		cs.mu.Lock()
		cs.containers[name] = c
		cs.mu.Unlock()
	}
	if err != nil {
		tail := ""
		if c != nil {
			tail = "\n" + containerLog(ctx, c, 3000)
		}
		return nil, fmt.Errorf("containers: start %s (%s): %w%s", name, svc.Image, err, tail)
	}
	return c, nil
}

func (cs *containerStack) named(name string) testcontainers.Container {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.containers[name]
}

// published is the 127.0.0.1 address a container's port is published on.
func (cs *containerStack) published(ctx context.Context, name, port string) (string, error) {
	c := cs.named(name)
	if c == nil {
		return "", fmt.Errorf("containers: no container %s", name)
	}
	p, err := c.MappedPort(ctx, nat.Port(port))
	if err != nil {
		return "", fmt.Errorf("containers: %s port %s: %w", name, port, err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p.Int()), nil
}

// containerLog is the end (n bytes) of a container's output.
func containerLog(ctx context.Context, c testcontainers.Container, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
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
	names := slices.Sorted(maps.Keys(cs.containers))
	cs.mu.Unlock()
	var b strings.Builder
	for _, name := range names {
		if c := cs.named(name); c != nil {
			fmt.Fprintf(&b, "==> container %s <==\n%s\n", name, containerLog(context.Background(), c, int(n)))
		}
	}
	return b.String()
}

// Stop removes every container of the run (with its anonymous volumes),
// all at once, then the network, and closes the Docker client. It returns
// what it could not remove.
func (cs *containerStack) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs.mu.Lock()
	all := cs.containers
	cs.containers = map[string]testcontainers.Container{}
	cs.mu.Unlock()
	errs := make(chan error, len(all))
	var wg sync.WaitGroup
	for name, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
				errs <- fmt.Errorf("remove container %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	if cs.network != nil {
		if e := cs.network.Remove(ctx); e != nil {
			err = errors.Join(err, fmt.Errorf("remove network %s: %w", cs.network.Name, e))
		}
	}
	if err != nil {
		cs.logf("stop: %v", err)
	}
	if cs.docker != nil {
		cs.docker.Close()
	}
	if cs.logger != nil {
		cs.logger.Close()
	}
	if err != nil {
		return fmt.Errorf("containers: %w", err)
	}
	return nil
}

// removeOrphans removes the containers and networks of earlier runs whose
// test process is gone (killed before it could clean up); those of a run
// still going are left alone.
func (cs *containerStack) removeOrphans(ctx context.Context) {
	orphan := func(labels map[string]string) bool {
		pid, err := strconv.Atoi(labels[containerOwner])
		if err != nil || labels[containerSession] == cs.session {
			return false
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err != nil || !strings.Contains(string(cmd), "integration.test")
	}
	owned := filters.NewArgs(filters.Arg("label", containerOwner))
	if list, err := cs.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: owned}); err == nil {
		for _, c := range list {
			if orphan(c.Labels) {
				cs.logf("removing container %s (%s) of a run that is gone", c.ID[:12], c.Image)
				_ = cs.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
	}
	if list, err := cs.docker.NetworkList(ctx, network.ListOptions{Filters: owned}); err == nil {
		for _, n := range list {
			if orphan(n.Labels) {
				cs.logf("removing network %s of a run that is gone", n.Name)
				_ = cs.docker.NetworkRemove(ctx, n.ID)
			}
		}
	}
}

// containerWorker is a worker container started by a test.
type containerWorker struct {
	cs *containerStack
	c  testcontainers.Container
}

// startWorkerContainer starts a container of the compose file's worker
// service with the given pipelines file; it is removed when t ends.
func (cs *containerStack) startWorkerContainer(t *testing.T, cfgPath string) *containerWorker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc := cs.compose.Services["worker"]
	svc.Command = append(slices.Clone(svc.Command), "-stop-timeout", "1s")
	name := fmt.Sprintf("%s-worker-%d", t.Name(), time.Now().UnixNano())
	c, err := cs.start(ctx, name, "worker", svc, wait.ForHealthCheck().WithStartupTimeout(2*time.Minute),
		testcontainers.ContainerFile{HostFilePath: cfgPath, ContainerFilePath: "/etc/feedpipe/pipelines.toml", FileMode: 0o644})
	if c != nil {
		t.Cleanup(func() {
			cs.mu.Lock()
			delete(cs.containers, name)
			cs.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
				t.Errorf("remove worker container: %v", err)
			}
		})
	}
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

// The container stack is docker-compose.yml's: one running container of
// each service from the file's image (the one-shot provisioner exited 0),
// and every published port on 127.0.0.1.
func TestContainerStackRunsTheComposeFile(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	c, ok := parts.(*containers)
	if !ok {
		t.Skip("runs on the container stack (FEEDPIPE_STACK=containers)")
	}
	list, err := c.docker.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", containerSession+"="+c.session))})
	if err != nil {
		t.Fatal(err)
	}
	byImage := map[string][]container.Summary{}
	for _, ctr := range list {
		byImage[ctr.Image] = append(byImage[ctr.Image], ctr)
		for _, p := range ctr.Ports {
			if p.PublicPort != 0 && p.IP != "127.0.0.1" {
				t.Errorf("%s publishes port %d on %q: every port must be on 127.0.0.1 only", ctr.Image, p.PrivatePort, p.IP)
			}
		}
	}
	_, oneShot, err := c.compose.startOrder()
	if err != nil {
		t.Fatal(err)
	}
	for name, svc := range c.compose.Services {
		got := byImage[svc.Image]
		if len(got) != 1 {
			t.Errorf("service %s: %d containers of %s, want 1 (a test's worker left behind?)", name, len(got), svc.Image)
			continue
		}
		want := "running"
		if oneShot[name] {
			want = "exited"
			if !strings.HasPrefix(got[0].Status, "Exited (0)") {
				t.Errorf("service %s: %s, want exited 0", name, got[0].Status)
			}
		}
		if got[0].State != want {
			t.Errorf("service %s: %s (%s), want %s", name, got[0].State, got[0].Status, want)
		}
	}
	if len(list) != len(c.compose.Services) {
		t.Errorf("%d containers in the run, want %d (one per service)", len(list), len(c.compose.Services))
	}
}
