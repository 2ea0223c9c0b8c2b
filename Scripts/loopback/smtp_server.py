#!/usr/bin/env python3
"""A mail relay on loopback for CareRelay's notification tests and demo (aiosmtpd).

It takes mail as a site's relay would: STARTTLS with the certificate given, AUTH PLAIN and
LOGIN only after TLS, and records what arrived so that a test can check it.

    smtp_server.py --port 0 [--tls-cert CERT --tls-key KEY [--require-tls | --implicit-tls]]
                   [--user U --password P [--no-plain]] [--refuse-first N]
                   [--out FILE] [--print]

The first line on stdout is `listening 127.0.0.1 PORT` (the port chosen when --port is 0).
--out appends one JSON object per line:
  {"kind": "message", "mail_from", "rcpt_tos", "mail_options", "tls", "user", "message"}
      for each message taken (`message` is the text as received, dot-stuffing undone);
  {"kind": "session", "commands": [...], "tls", "user", "auth_attempts": [...]}
      when a connection ends: the SMTP verbs the client sent, so a test can see that no AUTH
      (and no password) went before TLS, and the mechanisms and users it tried.
--implicit-tls speaks TLS from the first byte (port 465 style) instead of offering STARTTLS.
--refuse-first N answers the first N messages `451 4.3.0 try again later` (after DATA).
--print writes each message's headers and body to stdout, for the demo.
SIGTERM or SIGINT stops it cleanly.
"""

import argparse
import asyncio
import functools
import json
import signal
import ssl
import sys
import warnings
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd's own notices: one about its internals, one about AUTH without TLS, which is
# wanted here only when no certificate is given (a test's relay without STARTTLS).
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

VERBS = ("HELO", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY")


class Recorder:
    """Appends JSON lines to the --out file, flushed at once: a test polls that file."""

    def __init__(self, path):
        self.path = path

    def write(self, record):
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()


def under_tls(server):
    """STARTTLS sets session.ssl; with implicit TLS the transport itself is TLS."""
    return server.session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None


def user_of(session):
    if not session.authenticated:
        return None
    login = getattr(session.auth_data, "login", None)
    return login.decode("utf-8", "replace") if isinstance(login, bytes) else login


class Handler:
    def __init__(self, recorder, refuse_first, show):
        self.recorder = recorder
        self.refusals_left = refuse_first
        self.show = show

    async def handle_DATA(self, server, session, envelope):
        if self.refusals_left > 0:
            self.refusals_left -= 1
            return "451 4.3.0 try again later"
        text = envelope.content.decode("utf-8", "replace") if isinstance(envelope.content, bytes) else envelope.content
        self.recorder.write({
            "kind": "message",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": under_tls(server),
            "user": user_of(session),
            "message": text,
        })
        if self.show:
            show_message(envelope, session, under_tls(server))
        return "250 2.0.0 OK: queued"


def show_message(envelope, session, tls):
    raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
    parsed = message_from_bytes(raw, policy=policy.default)
    print(f"--- mail from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}"
          f" (tls: {'yes' if tls else 'no'}, user: {user_of(session) or '-'})")
    for name, value in parsed.items():
        print(f"{name}: {value}")
    print()
    print(parsed.get_content().rstrip("\n"))
    print("---", flush=True)


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP, noting each verb the client sends and each AUTH it tries."""

    def __init__(self, *args, recorder, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorder = recorder
        self.commands = []
        self.auth_attempts = []
        self.recorded = False
        # Whether any command came under TLS.
        self.tls_seen = False

    def connection_lost(self, error):
        # Called once per connection (STARTTLS swaps the transport, not the connection).
        if not self.recorded:
            self.recorded = True
            self.recorder.write({
                "kind": "session",
                "commands": self.commands,
                "tls": self.tls_seen,
                "user": user_of(self.session),
                "auth_attempts": self.auth_attempts,
            })
        super().connection_lost(error)


def recorded(verb):
    original = getattr(SMTP, "smtp_" + verb)

    @functools.wraps(original)
    async def method(self, arg):
        self.commands.append(verb)
        self.tls_seen = self.tls_seen or under_tls(self)
        return await original(self, arg)

    return method


for _verb in VERBS:
    setattr(RecordingSMTP, "smtp_" + _verb, recorded(_verb))


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        server.auth_attempts.append({"mechanism": mechanism, "user": login, "tls": under_tls(server)})
        ok = login == user and auth_data.password.decode("utf-8", "replace") == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--require-tls", action="store_true", help="refuse mail commands before STARTTLS")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte, no STARTTLS")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--no-plain", action="store_true", help="offer AUTH LOGIN only")
    parser.add_argument("--out")
    parser.add_argument("--refuse-first", type=int, default=0)
    parser.add_argument("--print", dest="show", action="store_true")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if bool(args.user) != bool(args.password):
        parser.error("--user and --password go together")

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    recorder = Recorder(args.out)
    handler = Handler(recorder, args.refuse_first, args.show)
    if args.implicit_tls and tls_context is None:
        parser.error("--implicit-tls needs --tls-cert and --tls-key")
    options = dict(
        hostname="relay.carerelay.test",
        tls_context=None if args.implicit_tls else tls_context,
        require_starttls=args.require_tls,
        enable_SMTPUTF8=True,
        recorder=recorder,
    )
    if args.user:
        options.update(
            authenticator=authenticator_for(args.user, args.password),
            auth_required=True,
            # With a certificate, AUTH only under TLS (as a real relay); without one, in clear,
            # for the test that a client never offers credentials in clear itself.
            # Under implicit TLS aiosmtpd does not know the session is TLS: the socket is.
            auth_require_tls=tls_context is not None and not args.implicit_tls,
            auth_exclude_mechanism=["PLAIN"] if args.no_plain else None,
        )

    # A parent may start us with signals blocked (a test runner's threads often block them, and
    # the mask is inherited): unblock the ones that stop us, or SIGTERM would never arrive.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: RecordingSMTP(handler, loop=loop, **options), host=args.host, port=args.port,
                           ssl=tls_context if args.implicit_tls else None))
    port = server.sockets[0].getsockname()[1]
    print(f"listening {args.host} {port}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
