# The starter, listening to the source bucket's event queue
# (FEEDPIPE_QUEUE_URL), with pipelines.local.toml. Built static on the host by
# scripts/docker.sh images.
FROM feedpipe-base:bookworm
COPY bin/starter /usr/local/bin/
COPY pipelines.local.toml /etc/feedpipe/pipelines.toml
ENV FEEDPIPE_CONFIG=/etc/feedpipe/pipelines.toml
EXPOSE 9465
HEALTHCHECK --interval=5s --timeout=3s --retries=30 CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9465'
ENTRYPOINT ["starter", "listen", "-metrics-addr", ":9465"]
