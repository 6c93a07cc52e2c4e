"""A stand-in for an API the emulator lacks, for the deploy rehearsal only (never the product's path).

`zappa update` calls Lambda's ListFunctionUrlConfigs (GET /2021-10-31/functions/<name>/urls), which moto 5.2.5
does not implement (DESIGN.md section 4): this forwards every request to the emulator unchanged and answers
that one as AWS does for a function without URLs ({"FunctionUrlConfigs": []}).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_FUNCTION_URLS = re.compile(r"^/2021-10-31/functions/[^/]+/urls(\?|$)")


class _Forward(BaseHTTPRequestHandler):
    target: tuple[str, int]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "GET" and _FUNCTION_URLS.match(self.path):
            payload = json.dumps({"FunctionUrlConfigs": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        connection = http.client.HTTPConnection(*self.target, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
        connection.request(self.command, self.path, body=body or None, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class FunctionUrlStandIn:
    """In front of the emulator at `endpoint`; `.url` is where boto3 and Zappa should point."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        handler = type("Forward", (_Forward,), {"target": (parts.hostname, parts.port)})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FunctionUrlStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
