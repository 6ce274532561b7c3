# MiniStack (AWS: S3, SQS, EventBridge, Kinesis, Firehose, Glue, CloudFormation).
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
# Objects are written to /data/s3 as they come; the other services' state is
# saved to /data/state when MiniStack stops (SIGTERM). Glue Python-shell jobs
# run with the venv's python3 (boto3, pyarrow) and reach MiniStack through
# AWS_ENDPOINT_URL. MINISTACK_HOST is the host in the URLs it hands out
# (queue URLs): set it to the name other containers reach it by.
ENV GATEWAY_PORT=4566 BIND_HOST=0.0.0.0 MINISTACK_HOST=localhost LOG_LEVEL=WARNING \
    S3_DATA_DIR=/data/s3 S3_PERSIST=1 PERSIST_STATE=1 STATE_DIR=/data/state \
    AWS_ENDPOINT_URL=http://localhost:4566 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
VOLUME /data
EXPOSE 4566
HEALTHCHECK --interval=5s --timeout=5s --retries=24 \
  CMD python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:4566/_localstack/health", timeout=4)'
CMD ["ministack"]
