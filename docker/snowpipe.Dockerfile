# The local Snowpipe stand-in (cmd/snowpipe): COPY INTO for each new file of
# the destination bucket. Built static on the host by scripts/docker.sh images.
FROM feedpipe-base:bookworm
COPY bin/snowpipe /usr/local/bin/
EXPOSE 8090
HEALTHCHECK --interval=5s --timeout=5s --retries=30 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/8090 && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && head -1 <&3 | grep -q " 200 "'
ENTRYPOINT ["snowpipe", "-health-addr", ":8090"]
