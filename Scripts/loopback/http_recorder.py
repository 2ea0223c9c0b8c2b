#!/usr/bin/env python3
"""An HTTP server on loopback that stands in for GOV.UK Notify and for teams' webhook
receivers in CareRelay's notification tests and demo. Standard library only.

    http_recorder.py --port 0 [--notify-key KEY] [--template-id ID] [--hook-secret NAME=SECRET ...]
                     [--fail-first N] [--tls-cert CERT --tls-key KEY] [--out FILE] [--print]

The first line on stdout is `listening 127.0.0.1 PORT`.

POST /v2/notifications/sms  as Notify's send-a-text-message call: the bearer token must be a
    JWT (HS256) signed with the secret of --notify-key (Notify's form, name-<service id>-<secret>)
    whose `iss` is the key's service id and whose `iat` is within 30 seconds; the body needs
    phone_number (a UK mobile number), template_id (--template-id, if given) and
    personalisation.message. 201 with Notify's answer (id, reference, content {body,
    from_number}, uri, template); else Notify's error shape
    {"status_code": N, "errors": [{"error": ..., "message": ...}]} with 400, 401 or 403.
POST /hooks/NAME  a webhook receiver: 200. With --hook-secret NAME=SECRET the
    CareRelay-Signature is checked (HMAC-SHA256 over "<timestamp>.<body>") and a bad one gets
    400.
Anything else: 404. --fail-first N answers the first N requests 503.

--out appends one JSON object per request: method, path, headers, body, status (what was
answered), jwt_ok / jwt_problem for SMS, signature_ok for webhooks with a secret.
--print writes a line per request to stdout, for the demo. SIGTERM or SIGINT stops it.
"""

import argparse
import base64
import hashlib
import hmac
import json
import re
import signal
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_notify_key(key):
    """Notify's key form: the last 36 characters are the secret, the 36 before the dash
    before them the service id."""
    if len(key) < 73 or key[-37] != "-":
        return None
    service_id, secret = key[-73:-37], key[-36:]
    try:
        uuid.UUID(service_id)
        uuid.UUID(secret)
    except ValueError:
        return None
    return service_id, secret


def check_jwt(header_value, service_id, secret, now):
    """None when the token is good, else Notify's words for what is wrong."""
    if not header_value or not header_value.startswith("Bearer "):
        return "Unauthorized: authentication token must be provided"
    token = header_value[len("Bearer "):].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return "Invalid token: not a JWT"
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, json.JSONDecodeError):
        return "Invalid token: not a JWT"
    if header.get("alg") != "HS256" or header.get("typ") != "JWT":
        return "Invalid token: algorithm used is not HS256"
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return "Invalid token: signature, api token not found"
    if claims.get("iss") != service_id:
        return "Invalid token: service not found"
    iat = claims.get("iat")
    if not isinstance(iat, int):
        return "Invalid token: iat field not provided"
    if abs(now - iat) > 30:
        return "Error: Your system clock must be accurate to within 30 seconds"
    return None


def uk_mobile(number):
    digits = re.sub(r"[\s()+-]", "", number)
    if digits.startswith("44"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = digits[1:]
    return digits.isdigit() and len(digits) == 10 and digits.startswith("7")


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.failures_left = args.fail_first
        self.key = parse_notify_key(args.notify_key) if args.notify_key else None
        self.hook_secrets = dict(item.split("=", 1) for item in args.hook_secret)

    def take_failure(self):
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return True
            return False

    def record(self, entry):
        if self.args.out:
            with self.lock, open(self.args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
                out.flush()
        if self.args.show:
            extra = ""
            if "sms" in entry:
                extra = f" to {entry['sms'].get('phone_number')}: {entry['sms'].get('message')!r}"
            elif entry["path"].startswith("/hooks/"):
                try:
                    extra = f": {json.loads(entry['body']).get('subject')!r}"
                except (ValueError, AttributeError):
                    pass
            print(f"{entry['method']} {entry['path']} -> {entry['status']}{extra}", flush=True)


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "CareRelayLoopback/1"

        def log_message(self, format, *args):  # quiet: the --out file is the record
            pass

        def answer(self, status, payload, entry):
            body = json.dumps(payload).encode()
            entry["status"] = status
            state.record(entry)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def do_GET(self):
            self.answer(404, {"status_code": 404, "errors": [{"error": "NotFound", "message": "Not found"}]},
                        {"method": "GET", "path": self.path, "headers": dict(self.headers.items()), "body": ""})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, MAX_BODY))
            entry = {
                "method": "POST",
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": raw.decode("utf-8", "replace"),
            }
            if state.take_failure():
                return self.answer(503, {"status_code": 503, "errors": [
                    {"error": "ServiceUnavailable", "message": "try again later"}]}, entry)
            if self.path == "/v2/notifications/sms":
                return self.sms(raw, entry)
            if self.path.startswith("/hooks/") and len(self.path) > len("/hooks/"):
                return self.hook(raw, entry)
            return self.answer(404, {"status_code": 404, "errors": [
                {"error": "NotFound", "message": f"no such path {self.path}"}]}, entry)

        def sms(self, raw, entry):
            def error(status, kind, message):
                return self.answer(status, {"status_code": status, "errors": [{"error": kind, "message": message}]}, entry)

            if state.key is None:
                entry["jwt_ok"] = False
                entry["jwt_problem"] = "no --notify-key given"
                return error(403, "AuthError", "Invalid token: service not found")
            problem = check_jwt(self.headers.get("Authorization"), state.key[0], state.key[1], int(time.time()))
            entry["jwt_ok"] = problem is None
            entry["jwt_problem"] = problem
            if problem is not None:
                status = 401 if problem.startswith("Unauthorized") else 403
                return error(status, "AuthError", problem)
            try:
                request = json.loads(raw)
            except json.JSONDecodeError:
                return error(400, "BadRequestError", "Invalid JSON supplied in POST data")
            if not isinstance(request, dict):
                return error(400, "BadRequestError", "Invalid JSON supplied in POST data")
            for field in ("phone_number", "template_id"):
                if not isinstance(request.get(field), str):
                    return error(400, "ValidationError", f"{field} is a required property")
            personalisation = request.get("personalisation") or {}
            entry["sms"] = {
                "phone_number": request["phone_number"],
                "template_id": request["template_id"],
                "message": personalisation.get("message") if isinstance(personalisation, dict) else None,
                "reference": request.get("reference"),
            }
            if not uk_mobile(request["phone_number"]):
                return error(400, "ValidationError", "phone_number Not a UK mobile number")
            if state.args.template_id and request["template_id"] != state.args.template_id:
                return error(400, "BadRequestError", "Template not found")
            if not isinstance(personalisation, dict) or not isinstance(personalisation.get("message"), str):
                return error(400, "BadRequestError", "Missing personalisation: message")
            notification_id = str(uuid.uuid4())
            base = f"http://{self.headers.get('Host', '127.0.0.1')}"
            template_id = request["template_id"]
            return self.answer(201, {
                "id": notification_id,
                "reference": request.get("reference"),
                "content": {"body": personalisation["message"], "from_number": "CareRelay"},
                "uri": f"{base}/v2/notifications/{notification_id}",
                "template": {"id": template_id, "version": 1, "uri": f"{base}/services/{state.key[0]}/templates/{template_id}"},
            }, entry)

        def hook(self, raw, entry):
            name = self.path[len("/hooks/"):]
            secret = state.hook_secrets.get(name)
            if secret is not None:
                timestamp = self.headers.get("CareRelay-Timestamp", "")
                expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
                given = self.headers.get("CareRelay-Signature", "")
                entry["signature_ok"] = any(hmac.compare_digest(expected, part.strip()) for part in given.split(","))
                if not entry["signature_ok"]:
                    return self.answer(400, {"error": "bad signature"}, entry)
            return self.answer(200, {"ok": True}, entry)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--notify-key")
    parser.add_argument("--template-id")
    parser.add_argument("--hook-secret", action="append", default=[], metavar="NAME=SECRET")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--out")
    parser.add_argument("--print", dest="show", action="store_true")
    args = parser.parse_args()
    if args.notify_key and parse_notify_key(args.notify_key) is None:
        parser.error("--notify-key is not in Notify's form name-<service id>-<secret>")
    if any("=" not in item for item in args.hook_secret):
        parser.error("--hook-secret takes NAME=SECRET")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    server = ThreadingHTTPServer((args.host, args.port), make_handler(State(args)))
    server.daemon_threads = True
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening {args.host} {server.server_address[1]}", flush=True)

    # A parent may start us with signals blocked (a test runner's threads often block them, and
    # the mask is inherited): unblock the ones that stop us, or SIGTERM would never arrive.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
