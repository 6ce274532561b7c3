# Images for docker-compose.yml. Targets: devtemporal (Temporal server + UI),
# emulators (MiniStack and fakesnow from requirements-stack.txt), worker,
# starter and devstack (provisions the emulators, then keeps the Snowpipe
# stand-in running).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/devtemporal ./cmd/devtemporal && \
    CGO_ENABLED=0 go build -o /out/worker ./cmd/worker && \
    CGO_ENABLED=0 go build -o /out/starter ./cmd/starter

FROM gcr.io/distroless/static-debian12 AS devtemporal
COPY --from=build /out/devtemporal /devtemporal
ENTRYPOINT ["/devtemporal", "-bind", "0.0.0.0", "-db", "/data/temporal.db"]

FROM python:3.11-slim AS emulators
WORKDIR /app
COPY requirements-stack.txt scripts/venv.sh ./
RUN mkdir scripts && mv venv.sh scripts/ && FEEDPIPE_VENV=/venv bash scripts/venv.sh
ENV PATH=/venv/bin:$PATH

FROM gcr.io/distroless/static-debian12 AS worker
COPY --from=build /out/worker /worker
COPY pipelines.local.toml /pipelines.toml
ENTRYPOINT ["/worker", "-config", "/pipelines.toml"]

FROM gcr.io/distroless/static-debian12 AS starter
COPY --from=build /out/starter /starter
COPY pipelines.local.toml /pipelines.toml
ENTRYPOINT ["/starter", "listen", "-config", "/pipelines.toml"]
