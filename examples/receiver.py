"""A tiny webhook receiver that verifies evgate's Standard Webhooks signatures.

    WEBHOOK_SECRET=whsec_... python examples/receiver.py [port]

Prints each verified delivery and answers 204; a bad or missing signature gets 401 (evgate
then treats the record as undeliverable: DLQ, or FAILURE of the subscription). Without
WEBHOOK_SECRET it accepts everything (for subscriptions without a `secret`). Deduplicates by
`webhook-id`, since delivery is at-least-once. Standard library only; binds 127.0.0.1.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET")
TOLERANCE_S = 300
seen: set[str] = set()


def verify(secret: str, headers, body: bytes) -> bool:
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in signatures)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if SECRET and not verify(SECRET, self.headers, body):
            self._answer(401)
            return
        msg_id = self.headers.get("webhook-id")
        duplicate = msg_id in seen
        seen.add(msg_id)
        print(f"{'duplicate ' if duplicate else ''}{msg_id} "
              f"{self.headers.get('X-Evgate-Topic')}[{self.headers.get('X-Evgate-Partition')}]"
              f"@{self.headers.get('X-Evgate-Offset')}: {body[:200]!r}", flush=True)
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8090
    print(f"webhook receiver on http://127.0.0.1:{port}/ "
          f"({'verifying signatures' if SECRET else 'no secret: not verifying'})", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
