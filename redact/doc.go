// Package redact owns secret scrubbing: headers, URL userinfo and query
// parameters, form, multipart and JSON bodies, SSE streams, and token
// patterns anywhere in text. It runs before anything is stored, exported or
// logged: the proxy hands every interaction to Interaction before the store
// sees it, computes match keys on Request's output, and passes log fields
// and URLs through String.
//
// # What is secret by default
//
//   - Headers: Authorization, Proxy-Authorization, Cookie, Set-Cookie,
//     X-Api-Key, Api-Key, X-Auth-Token, and any header whose name contains
//     token, secret, password or api-key (also api_key, apikey), except
//     rate-limit headers (x-ratelimit-remaining-tokens carries a count).
//     The whole value goes; an auth scheme word stays:
//     "Bearer [REDACTED:bearer]", "Basic [REDACTED:header]".
//   - Query parameters, form fields (urlencoded and multipart), and JSON
//     fields anywhere in the tree named api_key, apikey, key, token,
//     access_token, refresh_token, id_token, client_secret, password, secret,
//     sig, signature; beyond the common list also x-amz-signature,
//     x-amz-security-token, x-goog-signature, aws_secret_access_key,
//     aws_session_token, and the default header names above (a JSON
//     {"Authorization": "…"} is a credential). Names compare
//     case-insensitively and ignoring '-' and '_' (apiKey = api_key);
//     user[password] is judged by "password".
//   - Value patterns anywhere in headers, URLs and bodies (kind in brackets):
//     sk-… and sk-proj-… (openai_key; at least 8 bytes of [A-Za-z0-9_-]
//     after "sk-" with a digit, or 32 without, so "sk-learn" and
//     "risk-assessment" stay and "sk-test-0000" goes), sk-ant-…
//     (anthropic_key), AKIA/ASIA/ABIA/ACCA + 16 (aws_access_key), ghp_ gho_
//     ghs_ ghu_ ghr_ github_pat_ (github_token), xox[abprs]- (slack_token),
//     AIza + 30 or more (google_api_key), sk_live_ rk_live_ sk_test_
//     rk_test_ (stripe_key), eyJ….….… (jwt), PEM private key blocks
//     (private_key), the credentials after "Bearer " (bearer) and "Basic "
//     (basic_auth), the password of scheme://user:password@ (url_password).
//     Tokens must start at a word boundary (a JSON escape such as \n
//     counts as one).
//   - Name rules inside text (log lines, prose, JSON strings): name=value
//     after ? & # ; , a space or a quote, where name is a secret field name
//     (query); "name": value (field: JSON in text, and JSON encoded inside
//     a JSON string such as tool-call arguments, at any depth of escaping);
//     "Authorization: …", "Cookie: …", "X-Api-Key: …" (the explicit header
//     list, to the end of the line: header); and "password: hunter2" for a
//     secret field name when the value looks like a credential (6 bytes or
//     more with a digit, or 16 or more: field).
//
// # Format rules and values
//
// Beyond the list above, every rule of gitleaks' default configuration
// that applies to traffic (rules.go, gitleaks_rules.go), a few formats it
// lacks (Telegram bot tokens, Slack and Teams webhook paths, ya29.), and
// Config.Values (the caller's secrets, in their encodings) apply in every
// position: bodies, URLs (seen whole, the host kept), headers, log text,
// command lines; percent-encoded text is also scanned decoded. JSON bodies get both layers in one pass. Design and proof:
// docs/redaction.md.
//
// # Markers
//
// A secret becomes [REDACTED:<kind>]; with Config.Secret set (the per-store
// HMAC key), Interaction and String write [REDACTED:<kind>:<8 hex of
// HMAC-SHA256(secret, value)>] so two different keys stay distinguishable
// in a diff without being recoverable, and the same key has the same mark
// wherever it appears (header, body, URL). Request never writes
// fingerprints, so a match key does not depend on which secret was used.
// In URL userinfo the marker is percent-encoded (%5BREDACTED%3Akind%5D) so
// the URL still parses. Kinds: header, query, field, pattern (user
// patterns) and the pattern kinds above.
//
// Redaction is idempotent: markers are never redacted again, so scrubbing
// twice gives the same bytes.
//
// # Bodies
//
// Bodies are stored decoded, so lengths change freely. The form comes from
// Content-Type (sniffed when absent): JSON by a byte-level scanner that
// rewrites only string values (key order, spacing and escapes stay as they
// were, valid JSON stays valid; a secret field's number becomes a marker
// string); urlencoded forms by field; multipart part by part;
// text/event-stream line by line (JSON on data: lines, text elsewhere);
// other UTF-8 text by the patterns. Binary (non-UTF-8) bodies are left
// alone. A streamed response is scrubbed as one body and cut back at the
// original write boundaries, so Body stays the concatenation of Events and
// a secret split across two writes is still caught.
//
// # User rules
//
// The redact: section of the rules file (ParseConfig, LoadConfig) adds
// header names, field names, JSON paths ($.a.b, $.a[0], $.a[*].b, $..b,
// $['a b']; the value at the path is replaced whatever its type), RE2
// patterns (the first capture group, or the whole match, is replaced) and
// an allow-list of header, query and field names the default name rules
// must keep. The allow-list does not switch off the value patterns: a
// real key under an allowed name is still redacted.
package redact
