package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/cassetteproxy/cassetteproxy/match"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// toolHints holds, per host, the MCP tools that a recorded tools/list
// annotates readOnlyHint: true. Every MCP request is a POST; with these a
// tools/call of a read-only tool is a safe request like a GET (a miss is
// unrecorded_request, and live mode may forward it), and any other
// tools/call stays a mutation.
type toolHints struct {
	mu     sync.RWMutex
	byHost map[string]map[string]bool
}

func newToolHints(ix *match.Index) (*toolHints, error) {
	t := &toolHints{byHost: map[string]map[string]bool{}}
	lists, err := ix.ToolLists()
	if err != nil {
		return nil, err
	}
	for _, in := range lists {
		t.learn(in)
	}
	return t, nil
}

// learn takes the read-only tools from a recorded tools/list answer.
func (t *toolHints) learn(in *store.Interaction) {
	call, ok := match.ParseJSONRPCCall(in.Request.Body)
	if !ok || call.Method != "tools/list" {
		return
	}
	names := match.ReadOnlyTools(in.Response.Body)
	if len(names) == 0 {
		return
	}
	u, err := url.Parse(in.Request.URL)
	if err != nil {
		return
	}
	host := hintHost(u)
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.byHost[host]
	if set == nil {
		set = map[string]bool{}
		t.byHost[host] = set
	}
	for _, n := range names {
		set[n] = true
	}
}

// safe reports whether a request only reads: a GET, HEAD or OPTIONS, or a
// JSON-RPC request that reads (an MCP list, get or read, or a tools/call
// of a tool this host's recorded tools/list marks read-only).
func (t *toolHints) safe(req *http.Request, body []byte) bool {
	if isSafe(req.Method) {
		return true
	}
	if req.Method != http.MethodPost {
		return false
	}
	call, ok := match.ParseJSONRPCCall(body)
	if !ok {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return call.ReadOnly(t.byHost[hintHost(req.URL)])
}

// hintHost is a URL's host as hints key it: lower case, without the
// scheme's default port.
func hintHost(u *url.URL) string {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	host = strings.ToLower(host)
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}
