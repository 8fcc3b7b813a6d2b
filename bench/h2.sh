#!/usr/bin/env bash
# HTTP/2 replay throughput: h2load (Debian: nghttp2-client) through a CONNECT
# forwarder into cassetteproxy's MITM, 100 streams on one connection against
# HTTP/1.1 connections. Usage: bench/h2.sh [h2bench flags: -n N -rounds R -size B]
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
bin=$(mktemp -d "${TMPDIR:-/tmp}/cassetteproxy-h2bench-bin-XXXXXX")
trap 'rm -rf "$bin"' EXIT
export CGO_ENABLED=0 # as make build builds it
$GO build -tags urfave_cli_no_docs -o "$bin/cassetteproxy" ./cmd/cassetteproxy
$GO build -o "$bin/h2bench" ./bench/cmd/h2bench
"$bin/h2bench" -bin "$bin/cassetteproxy" "$@"
