package proxy

import "net/http"

// Which answers may have their head held back for their body, so both
// leave in one write (trackedConn.holdNextWrite, holdNextWriteFor).

// headThenBody reports an answer goproxy writes as a head and then at
// once a body, with nothing in between that could wait: a body of known,
// non-zero length already in memory. Only then may the head be held for
// the body (trackedConn.holdNextWrite): a bodiless answer has one write,
// and any other body may take its time.
func headThenBody(req *http.Request, resp *http.Response) bool {
	if resp == nil || resp.ContentLength <= 0 || resp.StatusCode < 200 ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
		req.Method == http.MethodHead {
		return false
	}
	b, ok := resp.Body.(nopCloser)
	return ok && b.Reader != nil && int64(b.Len()) == resp.ContentLength
}

// forwardedBody reports a forwarded answer whose head may wait a moment
// for the first bytes of its body (trackedConn.holdNextWriteFor): a body of
// known, non-zero length coming from upstream that is not a stream. The
// head then leaves with the body's first read in one write(2), or alone
// after headDelay, whichever comes first.
func forwardedBody(req *http.Request, resp *http.Response) bool {
	if resp == nil {
		return false
	}
	c, ok := resp.Body.(*capture)
	return ok && !c.streamed && !c.bodiless && resp.ContentLength > 0 && resp.StatusCode >= 200 && req.Method != http.MethodHead
}
