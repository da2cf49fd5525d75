#!/usr/bin/env python3
"""A receiver of `roas serve --alert-webhook` that verifies every delivery with the reference
Standard Webhooks package (`standardwebhooks`), for the tests and for trying it out.

    python3 scripts/alert_receiver.py --secret whsec_... [--port 0] [--fail-first N] [--hang-first N]
                                       [--hang-seconds S] [--mode ok|fail|hang]

Listens on 127.0.0.1 and prints `alert_receiver: listening on 127.0.0.1:PORT` on stderr.

  POST (any path)   a delivery: verified with Webhook(secret).verify (signature and timestamp, within
                    5 minutes); the body must be an alert whose id and state make the webhook-id.
                    Unverified: 401. Otherwise the answer depends on the mode: the first
                    --fail-first attempts get 500, then the first --hang-first attempts get no
                    answer for --hang-seconds (then 200, long after a sender's timeout), then
                    `ok` answers 200, `fail` 500, `hang` hangs.
  GET /control?mode=ok|fail|hang[&fail_first=N][&hang_first=N]   changes the mode.
  GET /attempts     every attempt so far, as JSON: [{"webhook_id","timestamp","verified","status",
                    "alert_id","state","error"}] in arrival order (status 0: still hanging).

Exit status 2 on a usage error, 3 when the package is missing
(python3 -m pip install -r scripts/requirements.txt).
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as error:  # pragma: no cover - depends on the environment
    print(f"alert_receiver.py: the Python package standardwebhooks is missing ({error}); "
          "install it with: python3 -m pip install -r scripts/requirements.txt", file=sys.stderr)
    sys.exit(3)


class State:
    def __init__(self, arguments):
        self.lock = threading.Lock()
        self.webhook = Webhook(arguments.secret)
        self.mode = arguments.mode
        self.fail_first = arguments.fail_first
        self.hang_first = arguments.hang_first
        self.hang_seconds = arguments.hang_seconds
        self.attempts = []


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: the tests read /attempts
            pass

        def answer(self, status, body=b"", content_type="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/attempts":
                with state.lock:
                    body = json.dumps(state.attempts).encode()
                self.answer(200, body, "application/json")
            elif url.path == "/control":
                with state.lock:
                    if "mode" in query:
                        mode = query["mode"][0]
                        if mode not in ("ok", "fail", "hang"):
                            self.answer(400, b"mode must be ok, fail or hang")
                            return
                        state.mode = mode
                    if "fail_first" in query:
                        state.fail_first = int(query["fail_first"][0])
                    if "hang_first" in query:
                        state.hang_first = int(query["hang_first"][0])
                self.answer(200, b"ok")
            else:
                self.answer(404, b"not found")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            record = {
                "webhook_id": headers.get("webhook-id"),
                "timestamp": headers.get("webhook-timestamp"),
                "verified": False,
                "status": 0,
                "alert_id": None,
                "state": None,
                "error": None,
            }
            try:
                alert = state.webhook.verify(data.decode("utf-8"), headers)
                record["verified"] = True
                record["alert_id"] = alert.get("id")
                record["state"] = alert.get("state")
                if f'{alert.get("id")}.{alert.get("state")}' != record["webhook_id"]:
                    record["verified"] = False
                    record["error"] = "webhook-id is not the alert's id.state"
            except (WebhookVerificationError, ValueError, UnicodeDecodeError) as error:
                record["error"] = f"{type(error).__name__}: {error}"
            with state.lock:
                state.attempts.append(record)
                if not record["verified"]:
                    action = 401
                elif state.fail_first > 0:
                    state.fail_first -= 1
                    action = 500
                elif state.hang_first > 0:
                    state.hang_first -= 1
                    action = "hang"
                elif state.mode == "fail":
                    action = 500
                elif state.mode == "hang":
                    action = "hang"
                else:
                    action = 200
            if action == "hang":
                time.sleep(state.hang_seconds)
                action = 200
            with state.lock:
                record["status"] = action
            try:
                self.answer(action, b"{}" if action == 200 else b"", "application/json")
            except OSError:
                pass  # the sender gave up (its timeout) and closed the connection

    return Handler


def main():
    parser = argparse.ArgumentParser(description="Receive and verify roas alert webhooks.")
    parser.add_argument("--secret", required=True, help="whsec_<base64 key>, as given to --alert-secret")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["ok", "fail", "hang"], default="ok")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 to this many attempts first")
    parser.add_argument("--hang-first", type=int, default=0, help="then leave this many attempts unanswered")
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    arguments = parser.parse_args()

    state = State(arguments)
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), make_handler(state))
    server.daemon_threads = True
    print(f"alert_receiver: listening on 127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
