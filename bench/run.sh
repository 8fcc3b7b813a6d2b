#!/usr/bin/env bash
# Load harness: builds cassetteproxy, the reference proxies and the load
# generator, then measures direct / forward ref / record / memory ref /
# replay and prints a Markdown table.  Usage: bench/run.sh [--quick] [loadtest flags...]
# Extra flags go to bench/cmd/loadtest (e.g. -c 16 -duration 3s -nginx off -out FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
bin=$(mktemp -d "${TMPDIR:-/tmp}/cassetteproxy-bench-bin-XXXXXX")
trap 'rm -rf "$bin"' EXIT
args=()
for a in "$@"; do
	case "$a" in
	--quick) args+=(-quick) ;;
	*) args+=("$a") ;;
	esac
done
# Every proxy is built as `make build` builds cassetteproxy: static, no cgo.
export CGO_ENABLED=0
$GO build -tags urfave_cli_no_docs -o "$bin/cassetteproxy" ./cmd/cassetteproxy
$GO build -o "$bin/ref-forward" ./bench/ref/forward
$GO build -o "$bin/ref-memory" ./bench/ref/memory
$GO build -o "$bin/loadtest" ./bench/cmd/loadtest
"$bin/loadtest" -bin "$bin" "${args[@]+"${args[@]}"}"
