// Command memory is the reference answer-from-memory proxy: a minimal
// goproxy that answers every request, plain or inside an intercepted CONNECT
// (its own CA), from a map of URL path to body loaded at start. It never
// contacts upstream. It is the ceiling cassetteproxy replay mode is measured
// against: same library, no matching, no store.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/elazarl/goproxy"

	"github.com/cassetteproxy/cassetteproxy/bench/internal/benchutil"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	ready := flag.String("ready-file", "", "write the listening address here once accepting")
	caOut := flag.String("ca-out", "", "write the MITM CA certificate (PEM) here")
	bodies := flag.String("bodies", "", "folder of files; each is served at /<file name>")
	flag.Parse()
	if err := run(*listen, *ready, *caOut, *bodies); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

func run(listen, ready, caOut, dir string) error {
	gp, err := benchutil.RefProxy("bench memory ref CA", caOut)
	if err != nil {
		return err
	}
	answers := map[string][]byte{}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		answers["/"+filepath.Base(f)] = b
	}
	gp.OnRequest().DoFunc(func(req *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		body, ok := answers[req.URL.Path]
		status := http.StatusOK
		if !ok {
			body, status = []byte(`{"error":"not in memory"}`), http.StatusNotFound
		}
		return req, &http.Response{
			StatusCode: status, Status: http.StatusText(status),
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"application/json"}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}
	})
	return benchutil.Serve(gp, listen, ready)
}
