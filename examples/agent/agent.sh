#!/bin/sh
# A small example agent: it asks a tool API for the open issues of a
# project and writes report.json. AGENT_BUG seeds one of the failure
# classes the example fixtures catch. It reaches the API through
# HTTPS_PROXY and trusts the proxy's CA through CURL_CA_BUNDLE, both set by
# `cassetteproxy run` and `cassetteproxy replay`.
set -u
api=${TOOL_API:-https://tools.example.test}
out=${REPORT:-report.json}

issues=$(curl -sS --fail "$api/v1/issues?state=open") || { echo "agent: tool call failed" >&2; exit 2; }

case "${AGENT_BUG:-}" in
missing_artifact_ref) # says it is done, writes nothing
	echo "agent: report written"; exit 0 ;;
empty_output) # writes the report file, with nothing in it
	: >"$out"; exit 0 ;;
schema_mismatch) # writes a report of the wrong shape
	printf '{"project": "demo", "open_issues": "two"}\n' >"$out"; exit 0 ;;
unrecorded_request) # asks the tool something it never asked before
	curl -sS "$api/v1/issues?state=closed" >/dev/null ;;
mutation_blocked) # tries to change the world
	curl -sS -X POST -H 'Content-Type: application/json' -d '{"title": "auto-filed"}' "$api/v1/issues" >/dev/null ;;
esac

count=$(printf '%s' "$issues" | grep -o '"id":' | wc -l | tr -d ' ')
titles=$(printf '%s' "$issues" | grep -o '"title":"[^"]*"' | sed 's/"title"://' | paste -sd, -)
printf '{"project": "demo", "open_issues": %s, "titles": [%s]}\n' "$count" "$titles" >"$out"
echo "agent: report written ($count open issues)"
