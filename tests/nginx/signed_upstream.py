"""The upstream of the signed-request nginx test: a service that checks every body against
X-Auth-Content-Digest with deploy/content_digest.py (as a real Python service would), and
answers with the X-Auth-* headers it got and the body it accepted."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "deploy"))
from content_digest import body_matches  # noqa: E402


class Service(BaseHTTPRequestHandler):
    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if not body_matches(self.headers, body):
            self.answer(401, {"error": "the body received is not the body signed", "code": "signature_invalid"})
            return
        seen = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-auth-")}
        self.answer(200, {"headers": seen, "body": body.decode()})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Service).serve_forever()
