package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// badResult is the bad-input run against one proxy: 56 good clients alone,
// then the same 56 with 8 clients sending malformed requests beside them.
type badResult struct {
	target       string
	base, loaded result
	badSent      int64
	drop         float64 // 1 - loaded/base good throughput
}

const (
	badGood = 56
	badBad  = 8
)

func (h *harness) badInput(t *target, w *workload) badResult {
	lr := loadRun{good: badGood, warmup: h.opt.warmup, measure: h.opt.bad}
	base := runLoad(t, w, lr, nil)
	var sent atomic.Int64
	lr.bad = badBad
	var kind atomic.Int64
	loaded := runLoad(t, w, lr, func(stop *atomic.Bool) int64 {
		k := int(kind.Add(1))
		n := int64(0)
		for i := 0; !stop.Load() && i < 1_000_000; i++ {
			sendBad(t.proxy.Host, w, (k+i)%len(badKinds))
			n++
		}
		sent.Add(n)
		return n
	})
	r := badResult{target: t.name, base: base, loaded: loaded, badSent: sent.Load()}
	if base.rps > 0 {
		r.drop = 1 - loaded.rps/base.rps
	}
	h.log("bad input %-22s good alone %8.0f req/s, with 8 bad %8.0f req/s (drop %.0f%%), wrong good answers %d, bad requests %d",
		t.name, base.rps, loaded.rps, 100*r.drop, loaded.errs, r.badSent)
	return r
}

// badKinds are the malformed requests, one connection each.
var badKinds = []string{"bad request line", "truncated body", "oversized headers", "garbage after CONNECT", "bad request line in tunnel", "oversized headers in tunnel"}

// sendBad opens a connection to the proxy, sends one malformed request,
// reads the first line of the answer (or EOF; bounded by deadlines) and
// closes.
func sendBad(proxyAddr string, w *workload, kind int) {
	c, err := net.DialTimeout("tcp", proxyAddr, 2*time.Second)
	if err != nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	host := strings.TrimPrefix(strings.TrimPrefix(w.url, "http://"), "https://")
	host, _, _ = strings.Cut(host, "/")
	switch kind {
	case 0:
		fmt.Fprintf(c, "THIS IS NOT\tA REQUEST LINE\r\nHost: %s\r\n\r\n", host)
	case 1:
		// Promise 4 KiB, send 100 bytes, stop writing.
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"truncated\":\"%s", w.url, host, strings.Repeat("x", 80))
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	case 2:
		// More than net/http's 1 MiB header limit.
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Oversized: %s\r\n\r\n", w.url, host, strings.Repeat("a", 1100<<10))
	case 3, 4, 5:
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, "200") {
			return
		}
		for { // the rest of the CONNECT answer's head
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" || l == "\n" {
				break
			}
		}
		switch kind {
		case 3:
			c.Write([]byte("\x16\x03\x01\x00\x40this is not a TLS client hello at all, only garbage bytes...."))
		case 4:
			fmt.Fprintf(c, "NOT A REQUEST\r\n\r\n")
		case 5: // a plain-HTTP tunnel: the head is read by goproxy, not net/http
			fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: %s\r\nX-Oversized: %s\r\n\r\n", w.file, host, strings.Repeat("a", 1100<<10))
		}
		// The proxy's answer (or its closing the connection), then hang up:
		// a bad client does not wait politely for the proxy to close.
		br.ReadString('\n')
		return
	}
	bufio.NewReader(c).ReadString('\n')
}
