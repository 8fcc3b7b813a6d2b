package match

import (
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/store"
)

func TestHostPatterns(t *testing.T) {
	h, err := ParseHostPatterns([]string{"api.example.com", "*.tools.test", "127.0.0.1:8443", "API.Example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.List(), ","); got != "api.example.com,*.tools.test,127.0.0.1:8443" {
		t.Errorf("List() = %s", got)
	}
	tests := []struct {
		host, port string
		want       bool
	}{
		{"api.example.com", "443", true},
		{"API.EXAMPLE.COM:443", "", true},
		{"api.example.com:8080", "", true}, // no port in the pattern: any port
		{"evil.example.com", "443", false},
		{"api.example.com.evil.test", "443", false},
		{"a.tools.test", "80", true},
		{"a.b.tools.test:443", "", true}, // "*" spans dots
		{"tools.test", "443", false},
		{"127.0.0.1:8443", "", true},
		{"127.0.0.1:8444", "", false},
		{"127.0.0.1", "443", false},
		{"", "443", false},
	}
	for _, tt := range tests {
		if got := h.Allows(tt.host, tt.port); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tt.host, tt.port, got, tt.want)
		}
	}
	var none *HostPatterns
	if !none.Allows("anything.test:443", "") || none.List() != nil {
		t.Errorf("a nil allow-list must allow everything")
	}
	if h, err := ParseHostPatterns(nil); h != nil || err != nil {
		t.Errorf("an empty list must give no restriction, got %v %v", h, err)
	}
}

func TestHostPatternErrors(t *testing.T) {
	for _, p := range []string{"", "  ", "https://api.example.com", "api.example.com/v1", "a b", "user@host"} {
		_, err := ParseHostPatterns([]string{"ok.test", p})
		if err == nil {
			t.Errorf("%q accepted", p)
			continue
		}
		if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "allowed host") {
			t.Errorf("%q: error %q is not one line naming the allowed host", p, err)
		}
	}
}

func TestRulesFileAllowHosts(t *testing.T) {
	r, err := ParseRulesFile("rules.yaml", []byte("allow_hosts: [api.example.com, \"*.tools.test\"]\nrules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.AllowHosts(), ","); got != "api.example.com,*.tools.test" {
		t.Errorf("AllowHosts() = %s", got)
	}
	_, err = ParseRulesFile("rules.yaml", []byte("allow_hosts:\n  - api.example.com\n  - https://bad.test\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "rules.yaml:3: ") || !strings.Contains(err.Error(), "not a URL") {
		t.Errorf("a bad allow_hosts entry: %v", err)
	}
	if DefaultRules().AllowHosts() != nil {
		t.Errorf("default rules restrict hosts")
	}
}

func TestSideEffects(t *testing.T) {
	one, two := 1, 2
	tests := []struct {
		name   string
		se     store.SideEffect
		method string
		url    string
		status int
		want   bool
	}{
		{"glob spans slashes", store.SideEffect{Method: "POST", URL: "https://api.example.com/v1/messages*"}, "POST", "https://api.example.com/v1/messages/abc/send", 200, true},
		{"method differs", store.SideEffect{Method: "POST", URL: "https://api.example.com/*"}, "GET", "https://api.example.com/x", 200, false},
		{"method case", store.SideEffect{Method: "post", URL: "https://api.example.com/*"}, "POST", "https://api.example.com/x", 201, true},
		{"any method", store.SideEffect{Method: "*", URL: "https://api.example.com/*"}, "DELETE", "https://api.example.com/x", 204, true},
		{"default 2xx refuses 500", store.SideEffect{Method: "POST", URL: "https://api.example.com/*"}, "POST", "https://api.example.com/x", 500, false},
		{"class 4xx", store.SideEffect{Method: "POST", URL: "https://api.example.com/*", Status: "4xx"}, "POST", "https://api.example.com/x", 409, true},
		{"exact code", store.SideEffect{Method: "POST", URL: "https://api.example.com/*", Status: "201"}, "POST", "https://api.example.com/x", 200, false},
		{"default port in the request", store.SideEffect{Method: "POST", URL: "https://api.example.com/v1/*"}, "POST", "https://api.example.com:443/v1/x", 200, true},
		{"host case", store.SideEffect{Method: "POST", URL: "https://API.example.com/v1/*"}, "POST", "https://api.EXAMPLE.com/v1/x", 200, true},
		{"path case matters", store.SideEffect{Method: "POST", URL: "https://api.example.com/V1/*"}, "POST", "https://api.example.com/v1/x", 200, false},
		{"other port", store.SideEffect{Method: "POST", URL: "https://api.example.com/*"}, "POST", "https://api.example.com:8443/x", 200, false},
		{"any host", store.SideEffect{Method: "POST", URL: "*/v1/messages"}, "POST", "http://127.0.0.1:9999/v1/messages", 200, true},
		{"min and max", store.SideEffect{Method: "POST", URL: "https://a.test/*", Min: &one, Max: &two}, "POST", "https://a.test/x", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := CompileSideEffect(tt.se)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Matches(tt.method, tt.url, tt.status); got != tt.want {
				t.Errorf("Matches(%s %s %d) = %v, want %v", tt.method, tt.url, tt.status, got, tt.want)
			}
		})
	}
}

func TestSideEffectErrors(t *testing.T) {
	zero, one, three := 0, 1, 3
	tests := []struct {
		se     store.SideEffect
		errHas string
	}{
		{store.SideEffect{Method: "POST", URL: ""}, "url is empty"},
		{store.SideEffect{Method: "POST", URL: "api.example.com/x"}, "must start with http://"},
		{store.SideEffect{Method: "POST", URL: "ftp://x/y"}, "must start with http://"},
		{store.SideEffect{Method: "POST", URL: "https://x/a b"}, "spaces"},
		{store.SideEffect{Method: "PO ST", URL: "https://x/"}, "not an HTTP method"},
		{store.SideEffect{Method: "", URL: "https://x/"}, "not an HTTP method"},
		{store.SideEffect{Method: "POST", URL: "https://x/", Status: "2xy"}, "not a class"},
		{store.SideEffect{Method: "POST", URL: "https://x/", Status: "6xx"}, "not a class"},
		{store.SideEffect{Method: "POST", URL: "https://x/", Status: "99"}, "not a class"},
		{store.SideEffect{Method: "POST", URL: "https://x/", Min: &three, Max: &one}, "max 1 is below min 3"},
		{store.SideEffect{Method: "POST", URL: "https://x/", Min: &zero}, "checks nothing"},
	}
	for _, tt := range tests {
		_, err := CompileSideEffect(tt.se)
		if err == nil || !strings.Contains(err.Error(), tt.errHas) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v, want one line with %q", tt.se, err, tt.errHas)
		}
	}
	for _, s := range []string{"POST", "POST https://x/ extra", "", "POST x.test/y"} {
		if _, err := ParseSideEffect(s); err == nil {
			t.Errorf("ParseSideEffect(%q) accepted", s)
		}
	}
	se, err := ParseSideEffect("post https://api.example.com/v1/messages*")
	if err != nil || se.Method != "post" || *se.Min != 1 || *se.Max != 1 || se.Status != "2xx" {
		t.Errorf("ParseSideEffect: %+v %v", se, err)
	}
}
