# One-shot provisioning of the emulators (cmd/provision: deploy/aws.yaml to
# MiniStack's CloudFormation, deploy/snowflake.sql to fakesnow), then exit 0.
# Built static on the host by scripts/docker.sh images.
FROM feedpipe-base:bookworm
COPY bin/provision /usr/local/bin/
ENTRYPOINT ["provision"]
