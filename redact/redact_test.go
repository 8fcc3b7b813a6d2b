package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/internal/testeq"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// sample is one secret. A pattern sample (no header, no field) is placed
// inside ordinary text; a header sample is the value of that header; a
// field sample is the value of that query/form/JSON field.
type sample struct {
	name   string
	text   string // what is placed
	secret string // what must not survive anywhere ("" = text)
	kind   string // the marker kind expected (pattern samples)
	header string
	field  string
}

func (s sample) leak() string {
	if s.secret != "" {
		return s.secret
	}
	return s.text
}

const pemRSA = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END RSA PRIVATE KEY-----"
const pemPKCS8 = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----"
const pemOpenSSH = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----"

var samples = []sample{
	// value patterns
	{name: "openai", text: "sk-abcdefghijklmnopqrstuvwxyzABCDEF0123456789abcd", kind: "openai_key"},
	{name: "openai_proj", text: "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_AbCdEf", kind: "openai_key"},
	{name: "openai_testdata_key", text: "sk-test-0000", kind: "openai_key"},
	{name: "anthropic", text: "sk-ant-api03-Xy9zAbCdEfGhIjKlMnOpQrStUvWx-12345678AA", kind: "anthropic_key"},
	{name: "aws_akia", text: "AKIAIOSFODNN7EXAMPLE", kind: "aws_access_key"},
	{name: "aws_asia", text: "ASIAY34FZKBOKMUTVV7A", kind: "aws_access_key"},
	{name: "github_ghp", text: "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", kind: "github_token"},
	{name: "github_gho", text: "gho_16C7e42F292c6912E7710c838347Ae178B4a", kind: "github_token"},
	{name: "github_ghs", text: "ghs_zYxWvUtSrQpOnMlKjIhGfEdCbA9876543210", kind: "github_token"},
	{name: "github_ghu", text: "ghu_0123456789abcdefABCDEF0123456789abcd", kind: "github_token"},
	{name: "github_ghr", text: "ghr_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8", kind: "github_token"},
	{name: "github_pat", text: "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRS", kind: "github_token"},
	{name: "slack_bot", text: "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", kind: "slack_token"},
	{name: "slack_user", text: "xoxp-987654321098-9876543210987-ZyXwVuTsRqPoNmLkJiHgFeDc", kind: "slack_token"},
	{name: "google", text: "AIzaSyD-1234567890abcdefghijklmnopqrstu", kind: "google_api_key"},
	{name: "stripe_live", text: "sk_live_51H8abcdefghijklmnopqrstuVWXYZ", kind: "stripe_key"},
	{name: "stripe_restricted", text: "rk_live_51H8ZYXWVUTSRQPONMLKJIHgfedcba", kind: "stripe_key"},
	{name: "stripe_test", text: "sk_test_4eC39HqLyjWDarjtT1zdp7dc", kind: "stripe_key"},
	{name: "jwt", text: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", kind: "jwt"},
	{name: "pem_rsa", text: pemRSA, secret: "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu", kind: "private_key"},
	{name: "pem_pkcs8", text: pemPKCS8, secret: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", kind: "private_key"},
	{name: "pem_openssh", text: pemOpenSSH, secret: "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW", kind: "private_key"},
	{name: "bearer", text: "Bearer Zx81AbCd9-EfGh.IjKl_MnOp", secret: "Zx81AbCd9-EfGh.IjKl_MnOp", kind: "bearer"},
	{name: "basic", text: "Basic YWxpY2U6czNjcjN0UGFzcw==", secret: "YWxpY2U6czNjcjN0UGFzcw==", kind: "basic_auth"},
	{name: "url_password", text: "postgres://alice:S3cr3tPassw0rd@db.example.com:5432/app", secret: "S3cr3tPassw0rd", kind: "url_password"},
	{name: "url_in_text_query", text: "https://api.example.com/v1/items?limit=5&access_token=Qq7RtY2pLm9", secret: "Qq7RtY2pLm9", kind: "query"},

	// header names
	{name: "h_authorization", header: "Authorization", text: "Token hv-auth-Q7x9zPlain"},
	{name: "h_proxy_authorization", header: "Proxy-Authorization", text: "hv-proxyauth-Q7x9zPlain"},
	{name: "h_cookie", header: "Cookie", text: "session=hv-cookie-Q7x9zPlain; theme=dark"},
	{name: "h_set_cookie", header: "Set-Cookie", text: "sid=hv-setcookie-Q7x9zPlain; Path=/; HttpOnly"},
	{name: "h_x_api_key", header: "X-Api-Key", text: "hv-xapikey-Q7x9zPlain"},
	{name: "h_api_key", header: "Api-Key", text: "hv-apikey-Q7x9zPlain"},
	{name: "h_x_auth_token", header: "X-Auth-Token", text: "hv-xauthtoken-Q7x9zPlain"},
	{name: "h_contains_token", header: "X-Amz-Security-Token", text: "hv-amzsec-Q7x9zPlain"},
	{name: "h_contains_secret", header: "CF-Access-Client-Secret", text: "hv-cfsecret-Q7x9zPlain"},
	{name: "h_contains_password", header: "X-Db-Password", text: "hv-dbpass-Q7x9zPlain"},
	{name: "h_contains_api_key", header: "X-Goog-Api-Key", text: "hv-googapikey-Q7x9zPlain"},
	{name: "h_lower_case_name", header: "authorization", text: "hv-lowerauth-Q7x9zPlain"},

	// field names
	{name: "f_api_key", field: "api_key", text: "fv-apikey-Zq81Plain"},
	{name: "f_apikey", field: "apikey", text: "fv-apikey2-Zq81Plain"},
	{name: "f_key", field: "key", text: "fv-key-Zq81Plain"},
	{name: "f_token", field: "token", text: "fv-token-Zq81Plain"},
	{name: "f_access_token", field: "access_token", text: "fv-access-Zq81Plain"},
	{name: "f_refresh_token", field: "refresh_token", text: "fv-refresh-Zq81Plain"},
	{name: "f_id_token", field: "id_token", text: "fv-idtoken-Zq81Plain"},
	{name: "f_client_secret", field: "client_secret", text: "fv-clientsecret-Zq81Plain"},
	{name: "f_password", field: "password", text: "fv-password-Zq81Plain"},
	{name: "f_secret", field: "secret", text: "fv-secret-Zq81Plain"},
	{name: "f_sig", field: "sig", text: "fv-sig-Zq81Plain"},
	{name: "f_signature", field: "signature", text: "fv-signature-Zq81Plain"},
	{name: "f_upper_case", field: "PASSWORD", text: "fv-upper-Zq81Plain"},
	{name: "f_camel_case", field: "accessToken", text: "fv-camel-Zq81Plain"},
}

// placement builds an interaction carrying a sample.
type placement struct {
	name  string
	build func(s sample) *store.Interaction
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func baseInteraction() *store.Interaction {
	return &store.Interaction{
		Request: store.Request{
			Method: "POST",
			URL:    "https://api.example.com/v1/chat/completions",
			Header: http.Header{"User-Agent": {"agent/1.0"}},
		},
		Response: store.Response{Status: 200, Header: http.Header{"Date": {"Fri, 27 Nov 2026 02:00:03 GMT"}}},
	}
}

// sseEvents cuts body into two writes in the middle of needle.
func sseEvents(body, needle string) []store.Event {
	cut := len(body) / 2
	if k := strings.Index(body, needle); k >= 0 {
		cut = k + len(needle)/2
	}
	return []store.Event{{OffsetMs: 1, Data: []byte(body[:cut])}, {OffsetMs: 2, Data: []byte(body[cut:])}}
}

func streamed(in *store.Interaction, body, needle string) {
	in.Response.Header.Set("Content-Type", "text/event-stream")
	in.Response.Body = []byte(body)
	in.Response.Streamed = true
	in.Response.Events = sseEvents(body, needle)
}

var patternPlacements = []placement{
	{"request_header", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("X-Note", "see "+s.text+" ok")
		return in
	}},
	{"response_header", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Response.Header.Set("Location", "https://example.com/cb?state=1&note="+url.QueryEscape(s.text))
		in.Response.Header.Set("X-Debug", s.text)
		return in
	}},
	{"query", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.URL = "https://api.example.com/v1/search?q=cats&note=" + url.QueryEscape(s.text) + "&page=2"
		return in
	}},
	{"path", func(s sample) *store.Interaction {
		if strings.ContainsAny(s.text, " \n/") {
			return nil
		}
		in := baseInteraction()
		in.Request.URL = "https://api.example.com/v1/keys/" + s.text + "/usage"
		return in
	}},
	{"form", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		in.Request.Body = []byte("grant_type=client_credentials&note=" + url.QueryEscape(s.text) + "&scope=read")
		return in
	}},
	{"json_nested", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", "application/json")
		v := jsonStr(s.text)
		vin := jsonStr("see " + s.text + " here")
		in.Request.Body = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":` + vin + `}],"meta":{"list":[1,` + v + `,{"deep":[` + v + `,true]}],"z":null}}`)
		in.Response.Header.Set("Content-Type", "application/json; charset=utf-8")
		in.Response.Body = []byte(`{"id":"x","choices":[{"message":{"role":"assistant","content":` + vin + `}}],"usage":{"prompt_tokens":3}}`)
		return in
	}},
	{"json_tool_arguments", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Response.Header.Set("Content-Type", "application/json")
		args := `{"url":` + jsonStr(s.text) + `,"n":1}`
		in.Response.Body = []byte(`{"choices":[{"message":{"tool_calls":[{"function":{"name":"fetch","arguments":` + jsonStr(args) + `}}]}}]}`)
		return in
	}},
	{"sse", func(s sample) *store.Interaction {
		in := baseInteraction()
		body := "id: 1\n" + `data: {"choices":[{"delta":{"content":` + jsonStr("x "+s.text+" y") + `}}]}` + "\n\n" + "data: [DONE]\n\n"
		streamed(in, body, s.leak())
		return in
	}},
	{"text", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Response.Header.Set("Content-Type", "text/plain; charset=utf-8")
		in.Response.Body = []byte("log line one\nthe value is " + s.text + "\nend\n")
		return in
	}},
	{"multipart", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", `multipart/form-data; boundary=XyZb0undary`)
		in.Request.Body = []byte("--XyZb0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n" + s.text +
			"\r\n--XyZb0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\xff\xfe\x00\x01\r\n--XyZb0undary--\r\n")
		return in
	}},
}

var fieldPlacements = []placement{
	{"query", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.URL = "https://api.example.com/v1/search?q=cats&" + s.field + "=" + url.QueryEscape(s.text) + "&page=2"
		return in
	}},
	{"fragment", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.URL = "https://app.example.com/callback#state=1&" + s.field + "=" + url.QueryEscape(s.text)
		return in
	}},
	{"form", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		in.Request.Body = []byte("grant_type=password&" + s.field + "=" + url.QueryEscape(s.text) + "&scope=read")
		return in
	}},
	{"form_sniffed", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Body = []byte("a=1&" + s.field + "=" + url.QueryEscape(s.text))
		return in
	}},
	{"json_nested_arrays", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", "application/json")
		v := jsonStr(s.text)
		in.Request.Body = []byte(`{"outer":{"items":[{"id":1,` + jsonStr(s.field) + `:` + v + `},{` + jsonStr(s.field) + `:[` + v + `,42,[` + v + `]]}],"after":"kept"}}`)
		in.Response.Header.Set("Content-Type", "application/json")
		in.Response.Body = []byte(`[{"data":{` + jsonStr(s.field) + ` : ` + v + `}}]`)
		return in
	}},
	{"json_in_string", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", "application/json")
		args := `{` + jsonStr(s.field) + `:` + jsonStr(s.text) + `}`
		in.Request.Body = []byte(`{"tool_calls":[{"function":{"name":"login","arguments":` + jsonStr(args) + `}}]}`)
		return in
	}},
	{"sse", func(s sample) *store.Interaction {
		in := baseInteraction()
		body := `data: {"delta":{` + jsonStr(s.field) + `:` + jsonStr(s.text) + `}}` + "\n\n"
		streamed(in, body, s.text)
		return in
	}},
	{"multipart", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header.Set("Content-Type", `multipart/form-data; boundary=B0und`)
		in.Request.Body = []byte("--B0und\r\nContent-Disposition: form-data; name=\"" + s.field + "\"\r\n\r\n" + s.text + "\r\n--B0und--\r\n")
		return in
	}},
}

var headerPlacements = []placement{
	{"request", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Request.Header[s.header] = []string{s.text}
		return in
	}},
	{"response", func(s sample) *store.Interaction {
		in := baseInteraction()
		in.Response.Header[s.header] = []string{s.text, s.text + "-second"}
		return in
	}},
}

func placementsFor(s sample) []placement {
	switch {
	case s.header != "":
		return headerPlacements
	case s.field != "":
		return fieldPlacements
	}
	return patternPlacements
}

// haystack is everything of an interaction that could hold a secret: its
// JSON, its raw bodies and events, and the percent-decoded URL and bodies.
func haystack(t *testing.T, in *store.Interaction) string {
	t.Helper()
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(js)
	add := func(s string) {
		b.WriteString("\n")
		b.WriteString(s)
		if d, err := url.QueryUnescape(s); err == nil {
			b.WriteString("\n")
			b.WriteString(d)
		}
	}
	add(in.Request.URL)
	add(string(in.Request.Body))
	add(string(in.Response.Body))
	for _, h := range []http.Header{in.Request.Header, in.Response.Header} {
		for _, vs := range h {
			for _, v := range vs {
				add(v)
			}
		}
	}
	for _, ev := range in.Response.Events {
		add(string(ev.Data))
	}
	return b.String()
}

func mustNew(t testing.TB, cfg Config) *Redactor {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var fpMarkerRE = regexp.MustCompile(`\[REDACTED:[a-z0-9_]+:[0-9a-f]{8}\]|%5BREDACTED%3A[a-z0-9_]+%3A[0-9a-f]{8}%5D`)

func TestSamplesNeverSurvive(t *testing.T) {
	if len(samples) < 25 {
		t.Fatalf("only %d samples", len(samples))
	}
	redactors := map[string]*Redactor{
		"plain":       mustNew(t, Config{}),
		"fingerprint": mustNew(t, Config{Secret: []byte("per-store-key")}),
	}
	for rname, r := range redactors {
		for _, s := range samples {
			for _, p := range placementsFor(s) {
				t.Run(rname+"/"+s.name+"/"+p.name, func(t *testing.T) {
					in := p.build(s)
					if in == nil {
						t.Skip("sample does not fit here")
					}
					before := haystack(t, in)
					if !strings.Contains(before, s.leak()) {
						t.Fatalf("test bug: sample not placed: %s", before)
					}
					r.Interaction(in)
					after := haystack(t, in)
					if strings.Contains(after, s.leak()) {
						t.Fatalf("secret survived:\n%s", after)
					}
					if s.kind != "" && !strings.Contains(after, "[REDACTED:"+s.kind) && !strings.Contains(after, "%5BREDACTED%3A"+s.kind) {
						t.Errorf("no [REDACTED:%s] marker:\n%s", s.kind, after)
					}
					checkJSONBodies(t, in)
					checkStream(t, in)
					if _, err := url.Parse(in.Request.URL); err != nil {
						t.Errorf("URL no longer parses: %v", err)
					}
					// Idempotent: a second pass changes nothing.
					js1, _ := json.Marshal(in)
					r.Interaction(in)
					js2, _ := json.Marshal(in)
					if !bytes.Equal(js1, js2) {
						t.Errorf("second pass changed the interaction:\n%s\n%s", js1, js2)
					}
					// Request scrubs the same way, without fingerprints.
					req := p.build(s).Request
					r.Request(&req)
					rh := haystack(t, &store.Interaction{Request: req})
					if strings.Contains(rh, s.leak()) {
						t.Errorf("Request left the secret:\n%s", rh)
					}
					if fpMarkerRE.MatchString(rh) {
						t.Errorf("Request wrote a fingerprint:\n%s", rh)
					}
				})
			}
		}
	}
}

func checkJSONBodies(t *testing.T, in *store.Interaction) {
	t.Helper()
	for _, m := range []struct {
		h    http.Header
		body []byte
	}{{in.Request.Header, in.Request.Body}, {in.Response.Header, in.Response.Body}} {
		if strings.Contains(m.h.Get("Content-Type"), "json") && !json.Valid(m.body) {
			t.Errorf("JSON body no longer valid: %s", m.body)
		}
	}
	// SSE data lines that carry JSON stay JSON.
	if in.Response.Header.Get("Content-Type") == "text/event-stream" {
		for _, line := range strings.Split(string(in.Response.Body), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.HasPrefix(d, "{") && !json.Valid([]byte(d)) {
				t.Errorf("SSE data line no longer JSON: %s", d)
			}
		}
	}
}

func checkStream(t *testing.T, in *store.Interaction) {
	t.Helper()
	if !in.Response.Streamed {
		return
	}
	var joined []byte
	for _, ev := range in.Response.Events {
		joined = append(joined, ev.Data...)
	}
	if !bytes.Equal(joined, in.Response.Body) {
		t.Errorf("Body is not the concatenation of Events:\n%q\n%q", in.Response.Body, joined)
	}
}

func TestJSONBytesAndKeyOrderKept(t *testing.T) {
	r := mustNew(t, Config{Secret: []byte("k")})
	in := []byte(`{ "zeta": 1,  "password" : "hunter2x",
  "alpha": {"token": 12345, "b": [ "sk-abcdefgh12345678", 2.5e3 ], "c": "caf\u00e9 \"q\" \/"},
  "key": {"type": "string", "description": "JSON Schema property named key"},
  "arr": ["keep", {"api_key": ["one", "two", ["three"]], "n": null}],
  "aa": "x" }`)
	out := r.body(append([]byte(nil), in...), "application/json", true)
	if !json.Valid(out) {
		t.Fatalf("invalid: %s", out)
	}
	// Outside the redacted values every byte is as it was.
	re := regexp.MustCompile(`\[REDACTED:[a-z_]+:[0-9a-f]{8}\]`)
	got := re.ReplaceAllString(string(out), "#")
	want := `{ "zeta": 1,  "password" : "#",
  "alpha": {"token": "#", "b": [ "#", 2.5e3 ], "c": "caf\u00e9 \"q\" \/"},
  "key": {"type": "string", "description": "JSON Schema property named key"},
  "arr": ["keep", {"api_key": ["#", "#", ["#"]], "n": null}],
  "aa": "x" }`
	if got != want {
		t.Errorf("bytes changed outside redacted values:\n got %s\nwant %s", got, want)
	}
	var order []string
	for _, m := range regexp.MustCompile(`"([a-z_]+)"\s*:`).FindAllStringSubmatch(string(out), -1) {
		order = append(order, m[1])
	}
	if strings.Join(order, ",") != "zeta,password,alpha,token,b,c,key,type,description,arr,api_key,n,aa" {
		t.Errorf("key order: %v", order)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if s, _ := v["alpha"].(map[string]any)["token"].(string); !strings.HasPrefix(s, "[REDACTED:field:") {
		t.Errorf("numeric secret became %v", v["alpha"])
	}
}

func TestFingerprints(t *testing.T) {
	r := mustNew(t, Config{Secret: []byte("per-store-key")})
	r2 := mustNew(t, Config{Secret: []byte("another-store")})
	keyA := "sk-proj-AAAAaaaa1111bbbbCCCC2222dddd"
	keyB := "sk-proj-BBBBaaaa1111bbbbCCCC2222dddd"
	mark := func(r *Redactor, s string) string {
		return fpMarkerRE.FindString(r.String(s))
	}
	a1, a2, b := mark(r, "key "+keyA), mark(r, keyA+" again"), mark(r, keyB)
	if a1 == "" || b == "" {
		t.Fatalf("no fingerprinted marker: %q %q", a1, b)
	}
	if a1 != a2 {
		t.Errorf("same secret, different marks: %s %s", a1, a2)
	}
	if a1 == b {
		t.Errorf("different secrets, same mark: %s", a1)
	}
	if a1 == mark(r2, keyA) {
		t.Errorf("fingerprint does not depend on the store key")
	}
	// The same key in a header and in a body carries the same mark.
	in := baseInteraction()
	in.Request.Header.Set("Authorization", "Bearer "+keyA)
	in.Request.Header.Set("Content-Type", "application/json")
	in.Request.Body = []byte(`{"api_key":"` + keyA + `","other":"` + keyB + `"}`)
	r.Interaction(in)
	hfp := fpMarkerRE.FindString(in.Request.Header.Get("Authorization"))
	bfps := fpMarkerRE.FindAllString(string(in.Request.Body), -1)
	if len(bfps) != 2 || hfp[len(hfp)-9:] != bfps[0][len(bfps[0])-9:] || bfps[0][len(bfps[0])-9:] == bfps[1][len(bfps[1])-9:] {
		t.Errorf("header %s, body %v", hfp, bfps)
	}
	// No secret: no fingerprint.
	if fpMarkerRE.MatchString(mustNew(t, Config{}).String(keyA)) {
		t.Error("fingerprint without a secret")
	}
	// Request never fingerprints.
	req := store.Request{URL: "https://x.example/?api_key=" + keyA}
	r.Request(&req)
	if req.URL != "https://x.example/?api_key=[REDACTED:query]" {
		t.Errorf("Request URL %s", req.URL)
	}
}

func TestAllowListKeepsField(t *testing.T) {
	cfg, err := ParseConfig([]byte("rules: []\nredact:\n  allow: [key, X-Api-Key]\n"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := mustNew(t, cfg)
	def := mustNew(t, Config{})
	mk := func() *store.Interaction {
		in := baseInteraction()
		in.Request.URL = "https://maps.example.com/geo?key=plainvalue1&token=tv1"
		in.Request.Header.Set("X-Api-Key", "hv-plain-2")
		in.Request.Header.Set("Content-Type", "application/json")
		in.Request.Body = []byte(`{"key":"plainvalue3","token":"tv3","kv":[{"key":"plainvalue4"}]}`)
		return in
	}
	in := mk()
	allowed.Interaction(in)
	h := haystack(t, in)
	for _, kept := range []string{"plainvalue1", "hv-plain-2", "plainvalue3", "plainvalue4"} {
		if !strings.Contains(h, kept) {
			t.Errorf("allow-listed %s was redacted:\n%s", kept, h)
		}
	}
	for _, gone := range []string{"tv1", "tv3"} {
		if strings.Contains(h, gone) {
			t.Errorf("%s survived", gone)
		}
	}
	in = mk()
	def.Interaction(in)
	h = haystack(t, in)
	for _, gone := range []string{"plainvalue1", "hv-plain-2", "plainvalue3", "plainvalue4"} {
		if strings.Contains(h, gone) {
			t.Errorf("defaults kept %s", gone)
		}
	}
	// The allow-list keeps a name, not a real key under it.
	if got := allowed.String(`{"key": "AIzaSyD-1234567890abcdefghijklmnopqrstu"}`); strings.Contains(got, "AIza") {
		t.Errorf("pattern skipped under an allowed name: %s", got)
	}
}

func TestUserRules(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
rules:
  - match: {host: example.com}
redact:
  headers: [X-Internal-Auth]
  fields: [ssn, card_number]
  json_paths: ["$.customer.email", "$.orders[*].note", "$..pin", "$.blob"]
  patterns: ["acct-[0-9]{8}", "session=([a-f0-9]{6,})"]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := mustNew(t, cfg)
	in := baseInteraction()
	in.Request.Header.Set("X-Internal-Auth", "internal-credential-1")
	in.Request.Header.Set("X-Trace", "acct-12345678 session=deadbeef00")
	in.Request.Header.Set("Content-Type", "application/json")
	in.Request.URL = "https://api.example.com/v1/pay?card_number=4111111111111111&ok=1"
	in.Request.Body = []byte(`{"customer":{"email":"alice@example.com","ssn":"123-45-6789","cardNumber":"4242424242424242"},` +
		`"other":{"email":"bob@example.com"},"orders":[{"note":"leave at door","id":7},{"note":"ring twice"}],` +
		`"deep":{"x":[{"pin":1234}]},"blob":{"a":[1,2,{"b":"c"}]},"memo":"acct-87654321 ok"}`)
	r.Interaction(in)
	h := haystack(t, in)
	for _, gone := range []string{"internal-credential-1", "acct-12345678", "deadbeef00", "4111111111111111", "alice@example.com", "123-45-6789", "4242424242424242", "leave at door", "ring twice", "1234", `"b":"c"`, "acct-87654321"} {
		if strings.Contains(h, gone) {
			t.Errorf("%q survived:\n%s", gone, h)
		}
	}
	for _, kept := range []string{"bob@example.com", `"id":7`, "session=", "ok=1", "[REDACTED:pattern]", "[REDACTED:field]"} {
		if !strings.Contains(h, kept) {
			t.Errorf("%q missing:\n%s", kept, h)
		}
	}
	if !json.Valid(in.Request.Body) {
		t.Errorf("invalid JSON: %s", in.Request.Body)
	}
}

func TestStreamEventsStayConsistent(t *testing.T) {
	r := mustNew(t, Config{Secret: []byte("k")})
	key := "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	body := `data: {"delta":{"content":"here ` + key + ` there"}}` + "\n\n" + `data: {"delta":{"password":"pw-1234567"}}` + "\n\n" + "data: [DONE]\n\n"
	for cut := 1; cut < len(body); cut += 7 {
		// three writes, the first boundary walking through the body
		c2 := cut + (len(body)-cut)/2
		in := baseInteraction()
		in.Response.Header.Set("Content-Type", "text/event-stream")
		in.Response.Streamed = true
		in.Response.Body = []byte(body)
		in.Response.Events = []store.Event{{Data: []byte(body[:cut])}, {Data: []byte(body[cut:c2])}, {Data: []byte(body[c2:])}}
		r.Interaction(in)
		checkStream(t, in)
		for _, ev := range in.Response.Events {
			if bytes.Contains(ev.Data, []byte(key[8:20])) || bytes.Contains(ev.Data, []byte("pw-1234567")) {
				t.Fatalf("cut %d: secret in event %q", cut, ev.Data)
			}
		}
		if c2 >= strings.Index(body, "pw-1234567")+10 && string(in.Response.Events[2].Data) != body[c2:] {
			t.Fatalf("cut %d: last event %q", cut, in.Response.Events[2].Data)
		}
	}
	// Events without a body: events still scrubbed, body left empty.
	in := baseInteraction()
	in.Response.Header.Set("Content-Type", "text/event-stream")
	in.Response.Streamed = true
	in.Response.Events = sseEvents("data: "+key+"\n\n", key)
	r.Interaction(in)
	if len(in.Response.Body) != 0 || strings.Contains(haystack(t, in), key) {
		t.Errorf("%+v", in.Response)
	}
}

func TestBinaryBodyLeftAlone(t *testing.T) {
	r := mustNew(t, Config{})
	body := []byte("\xff\xd8\xff\xe0 sk-abcdefgh12345678 password=hunter2 \x00\x01")
	in := baseInteraction()
	in.Response.Header.Set("Content-Type", "application/octet-stream")
	in.Response.Body = append([]byte(nil), body...)
	in.Request.Header.Set("Content-Type", "application/json")
	in.Request.Body = append([]byte(nil), body...)
	r.Interaction(in)
	if !bytes.Equal(in.Response.Body, body) || !bytes.Equal(in.Request.Body, body) {
		t.Errorf("binary body changed: %q %q", in.Response.Body, in.Request.Body)
	}
}

// falsePositiveTexts look like secrets to a careless eye and must come out
// unchanged (also part of the equivalence corpus, EquivTexts).
var falsePositiveTexts = []string{
	"pip install scikit-learn; import sk-learn",
	"risk-assessment-2024 and task-12345678 desk-00000001",
	"Bearer authentication is described in RFC 6750",
	"basic usage: run it",
	"The AKIA prefix marks AWS keys; AKIA123 is too short",
	"eyJ alone, or eyJhbGciOiJIUzI1NiJ9 without dots",
	"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
	`{"max_tokens":100,"usage":{"prompt_tokens":5,"completion_tokens":7},"keywords":["key","token"]}`,
	`{"type":"object","properties":{"token":{"type":"string","description":"The token"}},"required":["token"]}`,
	"https://example.com/a/b?q=1&monkey=2&tokens=3#top",
	"mailto:alice@example.com, http://example.com:8080/x",
	"a=b&c=d",
	"ghp_short xoxb-short sk_live_short",
}

func TestNoFalsePositives(t *testing.T) {
	r := mustNew(t, Config{Secret: []byte("k")})
	for _, s := range falsePositiveTexts {
		if got := r.String(s); got != s {
			t.Errorf("changed:\n%s\n%s", s, got)
		}
		b := []byte(s)
		if got := r.body(b, "", true); !bytes.Equal(got, b) {
			t.Errorf("body changed:\n%s\n%s", s, got)
		}
	}
	h := http.Header{
		"X-Ratelimit-Remaining-Tokens":     {"149984"},
		"Anthropic-Ratelimit-Tokens-Limit": {"400000"},
		"Mcp-Session-Id":                   {"abb894c3-1111-4222-8333-944455556666"},
		"Content-Type":                     {"application/json"},
	}
	want := h.Clone()
	r.scrubHeader(h, true, false)
	for k := range want {
		if h.Get(k) != want.Get(k) {
			t.Errorf("%s: %q", k, h.Get(k))
		}
	}
}

func TestURLs(t *testing.T) {
	r := mustNew(t, Config{})
	for in, want := range map[string]string{
		"https://alice:hunter2@db.example.com:5432/app?sslmode=require":   "https://alice:%5BREDACTED%3Aurl_password%5D@db.example.com:5432/app?sslmode=require",
		"https://x.example/v1/keys/sk-abcdefgh12345678/usage?ok=1":        "https://x.example/v1/keys/[REDACTED:openai_key]/usage?ok=1",
		"https://x.example/cb#access_token=abc.def&state=1":               "https://x.example/cb#access_token=[REDACTED:query]&state=1",
		"https://x.example/?Signature=abc%2Bdef&X-Amz-Signature=00ff&a=b": "https://x.example/?Signature=[REDACTED:query]&X-Amz-Signature=[REDACTED:query]&a=b",
		"https://x.example/?q=" + url.QueryEscape("Bearer abcdefgh12345"): "https://x.example/?q=Bearer+[REDACTED:bearer]",
		"/v1/chat?apikey=xyz":       "/v1/chat?apikey=[REDACTED:query]",
		"https://u:p@ss@h.example/": "https://u:%5BREDACTED%3Aurl_password%5D@h.example/",
		"https://ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@github.com/o/r.git": "https://%5BREDACTED%3Agithub_token%5D@github.com/o/r.git",
		"https://eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc:pw1@h.example/":     "https://%5BREDACTED%3Ajwt%5D:%5BREDACTED%3Aurl_password%5D@h.example/",
		"https://x.example/?user[password]=pw1":                               "https://x.example/?user[password]=[REDACTED:query]",
	} {
		got := r.String(in)
		if got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Errorf("%s does not parse: %v", got, err)
			continue
		}
		if strings.Contains(in, "alice") && u.User.Username() != "alice" {
			t.Errorf("user name lost: %s", got)
		}
		if r.String(got) != got {
			t.Errorf("not idempotent: %s -> %s", got, r.String(got))
		}
	}
}

// TestCapturedTraffic runs the captured traffic through Interaction: the
// test key goes, and nothing else changes.
func TestCapturedTraffic(t *testing.T) {
	r := mustNew(t, Config{Secret: []byte("k")})
	files, _ := filepath.Glob("../testdata/traffic/*.json") // shared captures, one copy in the repo
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		ins := loadTraffic(t, f)
		for i, in := range ins {
			orig, _ := json.Marshal(in)
			r.Interaction(in)
			h := haystack(t, in)
			if strings.Contains(h, "sk-test-0000") {
				t.Errorf("%s #%d: test key survived", f, i)
			}
			checkStream(t, in)
			// Only the Authorization header may change.
			var o store.Interaction
			json.Unmarshal(orig, &o)
			if a := o.Request.Header.Get("Authorization"); a != "" {
				if got := in.Request.Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer [REDACTED:bearer:") {
					t.Errorf("%s #%d: Authorization %q", f, i, got)
				}
				o.Request.Header.Set("Authorization", in.Request.Header.Get("Authorization"))
			}
			o2, _ := json.Marshal(&o)
			now, _ := json.Marshal(in)
			if !bytes.Equal(o2, now) {
				t.Errorf("%s #%d: clean traffic changed:\n%s\n%s", f, i, o2, now)
			}
		}
	}
}

// loadTraffic reads a capture of testdata/traffic into interactions.
func loadTraffic(t testing.TB, path string) []*store.Interaction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Exchanges []struct {
			Request struct {
				Method, URL, Body string
				Headers           [][2]string
			}
			Response struct {
				Status  int
				Headers [][2]string
				Body    string
				Chunks  *[]struct {
					AtMs int64 `json:"at_ms"`
					Data string
				}
			}
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []*store.Interaction
	for _, ex := range doc.Exchanges {
		in := &store.Interaction{Request: store.Request{Method: ex.Request.Method, URL: ex.Request.URL, Header: http.Header{}, Body: []byte(ex.Request.Body)},
			Response: store.Response{Status: ex.Response.Status, Header: http.Header{}, Body: []byte(ex.Response.Body)}}
		for _, h := range ex.Request.Headers {
			in.Request.Header.Add(h[0], h[1])
		}
		for _, h := range ex.Response.Headers {
			in.Response.Header.Add(h[0], h[1])
		}
		if ex.Response.Chunks != nil {
			in.Response.Streamed = true
			for _, c := range *ex.Response.Chunks {
				in.Response.Events = append(in.Response.Events, store.Event{OffsetMs: c.AtMs, Data: []byte(c.Data)})
			}
		}
		out = append(out, in)
	}
	return out
}

func TestQuotedFieldInText(t *testing.T) {
	r := mustNew(t, Config{})
	for in, want := range map[string]string{
		`log: {"password": "hunter2", "user": "bob"}`:                                                    `log: {"password": "[REDACTED:field]", "user": "bob"}`,
		`{"pin":1, "secret": 12345}`:                                                                     `{"pin":1, "secret": "[REDACTED:field]"}`,
		`{"token": "cut off at the end`:                                                                  `{"token": "[REDACTED:field]`,
		`"{\"api_key\":\"k1\\\"x\",\"n\":2}"`:                                                            `"{\"api_key\":\"[REDACTED:field]\",\"n\":2}"`,
		`"{\"args\":\"{\\\"token\\\":\\\"deep1\\\"}\"}"`:                                                 `"{\"args\":\"{\\\"token\\\":\\\"[REDACTED:field]\\\"}\"}"`,
		`curl -H "Authorization: Bearer abcdefgh12345678" u`:                                             `curl -H "Authorization: Bearer [REDACTED:bearer]" u`,
		"level=info token=abc123 msg=ok":                                                                 "level=info token=[REDACTED:query] msg=ok",
		`"see https:\/\/x.io\/?a=1\u0026token=zz9 now"`:                                                  `"see https:\/\/x.io\/?a=1\u0026token=[REDACTED:query] now"`,
		`"line\nsk-abcdefgh12345678"`:                                                                    `"line\n[REDACTED:openai_key]"`,
		`"db":"mysql:\/\/root:toor99@10.0.0.1\/x"`:                                                       `"db":"mysql:\/\/root:%5BREDACTED%3Aurl_password%5D@10.0.0.1\/x"`,
		"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk\n":                                     "[REDACTED:private_key]",
		`curl -H "Authorization: Token abc123xyz" -H 'X-Api-Key: k-1234567' https://x`:                   `curl -H "Authorization: Token [REDACTED:header]" -H 'X-Api-Key: [REDACTED:header]' https://x`,
		"db:\n  password: hunter2\n  user: bob\nmax_tokens: 100\npassword: required\nCookie: a=1; b=2\n": "db:\n  password: [REDACTED:field]\n  user: bob\nmax_tokens: 100\npassword: required\nCookie: [REDACTED:header]\n",
		`"{\"headers\":[\"Cookie: sid=abc; t=1\"]}"`:                                                     `"{\"headers\":[\"Cookie: [REDACTED:header]\"]}"`,
		"`password=hunter2` and (token=abc123)":                                                          "`password=[REDACTED:query]` and (token=[REDACTED:query])",
		"clone https://u:p@ss@h.example/ and mail a@b.example":                                           "clone https://u:%5BREDACTED%3Aurl_password%5D@h.example/ and mail a@b.example",
		"see https://eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc:pw1@h.example/":                            "see https://[REDACTED:jwt]:%5BREDACTED%3Aurl_password%5D@h.example/",
	} {
		if got := r.String(in); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}

// BenchmarkPathologicalInputs feeds adversarial repetitions at 32 KB and
// 128 KB: MB/s must stay flat between the two sizes (linear cost). Speed is
// measured here, not asserted in a test.
func BenchmarkPathologicalInputs(b *testing.B) {
	r, err := New(Config{Patterns: []string{"acct-[0-9]{8}"}, JSONPaths: []string{"$..a"}})
	if err != nil {
		b.Fatal(err)
	}
	kinds := map[string]string{
		"pem_headers":   "-----BEGIN PRIVATE KEY-----",
		"pem_cut":       "-----BEGIN PRIVATE KEY-----\nMIIB",
		"backslashes":   `\\\\\\\\"`,
		"quoted_fields": `"password": "`,
		"escaped_field": `\"token\":\"`,
		"userinfo":      "://a:b",
		"query":         "&token=",
		"nesting":       "[[[[]]]]",
		"objects":       `{"a":{"a":[`,
		"bearer":        "Bearer ",
		"sk":            "sk-sk-",
		"jwt":           "eyJ.",
		"prefix":        "acct-acct-",
		"strings":       `"a`,
		// The second layer: literals after a run (walked back from),
		// percent-encoded text decoded, gated rules, per-value rules.
		"jwt_lead":    "eyAAAAAAAAAAAAAAAAAAAA.",
		"telegram":    "12345:A",
		"percent":     "%25",
		"curl":        "curl -H ",
		"url":         "https://",
		"pairs":       "a=b&",
		"slack":       "hooks.slack.com/services/",
		"sourcegraph": "sourcegraph 0123456789abcdef0123456789abcdef01234567 ",
	}
	for name, unit := range kinds {
		for _, size := range []int{32 << 10, 128 << 10} {
			in := bytes.Repeat([]byte(unit), size/len(unit))
			for _, ct := range []string{"application/json", "text/plain", "text/event-stream", "application/x-www-form-urlencoded", ""} {
				b.Run(fmt.Sprintf("%s/%dKB/%s", name, size>>10, strings.ReplaceAll(ct, "/", "_")), func(b *testing.B) {
					b.SetBytes(int64(len(in)))
					for i := 0; i < b.N; i++ {
						if ct == "" {
							r.String(string(in))
						} else {
							r.body(in, ct, false)
						}
					}
				})
			}
		}
	}
}

// Redaction never writes into the slices it was given: the proxy may still
// forward the same body and header values.
func TestInputsNotModified(t *testing.T) {
	r := mustNew(t, Config{Secret: []byte("k")})
	body := []byte(`{"password":"hunter2","x":"sk-abcdefgh12345678"}`)
	orig := append([]byte(nil), body...)
	shared := []string{"Bearer sk-abcdefgh12345678"}
	ev := []byte("data: sk-abcdefgh12345678\n\n")
	in := baseInteraction()
	in.Request.Body = body
	in.Request.Header["Authorization"] = shared
	in.Response.Header.Set("Content-Type", "text/event-stream")
	in.Response.Streamed = true
	in.Response.Body = ev
	in.Response.Events = []store.Event{{Data: ev}}
	r.Interaction(in)
	if !bytes.Equal(body, orig) || shared[0] != "Bearer sk-abcdefgh12345678" || string(ev) != "data: sk-abcdefgh12345678\n\n" {
		t.Errorf("input modified: %s %v %s", body, shared, ev)
	}
	if bytes.Contains(in.Request.Body, []byte("hunter2")) || strings.Contains(in.Request.Header.Get("Authorization"), "sk-") ||
		bytes.Contains(in.Response.Events[0].Data, []byte("sk-")) {
		t.Errorf("not redacted: %s", haystack(t, in))
	}
}

// TestRequestShared: RequestShared scrubs like Request but never writes the
// header map it was given: a header with a secret becomes a scrubbed copy,
// a clean one stays the same map.
func TestRequestShared(t *testing.T) {
	r := mustNew(t, Config{})
	for _, tc := range []struct {
		name   string
		header http.Header
		copied bool
	}{
		{"clean", http.Header{"Accept": {"*/*"}, "User-Agent": {"agent/1"}}, false},
		{"bearer", http.Header{"Accept": {"*/*"}, "Authorization": {"Bearer sk-abcdefgh12345678"}, "User-Agent": {"agent/1"}}, true},
		{"secret in a URL value", http.Header{"Referer": {"https://x.example/?api_key=abcdef123456"}}, true},
		{"several", http.Header{"X-Api-Key": {"k-123456789"}, "Cookie": {"session=abcdef0123456789"}, "A": {"1"}, "B": {"2"}}, true},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := tc.header.Clone()
			before := live.Clone()
			shared := store.Request{Method: "GET", URL: "https://x.example/v1", Header: live}
			r.RequestShared(&shared)
			inPlace := store.Request{Method: "GET", URL: "https://x.example/v1", Header: tc.header.Clone()}
			r.Request(&inPlace)
			if !testeq.Header(live, before) {
				t.Errorf("the shared map was written: %v, was %v", live, before)
			}
			if !testeq.Header(shared.Header, inPlace.Header) {
				t.Errorf("scrubbed %v, Request gives %v", shared.Header, inPlace.Header)
			}
			same := live == nil && shared.Header == nil || testeq.SameHeaderMap(shared.Header, live)
			if same == tc.copied {
				t.Errorf("header copied: %v, want %v", !same, tc.copied)
			}
		})
	}
}
