# syntax=docker/dockerfile:1
# Build: docker build -t airlock .
# Run:   docker run -p 8080:8080 -v airlock-data:/data airlock
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/airlock ./cmd/airlock
# distroless has no shell to mkdir with; a volume mounted on a directory
# the image owns inherits that ownership, so nonroot can write to it.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/airlock /usr/local/bin/airlock
COPY --from=build --chown=65532:65532 /out/data /data
# The data directory holds the metadata database, the blob store and the
# generated admin token: keep it on a volume.
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/airlock"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data", "/data"]
