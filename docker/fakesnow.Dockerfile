# fakesnow (Snowflake) in server mode, on DuckDB with its httpfs extension.
# Built by scripts/docker.sh images, in the build context it assembles.
# Python 3.11 from Debian and the local stack's pinned packages (requirements-stack.txt)
# in a venv, installed by scripts/venv.sh as for the process stack. pip goes
# through TLS that is re-signed on the way: this machine's CA bundle is copied in
# (beside Debian's, which installing ca-certificates would overwrite).
FROM feedpipe-base:bookworm
COPY ca-certificates.crt /etc/feedpipe/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/feedpipe/ca-certificates.crt PIP_CERT=/etc/feedpipe/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/feedpipe/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
COPY requirements-stack.txt /app/
COPY scripts/venv.sh /app/scripts/
# Without cfn-lint and what only it needs (make lint's, ~150 MB); every other
# package at its pinned version.
RUN sed -i -E '/^(cfn-lint|sympy|mpmath|networkx|jsonpatch|jsonpointer|regex)==/d' /app/requirements-stack.txt && \
    FEEDPIPE_VENV=/venv bash /app/scripts/venv.sh
ENV PATH=/venv/bin:$PATH
# fakesnow's server keeps its tables in memory: a restarted fakesnow is empty
# (provision again). TMPDIR holds the stages it makes at import.
ENV TMPDIR=/tmp
EXPOSE 8098
HEALTHCHECK --interval=5s --timeout=3s --retries=24 CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/8098'
# As PID 1 it would ignore SIGTERM (it sets no handler): Python's SIGINT
# handler stops it at once.
STOPSIGNAL SIGINT
CMD ["fakesnow", "-s", "--host", "0.0.0.0", "-p", "8098"]
