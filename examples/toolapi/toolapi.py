"""A tiny tool API for the example agent to record against (stdlib only).

GET  /v1/issues?state=open  the open issues of the demo project
POST /v1/messages           "sends" a message: 201 {"id": N}

It listens on a free loopback port and writes that port, one line, to the
file named by its only argument (a FIFO in examples/record.sh) once it
accepts connections.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ISSUES = {"issues": [{"id": 1, "title": "Login page times out"},
                     {"id": 2, "title": "Export drops the last row"}]}


class Handler(BaseHTTPRequestHandler):
    sent = 0

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/issues?state=open":
            self.answer(200, ISSUES)
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v1/messages":
            Handler.sent += 1
            self.answer(201, {"id": Handler.sent})
        else:
            self.answer(404, {"error": "not found"})

    def log_message(self, *args):
        pass


def main():
    srv = HTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write("%d\n" % srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
