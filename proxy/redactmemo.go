package proxy

import (
	"bytes"

	"github.com/cassetteproxy/cassetteproxy/internal/bytesmemo"
	"github.com/cassetteproxy/cassetteproxy/redact"
	"github.com/cassetteproxy/cassetteproxy/store"
)

// redactMemo remembers what recent response bodies redacted to, so a body
// answered again (a polled tool, tools/list, a model list, a load test) is
// compared byte for byte with the one seen before instead of scanned again:
// on a 50 KB JSON body the comparison costs a few microseconds, the scan
// tens to a hundred. A body's redaction depends only on its bytes and its
// Content-Type, and the memo is keyed on both, so a hit returns exactly what
// the scan would. The raw bodies it holds are copies in memory only, like
// the response itself on its way to redaction. The value is the redacted
// body, or nil when redaction changed nothing (the memo's copy is the answer).
type redactMemo = bytesmemo.Memo[[]byte]

const (
	minMemoBody    = 1024    // below this, scanning is as cheap as comparing
	maxMemoBytes   = 4 << 20 // raw plus redacted, over all entries
	maxMemoEntries = 256
)

func newRedactMemo() *redactMemo { return bytesmemo.New[[]byte](maxMemoEntries, maxMemoBytes) }

// redactResponse redacts resp in place exactly like redactor.Response,
// reusing the redacted body of an identical earlier body. Streams (events)
// are always scanned: their redaction is per event.
func redactResponse(memo *redactMemo, redactor *redact.Redactor, resp *store.Response) {
	body := resp.Body
	if len(resp.Events) > 0 || len(body) < minMemoBody {
		redactor.Response(resp)
		return
	}
	ct := resp.Header.Get("Content-Type")
	redacted, raw, ok, again := memo.Get(ct, body)
	if ok {
		resp.Body = nil // the headers are scrubbed as usual; the body is known
		redactor.Response(resp)
		if redacted == nil {
			redacted = raw
		}
		resp.Body = redacted
		return
	}
	if !again { // first sight: most bodies never come back
		redactor.Response(resp)
		return
	}
	raw = bytes.Clone(body) // before the scan, which owns body from here
	redactor.Response(resp)
	redacted = resp.Body
	if len(redacted) > 0 && &redacted[0] == &body[0] { // the scan answered with body itself
		if bytes.Equal(redacted, raw) {
			redacted = nil // nothing redacted
		} else {
			redacted = bytes.Clone(redacted) // body belongs to the caller
		}
	}
	memo.Put(ct, raw, redacted, len(redacted))
	// From now on the recording holds the memo's bytes, as every later hit
	// will: the store then knows this body by its address, not by comparing
	// it, and the capture's buffer goes back to its pool.
	if redacted == nil {
		resp.Body = raw
	} else {
		resp.Body = redacted
	}
}
