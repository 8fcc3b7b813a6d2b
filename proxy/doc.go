// Package proxy is the MITM server: it accepts plain HTTP proxy requests and
// CONNECT tunnels (intercepted with a local CA, built on goproxy), applies the
// mode policy (record, replay, strict, live) to every request, answers from
// the cassette or forwards upstream, and tees what upstream answered to the
// recorder without holding up the client.
//
// Files, one concern each:
//   - server.go:    the listener, goproxy wiring, the proxy's own endpoints, shutdown
//   - conn.go:      each accepted connection: remembered until closed (hijacked tunnels
//     included), idle and head bounds, and the held write that sends a tunnelled
//     head with its body in one write
//   - policy.go:    the mode policy, one table: what each mode does in each situation
//   - handle.go:    one request's whole path, top to bottom
//   - recording.go: a forwarded answer's way from the end of its body to the recorder,
//     and the server's save workers
//   - running.go:   the one way to run a proxy (Start, Drain), the cassette's start,
//     the collector's settings
//   - capture.go:   the tee that records a response body as the client reads it
//     (spilling to a temporary file past 1 MiB, a marker past --max-body;
//     read ahead whole when small, inside a tunnel)
//   - sse.go:       splitting a recorded event stream into its SSE events
//   - normalize.go: turning a live request or response into its recorded form
//   - blocked.go:   the answer a blocked request gets
//   - coalesce.go:  which answers' heads may wait for their bodies, to share a write
//   - upstream.go:  the outbound transport (and the one replay uses, which cannot dial)
//   - ca.go:        the CA and the per-host leaf certificate cache
//   - clientenv.go: the variables that point a client at the proxy and its CA
//   - rulesfile.go: reading the rules file (matching and redaction sections)
package proxy
