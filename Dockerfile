# Build the manager binary. The build command is the one of 'make build' and
# of 'make release', whose hack/ociimage assembles the same image (the binary
# at /manager, user 65532:65532) without Docker.
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev

WORKDIR /workspace
# Cache the dependencies before copying the sources.
COPY go.mod go.sum ./
RUN go mod download

COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/

RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/talkover/talkover-operator/internal/version.Version=${VERSION}" \
    -o manager ./cmd

# A distroless static image, running as a non-root user.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
