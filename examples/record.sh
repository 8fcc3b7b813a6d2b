#!/bin/sh
# Regenerates examples/fixtures/ from real recorded runs of the buggy
# example agent, one fixture per failure class, and proves each one:
#
#   1. start the tool API (examples/toolapi/toolapi.py) on a free loopback port;
#   2. `cassetteproxy run --mode record` the agent with AGENT_BUG=<class>;
#   3. `cassetteproxy export` the run into fixtures/<class>/ and write its
#      contract: what the *correct* agent does (status passed);
#   4. replay it with the buggy agent (fails with <class>), then with the
#      fixed one (passes): the second replay writes the proof into notes.json.
#
# It works in a scratch home and store and overwrites the fixtures it makes.
# CASSETTEPROXY names the binary (default: bin/cassetteproxy, `make build`).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cp=${CASSETTEPROXY:-$here/../bin/cassetteproxy}
classes="missing_artifact_ref empty_output schema_mismatch side_effect_duplicated host_not_allowed"

tmp=$(mktemp -d)
api_pid=
cleanup() {
	[ -z "$api_pid" ] || kill "$api_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cpx() { "$cp" --home "$tmp/home" --db "$tmp/store.db" "$@"; }

mkfifo "$tmp/port"
python3 "$here/toolapi/toolapi.py" "$tmp/port" &
api_pid=$!
read -r port <"$tmp/port"
api=http://127.0.0.1:$port

for class in $classes; do
	case $class in
	side_effect_duplicated | host_not_allowed) tier=critical ;;
	*) tier=hourly ;;
	esac
	fx=$here/fixtures/$class
	work=$tmp/work-$class
	mkdir -p "$work"
	# A relative agent path: export makes it ${FIXTURE_DIR}/../../agent/agent.sh.
	agent=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$here/agent/agent.sh" "$work")
	(cd "$work" && AGENT_BUG=$class cpx run --mode record --cassette "$class" \
		--task-id issues-report --agent-name issues-report-agent --timeout 30s \
		--env "TOOL_API=$api" --allow-host 127.0.0.1 --artifact report.json \
		-- sh "$agent") >"$tmp/$class.record.log" 2>&1 || true
	cpx export --cassette "$class" --out "$fx" --force --tier "$tier" --failure-class "$class" \
		--fixture-id "example-$(echo "$class" | tr _ -)" \
		--description "Recorded from the agent with AGENT_BUG=$class; the contract is what the fixed agent does." >/dev/null
	cp "$here/agent/report.schema.json" "$fx/report.schema.json"
	cat >"$fx/expected.json" <<JSON
{
  "status": "passed",
  "exit_code": 0,
  "artifacts": [
    {
      "path": "report.json",
      "non_empty": true,
      "json_schema": "report.schema.json",
      "contains": [
        "\"project\": \"demo\""
      ]
    }
  ],
  "requests": {
    "max_misses": 0,
    "forbid_mutations": true,
    "allowed_hosts": [
      "127.0.0.1"
    ]
  },
  "side_effects": [
    {
      "method": "POST",
      "url": "$api/v1/messages",
      "status": "2xx",
      "min": 1,
      "max": 1
    }
  ]
}
JSON
	# The buggy agent must fail with the class, the fixed one pass.
	bugged=$(cpx replay "$fx" --code-version "AGENT_BUG=$class" -- \
		sh -c 'AGENT_BUG=$0 exec sh "$CASSETTEPROXY_FIXTURE_DIR/../../agent/agent.sh"' "$class" 2>"$tmp/$class.bug.log") || true
	case $bugged in
	*"\"failure_class\": \"$class\""*) ;;
	*) echo "record.sh: $class: the buggy agent's replay did not fail with $class:" >&2; echo "$bugged" >&2; exit 1 ;;
	esac
	fixed=$(cpx replay "$fx" --code-version fixed 2>"$tmp/$class.fixed.log") || {
		echo "record.sh: $class: the fixed agent's replay did not pass:" >&2; echo "$fixed" >&2; cat "$tmp/$class.fixed.log" >&2; exit 1
	}
	case $fixed in
	*'"proven": true'*) echo "fixtures/$class: fails with the bug, passes with the fix: proven" ;;
	*) echo "record.sh: $class: not proven:" >&2; echo "$fixed" >&2; exit 1 ;;
	esac
done
