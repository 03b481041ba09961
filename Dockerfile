# Multi-stage build: a static, pure-Go binary (SQLite is pure Go too) on a distroless base that
# runs as a non-root user. The final image holds the binary, CA certificates and time zones.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ecardbot ./cmd/ecardbot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ecardbot /usr/local/bin/ecardbot
USER nonroot:nonroot
ENV ECARDBOT_DATA_DIR=/home/nonroot/data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ecardbot"]
CMD ["serve"]
