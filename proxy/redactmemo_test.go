package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// The memo must answer exactly what the redactor would, every time: a body
// with a secret, the same again, the same bytes under another Content-Type,
// a clean body, and a caller that overwrites its buffer after the first save.
func TestRedactMemoAnswersLikeTheRedactor(t *testing.T) {
	red, err := redact.New(redact.Config{Secret: []byte("memo-test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat(`{"text":"nothing to see here"},`, 60)
	secret := []byte(`{"items":[` + pad + `{"api_key":"sk-live-0123456789abcdefghijklmnop"}]}`)
	clean := []byte(`{"items":[` + pad + `{"name":"x"}]}`)
	buf := bytes.Clone(secret) // reused by the "caller" below
	cases := []struct {
		name string
		ct   string
		body []byte
	}{
		{"secret, first", "application/json", secret},
		{"secret, again", "application/json", bytes.Clone(secret)},
		{"secret, as text", "text/plain", bytes.Clone(secret)},
		{"clean", "application/json", clean},
		{"clean, again", "application/json", bytes.Clone(clean)},
		{"buffer, first", "application/json", buf},
		{"buffer, overwritten with the clean body", "application/json", append(buf[:0], clean...)},
		{"small", "application/json", []byte(`{"token":"abcdefghijklmnop"}`)},
	}
	memo := newRedactMemo()
	for round := range 2 {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%d/%s", round, c.name), func(t *testing.T) {
				want := &store.Response{Status: 200, Header: http.Header{"Content-Type": {c.ct}, "Set-Cookie": {"sid=abc123secret"}}, Body: bytes.Clone(c.body)}
				got := &store.Response{Status: 200, Header: want.Header.Clone(), Body: bytes.Clone(c.body)}
				red.Response(want)
				redactResponse(memo, red, got)
				if !bytes.Equal(got.Body, want.Body) {
					t.Fatalf("body:\n got %.200s\nwant %.200s", got.Body, want.Body)
				}
				if fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
					t.Fatalf("header: got %v, want %v", got.Header, want.Header)
				}
				if bytes.Contains(got.Body, []byte("sk-live-")) {
					t.Fatal("secret left in the body")
				}
			})
		}
	}
	if memo.Len() == 0 {
		t.Fatal("memo kept nothing")
	}
}

func TestRedactMemoStaysBounded(t *testing.T) {
	red, _ := redact.New(redact.Config{})
	memo := newRedactMemo()
	for i := range 3 * maxMemoEntries {
		body := fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("y", 4096))
		for range 2 { // kept from the second sight on
			redactResponse(memo, red, &store.Response{Header: http.Header{"Content-Type": {"application/json"}}, Body: bytes.Clone(body)})
		}
		if memo.Len() > maxMemoEntries || memo.Bytes() > maxMemoBytes {
			t.Fatalf("after %d bodies: %d entries, %d bytes", i+1, memo.Len(), memo.Bytes())
		}
	}
}

// From its second sight on, a body is recorded as the memo's one copy, not
// the caller's buffer: the capture's buffer can go back to its pool, and
// the store knows the body by address instead of comparing it again.
func TestRedactMemoRecordsItsOwnCopy(t *testing.T) {
	red, err := redact.New(redact.Config{Secret: []byte("memo-test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat(`{"text":"nothing to see here"},`, 60)
	for name, body := range map[string][]byte{
		"clean":  []byte(`{"items":[` + pad + `{"name":"x"}]}`),
		"secret": []byte(`{"items":[` + pad + `{"api_key":"sk-live-0123456789abcdefghijklmnop"}]}`),
	} {
		t.Run(name, func(t *testing.T) {
			memo := newRedactMemo()
			var kept []byte
			for sight := 1; sight <= 3; sight++ {
				in := bytes.Clone(body)
				got := &store.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: in}
				redactResponse(memo, red, got)
				if sight == 1 {
					continue // not kept: most bodies are seen once
				}
				if &in[0] == &got.Body[0] {
					t.Fatalf("sight %d: the recording is the caller's buffer", sight)
				}
				if kept != nil && &kept[0] != &got.Body[0] {
					t.Fatalf("sight %d: a different copy from sight 2's", sight)
				}
				kept = got.Body
			}
		})
	}
}
