#!/usr/bin/env bash
# Docker for feedpipe's container stack, on a fresh Debian bookworm machine
# with no image registry in reach. Idempotent; every step is skipped when done.
#
#   scripts/docker.sh            install Docker Engine (Debian's docker.io) and
#                                debootstrap if missing, start dockerd if it is
#                                not running, build the base image
#   scripts/docker.sh images     the above, then every image under docker/
#   scripts/docker.sh compose ARGS...   a Compose CLI with ARGS: `docker compose` if
#                                the CLI has the v2 plugin, else bin/docker-compose
#                                (compose-v2), else Debian's docker-compose 1.29
#                                (installed if missing)
#   scripts/docker.sh compose-v2 build Compose v2 into bin/docker-compose from its Go
#                                module through the module proxy (bookworm has no
#                                package of it; `go install` refuses its go.mod)
#   scripts/docker.sh upload FILE KEY   put FILE as s3://feedpipe-source/KEY on the
#                                compose stack's MiniStack (KEY under customers/
#                                starts a run of the customers pipeline)
#   scripts/docker.sh stop       stop the dockerd this script started
#
# The base image feedpipe-base:bookworm is a debootstrap --variant=minbase of
# bookworm from the Debian mirror this machine's apt uses, imported with
# `docker import`; every image under docker/ is built FROM it (no registry).
# dockerd logs to .run/dockerd.log; its pid is in .run/dockerd.pid.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=$root/.run
base=feedpipe-base:bookworm
# The legacy builder: Debian's Engine 20.10 with a newer CLI (e.g. one in
# /usr/local/bin) and no buildx plugin still builds the same way.
export DOCKER_BUILDKIT=0

log() { echo "docker.sh: $*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] || { log "$1 needs root (apt-get, dockerd)"; exit 1; }
}

install() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} = 0 ] && return
  need_root "installing ${missing[*]}"
  log "installing ${missing[*]} from Debian"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# clear_stale_containerd removes the pid file of a containerd that dockerd
# started and that died with it: dockerd takes a live process of that pid
# (a recycled one) for its containerd and waits for a socket that never
# comes ("failed to start containerd: timeout waiting for containerd to
# start", seen after the machine had run thousands of processes since).
clear_stale_containerd() {
  local f=/var/run/docker/containerd/containerd.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null)
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != containerd ]; then
    log "removing $f: pid $pid is not a containerd (left by a dockerd that stopped)"
    rm -f "$f"
  fi
}

start() {
  if docker info >/dev/null 2>&1; then return; fi
  need_root "starting dockerd"
  mkdir -p "$run"
  if [ -f "$run/dockerd.pid" ] && kill -0 "$(cat "$run/dockerd.pid")" 2>/dev/null; then
    log "dockerd (pid $(cat "$run/dockerd.pid")) is starting"
  else
    pgrep -x dockerd >/dev/null || clear_stale_containerd
    log "starting dockerd (log $run/dockerd.log)"
    setsid dockerd >>"$run/dockerd.log" 2>&1 </dev/null &
    echo $! >"$run/dockerd.pid"
  fi
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && {
      log "dockerd is running (pid $(cat "$run/dockerd.pid")); stop it with: scripts/docker.sh stop  (or kill \$(cat .run/dockerd.pid))"
      return; }
    kill -0 "$(cat "$run/dockerd.pid")" 2>/dev/null || { log "dockerd exited; the end of $run/dockerd.log:"; tail -20 "$run/dockerd.log" >&2; exit 1; }
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; see $run/dockerd.log"; exit 1
}

stop() {
  local pid
  pid=$(cat "$run/dockerd.pid" 2>/dev/null) || { log "no $run/dockerd.pid: this script started no dockerd"; return; }
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$run/dockerd.pid"
}

# mirror is the first Debian archive URI of this machine's apt sources
# (deb822 .sources files or one-line .list files), not the security archive.
mirror() {
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' |
    grep -v -e security -e '^#' | grep '/debian/*$' | head -1 || true)
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; break}}' | grep -v security | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

base_image() {
  docker image inspect "$base" >/dev/null 2>&1 && return
  need_root "debootstrap"
  local dir=$run/docker/rootfs m
  m=$(mirror)
  log "building $base: debootstrap --variant=minbase bookworm from $m"
  rm -rf "$dir"
  mkdir -p "$dir"
  local t0=$SECONDS
  debootstrap --variant=minbase bookworm "$dir" "$m" >"$run/docker/debootstrap.log" 2>&1 || {
    log "debootstrap failed; the end of $run/docker/debootstrap.log:"; tail -20 "$run/docker/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$dir"
  log "built $base in $((SECONDS - t0)) s"
}

# context fills the build context every image shares: the static Go
# binaries, the Python stack's pins and installer, the local pipelines, and
# this machine's CA bundle (TLS to PyPI and Debian is re-signed on the way).
context() {
  local ctx=$run/docker/context t0=$SECONDS
  mkdir -p "$ctx/bin"
  log "building the static Go binaries into $ctx/bin"
  (cd "$root" && CGO_ENABLED=0 go build -ldflags='-s -w' -o "$ctx/bin/" \
    ./cmd/devtemporal ./cmd/worker ./cmd/starter ./cmd/feedpipe ./cmd/snowpipe ./cmd/provision)
  log "built the Go binaries in $((SECONDS - t0)) s"
  mkdir -p "$ctx/scripts"
  cp "$root/requirements-stack.txt" "$root/pipelines.local.toml" "$ctx/"
  cp "$root/scripts/venv.sh" "$ctx/scripts/"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
}

# The images, in build order (the Python ones share their venv layers).
IMAGES=(ministack fakesnow temporal worker starter snowpipe provision)

images() {
  context
  local ctx=$run/docker/context name t0
  for name in "${IMAGES[@]}"; do
    t0=$SECONDS
    log "building feedpipe-$name:dev (docker/$name.Dockerfile)"
    docker build --network host -t "feedpipe-$name:dev" -f "$root/docker/$name.Dockerfile" "$ctx" >"$run/docker/build-$name.log" 2>&1 || {
      log "building feedpipe-$name:dev failed; the end of $run/docker/build-$name.log:"; tail -30 "$run/docker/build-$name.log" >&2; exit 1; }
    log "built feedpipe-$name:dev in $((SECONDS - t0)) s"
  done
  docker images --filter 'reference=feedpipe-*' >&2
}

COMPOSE_VERSION=v2.40.3

# compose_v2 builds Compose v2 from its module's source: `go install
# github.com/docker/compose/v2/cmd@VERSION` stops at the exclude directives
# of its go.mod, so the module is downloaded and built in a copy.
compose_v2() {
  local out=$root/bin/docker-compose src=$run/docker/compose-src dir t0=$SECONDS
  [ -x "$out" ] && "$out" version 2>/dev/null | grep -q "$COMPOSE_VERSION" && return
  log "building Compose $COMPOSE_VERSION into $out (minutes)"
  dir=$(cd /tmp && go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "go mod download github.com/docker/compose/v2@$COMPOSE_VERSION failed"; exit 1; }
  rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  mkdir -p "$root/bin"
  (cd "$src" && CGO_ENABLED=0 go build -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" -o "$out" ./cmd)
  rm -rf "$src"
  log "built $("$out" version) in $((SECONDS - t0)) s"
}

# compose runs Compose v2 when the docker CLI has it or compose-v2 built it,
# else docker-compose (Debian's 1.29: bookworm has no Compose v2 package).
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"; return; fi
  if [ -x "$root/bin/docker-compose" ]; then
    "$root/bin/docker-compose" "$@"; return; fi
  if ! command -v docker-compose >/dev/null; then
    need_root "installing docker-compose"
    log "installing docker-compose from Debian"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y docker-compose
  fi
  docker-compose "$@"
}

# upload puts a file into the compose stack's source bucket, with the boto3 of
# the MiniStack container (no AWS CLI needed on the host).
upload() {
  [ $# = 2 ] && [ -f "$1" ] || { echo "usage: scripts/docker.sh upload FILE KEY" >&2; exit 2; }
  compose exec -T ministack python3 -c '
import sys, boto3, botocore.config
s3 = boto3.client("s3", config=botocore.config.Config(s3={"addressing_style": "path"}))
s3.put_object(Bucket="feedpipe-source", Key=sys.argv[1], Body=sys.stdin.buffer.read())
print("uploaded s3://feedpipe-source/" + sys.argv[1])' "$2" <"$1"
}

case "${1:-up}" in
  up) install; start; base_image ;;
  images) install; start; base_image; images ;;
  compose) shift; start; cd "$root" && compose "$@" ;;
  upload) shift; file=${1:+$(realpath "$1")}; shift || true; cd "$root" && upload "$file" "$@" ;;
  compose-v2) compose_v2 ;;
  stop) stop ;;
  mirror) mirror ;;
  *) echo "usage: scripts/docker.sh [up|images|compose ARGS...|compose-v2|upload FILE KEY|stop|mirror]" >&2; exit 2 ;;
esac
