# The Temporal server (SQLite in /data) and its Web UI: cmd/devtemporal,
# built static on the host by scripts/docker.sh images.
FROM feedpipe-base:bookworm
COPY bin/devtemporal /usr/local/bin/devtemporal
VOLUME /data
EXPOSE 7233 8233
# Ready when both the frontend and the UI (started after the namespace) answer.
HEALTHCHECK --interval=2s --timeout=3s --retries=60 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/7233 && exec 4<>/dev/tcp/127.0.0.1/8233'
ENTRYPOINT ["devtemporal", "-bind", "0.0.0.0", "-db", "/data/temporal.db", "-port", "7233", "-ui-port", "8233", "-log", "/dev/stderr"]
