// Package match owns request normalization into match keys, rules, ordered
// lookup of repeats, and the closest-miss diff.
//
// # Keys
//
// A key (Rules.Key) is the hex SHA-256 of a request's canonical form:
//
//   - the method, upper-case;
//   - the scheme and host, lower-case, without the scheme's default port
//     (:80 for http, :443 for https) and without userinfo;
//   - the path, with RFC 3986 percent-encoding normalization (%7E is ~,
//     %2f is %2F; %2F is not /);
//   - the query parameters, decoded and sorted by name then value, minus
//     those ignore_query names;
//   - the headers that match_headers names (none by default, and never
//     the ones neverKeyed lists), names lower-case, sorted;
//   - the body: JSON (when the content type says JSON, or the body parses
//     as a JSON object or array) in canonical form (CanonicalJSON: sorted
//     keys, no insignificant whitespace, numbers as written), minus the
//     ignore_body_paths and minus the "id" of JSON-RPC 2.0 messages (a
//     batch: of each one); application/x-www-form-urlencoded sorted like a
//     query; anything else by its SHA-256. An empty body is no body.
//
// Redaction markers [REDACTED:<kind>:<fingerprint>] (also percent-encoded)
// are keyed as [REDACTED:<kind>] wherever they appear, so a request
// recorded with one secret matches the same request made with a rotated
// one.
//
// # Rules
//
// Rules come from YAML (ParseRules, ParseRulesFile, LoadRules); errors
// name the line, and the file when known ("rules.yaml:7: invalid JSON
// path ..."). The same file may hold a
// redact: section, which this package ignores. Any other unknown key is an
// error naming its line:
//
//	rules:
//	  - host: api.openai.com       # glob; "*" matches any run, dots too;
//	                               # "host:port" matches that port; omitted = any host
//	    path: /v1/chat/*           # glob; "*" matches any run, "/" too; omitted = any path
//	    ignore_query: [ts, nonce]  # names (globs, case-sensitive) left out of the key
//	    ignore_headers: [X-Debug]  # names (globs) never keyed, even if match_headers says so
//	    match_headers: [X-Tenant]  # names (globs, "*" = all) that DO go in the key
//	    ignore_body_paths:         # JSON paths left out of a JSON body; $.name also
//	      - $.metadata.request_id  #   drops a form field
//	      - $.messages[*].timestamp
//	    body: auto                 # auto | json | exact | ignore
//	    mode: replay               # replay | record | live | strict (for the proxy: Rules.ModeFor)
//	redact: {}                     # read by package redact
//
// Every rule whose host and path match a request applies: their
// ignore_query, ignore_headers, match_headers and ignore_body_paths add up.
// body and mode are taken from the first matching rule that sets them.
// body: auto (the default) is described above; json canonicalizes the body
// as JSON whatever its content type (bytes if it does not parse); exact
// keys the raw bytes (no JSON-RPC id removal, no body paths); ignore
// leaves the body out.
//
// JSON paths: $ (the whole body: same as body: ignore), .name, ['name'],
// [n] (negative counts from the end), [*] and .*, ..name and ..*. A
// removed array element keeps its place (it is keyed as null), so later
// indexes do not shift.
//
// # Lookup
//
// An Index maps keys to the interactions recorded with them, in recorded
// order, and a cursor: the nth identical request gets the nth recorded
// interaction, and past the last one the last one again, as Exhausted.
// On a miss, Closest names the nearest recorded interaction and the
// Differences that made the request miss it.
//
// On replay, JSON-RPC responses carry the recorded request's id; the proxy
// rewrites it to the live request's id with WithJSONRPCID (a JSON body) or
// RewriteJSONRPCIDInSSE (an SSE body), which change no other byte.
package match
