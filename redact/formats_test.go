package redact_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// format is one credential format and how it shows in traffic: a token
// recognizable by its own shape (field "note", a name that says nothing),
// or a value recognizable by the name it is given.
type format struct {
	name   string
	field  string // the name it travels under; "note" for a token
	secret string
}

func (f format) token() bool { return f.field == "note" }

// formats: the common formats that once passed the redactor untouched.
var formats = []format{
	{"huggingface", "note", "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"},
	{"sendgrid", "note", "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"},
	{"npm", "note", "npm_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5"},
	{"gitlab", "note", "glpat-Ab3De5Gh7Jk9Mn1Pq3St"},
	{"google-oauth", "note", "ya29.a0AfH6SMBx3kQp9TzR7vWn2Lc5Yh8Jd1Fg4"},
	{"telegram-bot", "note", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"},
	{"azure-storage", "AccountKey", "Zk9Pq2Lm5Nx8Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5Qr8=="},
	{"aws-secret", "aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Rt1Vw4"},
	{"aws-secret-xml", "SecretAccessKey", "kP9x2Lm5Nx8Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5Qr"},
	{"aws-session", "SessionToken", "FwoGZXIvYXdzEBYaDHk3Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5"},
	{"passwd", "passwd", "Hunter2Hunter2"},
	{"pwd", "pwd", "Hunter2Hunter3"},
	{"private-key", "private_key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj"},
	{"private-key-id", "private_key_id", "3f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"},
	{"npmrc", "_authToken", "5d7f0a1e-3b2c-4d6e-8f9a-0b1c2d3e4f5a"},
	{"apim", "Ocp-Apim-Subscription-Key", "0123456789abcdef0123456789abcdef"},
	{"adafruit", "adafruit_key", "aio_Xb4c7d1e9f2a5b8c3d6e0f1a4b7c2d5e8"},
}

// canary is ordinary text placed beside every secret: it must survive, so
// a redactor that scrubs everything does not pass.
const canary = "keep-this-visible"

// position is one place a secret travels: it runs the redactor and
// returns everything it would store.
type position struct {
	name   string
	tokens bool // only for formats recognizable without their name
	run    func(r *redact.Redactor, f format) string
}

var positions = []position{
	{"header-named", false, func(r *redact.Redactor, f format) string {
		req := store.Request{Method: "GET", URL: "https://api.example.com/", Header: http.Header{
			http.CanonicalHeaderKey("X-" + strings.TrimLeft(f.field, "_")): {f.secret},
			http.CanonicalHeaderKey(f.field):                               {f.secret},
			"X-Canary":                                                     {canary}}}
		r.Request(&req)
		return dump(req.Header)
	}},
	{"header-prose", true, func(r *redact.Redactor, f format) string {
		req := store.Request{Method: "GET", URL: "https://api.example.com/", Header: http.Header{"X-Note": {canary + " token " + f.secret}}}
		r.Request(&req)
		return dump(req.Header)
	}},
	{"query", false, func(r *redact.Redactor, f format) string {
		req := store.Request{Method: "GET", URL: "https://api.example.com/v1?" + url.Values{f.field: {f.secret}, "c": {canary}}.Encode()}
		r.Request(&req)
		return req.URL
	}},
	{"path", true, func(r *redact.Redactor, f format) string {
		req := store.Request{Method: "GET", URL: "https://api.example.com/" + canary + "/" + f.secret + "/x"}
		r.Request(&req)
		return req.URL
	}},
	{"json", false, func(r *redact.Redactor, f format) string {
		return body(r, "application/json", `{"`+f.field+`": "`+f.secret+`", "c": "`+canary+`"}`)
	}},
	{"json-in-json", false, func(r *redact.Redactor, f format) string {
		inner, _ := json.Marshal(map[string]string{f.field: f.secret, "c": canary})
		outer, _ := json.Marshal(map[string]any{"tool_calls": []any{map[string]string{"arguments": string(inner)}}})
		return body(r, "application/json", string(outer))
	}},
	{"form", false, func(r *redact.Redactor, f format) string {
		return body(r, "application/x-www-form-urlencoded", url.Values{f.field: {f.secret}, "c": {canary}}.Encode())
	}},
	{"sse", false, func(r *redact.Redactor, f format) string {
		return body(r, "text/event-stream", "event: note\ndata: {\"c\": \""+canary+"\", \""+f.field+"\": \""+f.secret+"\"}\n\n")
	}},
	{"xml", false, func(r *redact.Redactor, f format) string {
		return body(r, "application/xml", "<R><C>"+canary+"</C><"+f.field+">"+f.secret+"</"+f.field+"></R>")
	}},
	{"xml-attr", true, func(r *redact.Redactor, f format) string {
		return body(r, "application/xml", `<R c="`+canary+`" v="`+f.secret+`"/>`)
	}},
	{"text-spaced", false, func(r *redact.Redactor, f format) string {
		return body(r, "text/plain", canary+"\n"+f.field+" = "+f.secret+"\n")
	}},
	{"text-colon", false, func(r *redact.Redactor, f format) string {
		return body(r, "text/plain", canary+"\n"+f.field+": "+f.secret+"\n")
	}},
	{"text-prose", true, func(r *redact.Redactor, f format) string {
		return body(r, "text/plain", canary+": the key is "+f.secret+", use it.")
	}},
	{"log", false, func(r *redact.Redactor, f format) string {
		return r.String(`msg="tool call" c=` + canary + " " + f.field + "=" + f.secret)
	}},
	{"args", false, func(r *redact.Redactor, f format) string {
		flag := "--" + strings.ToLower(strings.Trim(strings.ReplaceAll(f.field, "_", "-"), "-"))
		return strings.Join(r.Args([]string{"agent", canary, flag, f.secret, flag + "=" + f.secret, f.field + "=" + f.secret}), " ")
	}},
	{"args-bare", true, func(r *redact.Redactor, f format) string {
		return strings.Join(r.Args([]string{"agent", canary, f.secret}), " ")
	}},
	{"env", true, func(r *redact.Redactor, f format) string {
		return canary + " " + r.EnvValue("HF_HUB", f.secret)
	}},
}

func body(r *redact.Redactor, ct, b string) string {
	return string(r.BodyForTest([]byte(b), ct, true))
}

func dump(h http.Header) string {
	b, _ := json.Marshal(h)
	return string(b)
}

// TestFormatsEveryPosition: each format in each position the proxy sees
// (headers, query, path, JSON, JSON inside a JSON string, form, SSE, XML,
// text, a log line, a command line, an environment value). The secret must
// be gone and the text beside it kept.
func TestFormatsEveryPosition(t *testing.T) {
	r, err := redact.New(redact.Config{Secret: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range formats {
		for _, p := range positions {
			if p.tokens && !f.token() {
				continue
			}
			t.Run(f.name+"/"+p.name, func(t *testing.T) {
				out := p.run(r, f)
				if strings.Contains(out, f.secret) {
					t.Errorf("secret kept:\n%s", out)
				}
				if !strings.Contains(out, canary) {
					t.Errorf("the text beside it is gone:\n%s", out)
				}
				if !strings.Contains(out, "REDACTED") {
					t.Errorf("no marker:\n%s", out)
				}
			})
		}
	}
}

// TestFormatsInContext: the formats as real services send them, whole.
func TestFormatsInContext(t *testing.T) {
	r, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, in string
		secrets  []string
		keep     []string // must survive (hosts, ordinary fields)
		ct       string   // a body of this type; "" for a URL or a log line
	}{
		{name: "telegram-bot-path", in: "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq/sendMessage?chat_id=42",
			secrets: []string{"AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"}, keep: []string{"https://api.telegram.org/bot", "/sendMessage", "chat_id=42"}},
		{name: "slack-webhook-path", in: "https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFG/AbCdEfGhIjKlMnOpQrStUvWx",
			secrets: []string{"AbCdEfGhIjKlMnOpQrStUvWx"}, keep: []string{"https://hooks.slack.com"}},
		{name: "teams-webhook-text", ct: "text/plain",
			in:      "post to https://acme.webhook.office.com/webhookb2/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b@1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/IncomingWebhook/0123456789abcdef0123456789abcdef/2b3c4d5e-6f7a-8b9c-0d1e-2f3a4b5c6d7e now",
			secrets: []string{"0123456789abcdef0123456789abcdef", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}, keep: []string{"post to", "now"}},
		{name: "aws-sts-xml", ct: "text/xml",
			in: `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
				`<AccessKeyId>ASIAY34FZKBOKMUTVV7A</AccessKeyId><SecretAccessKey>kP9x2Lm5Nx8Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5Qr</SecretAccessKey>` +
				`<SessionToken>FwoGZXIvYXdzEBYaDHk3Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5</SessionToken><Expiration>2026-01-01T00:00:00Z</Expiration>` +
				`</Credentials></AssumeRoleResult></AssumeRoleResponse>`,
			secrets: []string{"ASIAY34FZKBOKMUTVV7A", "kP9x2Lm5Nx8Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5Qr", "FwoGZXIvYXdzEBYaDHk3Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5"},
			keep:    []string{"<Expiration>2026-01-01T00:00:00Z</Expiration>"}},
		{name: "aws-credentials-file", ct: "text/plain",
			in:      "[default]\naws_access_key_id = AKIAZ7VRSQ5TJN2XWGHQ\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Rt1Vw4\nregion = us-east-1\n",
			secrets: []string{"AKIAZ7VRSQ5TJN2XWGHQ", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Rt1Vw4"}, keep: []string{"region = us-east-1"}},
		{name: "npmrc", ct: "text/plain",
			in:      "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=5d7f0a1e-3b2c-4d6e-8f9a-0b1c2d3e4f5a\n",
			secrets: []string{"5d7f0a1e-3b2c-4d6e-8f9a-0b1c2d3e4f5a"}, keep: []string{"registry=https://registry.npmjs.org/"}},
		{name: "azure-connection-string", ct: "text/plain",
			in:      "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zk9Pq2Lm5Nx8Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5Qr8==;EndpointSuffix=core.windows.net",
			secrets: []string{"Zk9Pq2Lm5Nx8Rt1Vw4Yb7Cd0Ef3Gh6Jk9Lm2Np5Qr8"}, keep: []string{"AccountName=acme", "EndpointSuffix=core.windows.net"}},
		{name: "gcp-service-account", ct: "application/json",
			in:      `{"type": "service_account", "project_id": "acme", "private_key_id": "3f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", "private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj", "client_email": "bot@acme.iam.gserviceaccount.com"}`,
			secrets: []string{"3f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj"}, keep: []string{`"project_id": "acme"`, "bot@acme.iam.gserviceaccount.com"}},
		{name: "azure-client-secret-in-query", in: "https://x.example/cb?s=Ra86Q~FVVOLSsap7STcHPflXzgilxaDKLh1FWDZ&t=1",
			secrets: []string{"FVVOLSsap7STcHPflXzgilxaDKLh1FWDZ"}, keep: []string{"https://x.example/cb?s=", "&t=1"}},
		{name: "login-form", ct: "application/x-www-form-urlencoded",
			in: "user=alice&passwd=Hunter2Hunter2&pwd=Hunter2Hunter3&next=%2Fhome", secrets: []string{"Hunter2Hunter2", "Hunter2Hunter3"}, keep: []string{"user=alice", "next=%2Fhome"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out string
			if c.ct == "" {
				out = r.String(c.in)
			} else {
				out = body(r, c.ct, c.in)
			}
			for _, s := range c.secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s kept:\n%s", s, out)
				}
			}
			for _, k := range c.keep {
				if !strings.Contains(out, k) {
					t.Errorf("%q lost:\n%s", k, out)
				}
			}
		})
	}
}
