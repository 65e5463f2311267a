"""A plain forwarding HTTP proxy, as a corporate network puts between a client and the API:
it takes `GET http://host:port/path` from a client whose `HTTP_PROXY` names it, asks the origin,
and answers with the origin's status, headers and body, adding its own `Date` and `Server`
first as any HTTP server does (`BaseHTTPRequestHandler.send_response`). So the client sees two
`Date` headers, the proxy's (its clock) and the origin's."""

import contextlib
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}


class ForwardingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")

    def _forward(self, method: str) -> None:
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(method, path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status)  # the proxy's own Date and Server go first
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            upstream.close()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def forwarding_proxy() -> Iterator[str]:
    """A proxy on a free port of 127.0.0.1; yields its URL (for `HTTP_PROXY`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ForwardingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
