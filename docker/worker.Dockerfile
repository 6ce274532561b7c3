# The feedpipe worker with pipelines.local.toml, and the feedpipe CLI
# (`docker compose exec worker feedpipe status`). Built static on the host by
# scripts/docker.sh images. Temporal, AWS and Snowflake come from the
# environment (internal/clients).
FROM feedpipe-base:bookworm
COPY bin/worker bin/feedpipe /usr/local/bin/
COPY pipelines.local.toml /etc/feedpipe/pipelines.toml
ENV FEEDPIPE_CONFIG=/etc/feedpipe/pipelines.toml
EXPOSE 9464
HEALTHCHECK --interval=5s --timeout=3s --retries=30 CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464'
ENTRYPOINT ["worker", "-metrics-addr", ":9464"]
