#!/usr/bin/env python3
"""An independent CRP/1 client, written from Protocols/CRP.md alone, that drives a real
CareRelay broker over CURVE-secured TCP.

Usage: python3 Tests/python/test_crp.py [path/to/carerelay-broker]
       (default .build/debug/carerelay-broker; CARERELAY_BROKER overrides it too)

It builds nothing. It writes a directory file, starts the broker as a subprocess on a free
loopback port, runs the checks below and stops the broker with SIGTERM. Every receive has
a timeout, so a broken broker makes checks fail instead of hanging. The last line is
"N passed, N failed"; the exit status is 1 if anything failed.

Every behaviour CRP.md describes is checked here the same way; CRP.md section 19 lists
known deviations from it (none at present).
"""

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import zmq

SIGNATURE = b"CRP\x01"
RECV_TIMEOUT_MS = 5000
PATIENT = "9434765919"          # a valid NHS number (modulus 11)
BAD_CHECK_DIGIT = "9434765918"  # the same with a wrong check digit


# ---------------------------------------------------------------------------------------
# A minimal CRP client (CRP.md, "Commands")
# ---------------------------------------------------------------------------------------

class CRPError(AssertionError):
    pass


class Client:
    """One DEALER connection. Answers are matched by `req` (or, for an untagged REJECTED,
    by the command name); DELIVERs that arrive meanwhile are queued, as CRP.md allows."""

    def __init__(self, ctx, endpoint, broker_public, keypair, name):
        self.name = name
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.curve_serverkey = broker_public
        self.sock.curve_publickey, self.sock.curve_secretkey = keypair
        self.sock.connect(endpoint)
        self.deliveries = []
        self.others = []
        self.counter = 0
        self.seen = set()

    def close(self):
        self.sock.close(0)

    def next_req(self):
        self.counter += 1
        return f"{self.name}-{self.counter}"

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def send_command(self, command, header, body=None):
        frames = [SIGNATURE, command.encode(), json.dumps(header).encode()]
        if body is not None:
            frames.append(body)
        self.send_frames(frames)

    def recv_raw(self, timeout_ms=RECV_TIMEOUT_MS):
        """The next broker message as (command, header dict, body or None), or None."""
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return None
        frames = self.sock.recv_multipart()
        if len(frames) not in (3, 4) or frames[0] != SIGNATURE:
            raise CRPError(f"{self.name}: not a CRP/1 message: {frames!r}")
        return frames[1].decode(), json.loads(frames[2]), (frames[3] if len(frames) == 4 else None)

    def answer(self, req, command_name, timeout_ms=RECV_TIMEOUT_MS):
        """Waits for the answer to a request tagged `req`, queueing deliveries."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                raise CRPError(f"{self.name}: no answer to {command_name} req={req} within {timeout_ms} ms")
            msg = self.recv_raw(left)
            if msg is None:
                continue
            cmd, header, body = msg
            if cmd == "DELIVER":
                self.deliveries.append((header, body))
                continue
            if header.get("req") == req:
                return cmd, header, body
            if cmd == "REJECTED" and header.get("req") is None and header.get("command") == command_name:
                return cmd, header, body
            self.others.append(msg)

    def request(self, command, header, body=None, timeout_ms=RECV_TIMEOUT_MS):
        req = self.next_req()
        header = dict(header, req=req)
        self.send_command(command, header, body)
        return self.answer(req, command, timeout_ms)

    def hello(self, receive=True, credit=16):
        cmd, header, _ = self.request("HELLO", {"receive": receive, "credit": credit, "client": "crp-python-test"})
        expect(cmd == "WELCOME", f"HELLO answered with {cmd} {header}")
        return header

    def deliver(self, timeout_ms=RECV_TIMEOUT_MS, kind=None):
        """The next DELIVER (of `kind`, if given), waiting up to timeout_ms."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            for i, (header, body) in enumerate(self.deliveries):
                if kind is None or header["kind"] == kind:
                    del self.deliveries[i]
                    return header, body
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                return None
            msg = self.recv_raw(left)
            if msg is None:
                continue
            if msg[0] == "DELIVER":
                self.deliveries.append((msg[1], msg[2]))
            else:
                self.others.append(msg)

    def confirm(self, ids):
        self.send_command("CONFIRM", {"ids": ids})


def expect(condition, message):
    if not condition:
        raise CRPError(message)


def expect_rejected(answer, code, name):
    cmd, header, _ = answer
    expect(cmd == "REJECTED", f"expected REJECTED {code}, got {cmd} {header}")
    expect(header.get("code") == code and header.get("error") == name,
           f"expected {code} {name}, got {header.get('code')} {header.get('error')}: {header.get('reason')}")
    expect(isinstance(header.get("reason"), str) and header["reason"], "REJECTED without a reason")
    return header


# ---------------------------------------------------------------------------------------
# The broker under test
# ---------------------------------------------------------------------------------------

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def z85(key_bytes):
    return key_bytes.decode("ascii")


PEOPLE = [
    # id, name, roles, teams
    ("gp.khan", "Dr Amina Khan", ["gp"], ["west.gp"]),
    ("sw.okafor", "Grace Okafor", ["social-worker"], ["west.social-care"]),
    ("sw.lee", "Daniel Lee", ["social-worker"], ["west.social-care"]),
    ("coord.patel", "Priya Patel", ["care-coordinator"], ["west.social-care"]),
    ("admin.it", "IT service desk", ["administrator"], []),
]


def write_directory(path, keys):
    lines = [
        "organisations:",
        "  - id: sunderland-ccg",
        "    name: Sunderland CCG",
        "localities:",
        "  - id: west",
        "    name: Sunderland West",
        "teams:",
        "  - id: west.gp",
        "    name: Pallion Health Centre",
        "    kind: service",
        "    locality: west",
        "    organisation: sunderland-ccg",
        "  - id: west.social-care",
        "    name: West social care intake",
        "    kind: service",
        "    locality: west",
        "    organisation: sunderland-ccg",
        "    coordinator: coord.patel",
        '    hours: "mon-fri 08:00-18:00"',
        "    fallback:",
        '      - "District nurses: 0191 555 0100"',
        '      - "Emergency: 999"',
        "people:",
    ]
    for pid, name, roles, teams in PEOPLE:
        lines += [
            f"  - id: {pid}",
            f'    name: "{name}"',
            f"    roles: [{', '.join(roles)}]",
            "    organisation: sunderland-ccg",
            f"    teams: [{', '.join(teams)}]",
            f'    key: "{z85(keys[pid][0])}"',
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Broker:
    def __init__(self, executable, folder, keys):
        self.folder = folder
        self.directory = os.path.join(folder, "directory.yaml")
        write_directory(self.directory, keys)
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.stderr = open(os.path.join(folder, "broker.stderr"), "wb")
        self.proc = subprocess.Popen(
            [executable, "--directory", self.directory, "--store", os.path.join(folder, "store.sqlite"),
             "--key-file", os.path.join(folder, "broker.key"), "--endpoint", self.endpoint, "--operations", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.stderr)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.public_key = None
        listening = False
        deadline = time.monotonic() + 30
        while not (listening and self.public_key):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.kill()
                raise CRPError(f"broker did not start; stderr:\n{self.log()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if "listening on" in line:
                listening = True
            if line.startswith("broker public key:"):
                self.public_key = line.split(":", 1)[1].strip().encode()
        with open(os.path.join(folder, "broker.key.pub")) as f:
            expect(self.public_key.decode() in f.read(), "broker.key.pub does not hold the printed public key")

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def log(self):
        self.stderr.flush()
        with open(self.stderr.name, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self, timeout=15):
        """SIGTERM, then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------
# Message bodies (Protocols/messages)
# ---------------------------------------------------------------------------------------

def referral_body(reason="Two falls at home in three weeks; her husband and main carer is in hospital."):
    return {
        "status": "active",
        "intent": "order",
        "priority": "same-day",
        "category": "social-care",
        "serviceRequested": "Social care assessment for a package of care at home",
        "subject": PATIENT,
        "patientDetails": {
            "name": {"prefix": "Mrs", "given": ["Margaret"], "family": "Ellis"},
            "birthDate": "1940-06-14",
            "address": {"line": ["12 Harbour View", "Pallion"], "city": "Sunderland", "postalCode": "SR4 6TJ"},
            "telecom": [{"system": "phone", "value": "0191 496 0123", "use": "home"}],
            "language": "en",
            "interpreterRequired": False,
            "communicationNeeds": "Hard of hearing: speak on her left side.",
        },
        "requester": {"person": "gp.khan", "role": "gp", "organisation": "sunderland-ccg", "team": "west.gp"},
        "performer": {"team": "west.social-care"},
        "locality": "west",
        "authoredOn": "2025-03-11T10:42:00Z",
        "reasonCode": [{"system": "http://snomed.info/sct", "code": "129839007", "display": "At risk for falls"}],
        "reasonText": reason,
        "patientAgreed": True,
    }


def encode(body):
    return json.dumps(body, separators=(",", ":")).encode()


def referral_header(key):
    return {"key": key, "kind": "referral", "to": ["team:west.social-care"], "patient": PATIENT,
            "priority": "same-day", "labels": ["social-care"]}


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------

class Run:
    def __init__(self, executable):
        self.executable = executable
        self.passed = 0
        self.failed = 0
        self.state = {}

    def check(self, name, fn):
        started = time.monotonic()
        try:
            fn()
        except Exception as error:  # noqa: BLE001 - report every failure and go on
            self.failed += 1
            print(f"FAIL {name}: {error}")
            if not isinstance(error, CRPError):
                traceback.print_exc()
        else:
            self.passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.2f}s)")

    def check_true(self, name, fn):
        """A check whose function returns True when the broker behaves as CRP.md says."""
        def run_and_expect():
            if not fn():
                raise CRPError(f"{name}: the broker does not do this")
        self.check(name, run_and_expect)



def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    executable = (argv[0] if argv else None) or os.environ.get("CARERELAY_BROKER") \
        or ".build/debug/carerelay-broker"
    if not os.access(executable, os.X_OK):
        print(f"no broker executable at {executable}: build it with `swift build --product carerelay-broker`")
        print("0 passed, 1 failed")
        return 1

    folder = tempfile.mkdtemp(prefix="crp-python-")
    keys = {pid: zmq.curve_keypair() for pid, *_ in PEOPLE}
    ctx = zmq.Context()
    run = Run(executable)
    broker = None
    clients = []

    def client(pid, keypair=None):
        c = Client(ctx, broker.endpoint, broker.public_key, keypair or keys[pid], pid)
        clients.append(c)
        return c

    try:
        broker = Broker(executable, folder, keys)
        s = run.state

        def welcome():
            for pid in ("gp.khan", "sw.okafor", "sw.lee"):
                c = client(pid)
                w = c.hello(receive=True, credit=16)
                expect(w["version"] == 1, f"WELCOME version {w['version']}")
                expect(w["person"] == pid, f"WELCOME names {w['person']}, not {pid}")
                roles = dict((p, r) for p, _, r, _ in PEOPLE)[pid]
                expect(w["roles"] == roles, f"roles {w['roles']} (the directory says {roles})")
                expect(isinstance(w["heartbeat"], int) and w["heartbeat"] > 0, "heartbeat missing")
                expect(isinstance(w["maxBody"], int) and w["maxBody"] >= 1024, "maxBody missing")
                expect(isinstance(w["broker"], str), "broker missing")
                s[pid] = c
        run.check("HELLO is answered by WELCOME with the directory identity", welcome)

        def ping():
            cmd, header, body = s["gp.khan"].request("PING", {})
            expect(cmd == "PONG" and body is None, f"PING answered with {cmd}")
        run.check("PING is answered by PONG with the same req", ping)

        def send_referral():
            gp = s["gp.khan"]
            s["body"] = encode(referral_body())
            cmd, header, _ = gp.request("SEND", referral_header("py-referral-1"), s["body"])
            expect(cmd == "ACCEPTED", f"SEND answered with {cmd} {header}")
            expect(header["key"] == "py-referral-1" and header["duplicate"] is False, f"ACCEPTED {header}")
            expect(isinstance(header["id"], str) and header["id"], "ACCEPTED without an id")
            people = {r["person"]: r["decision"] for r in header["recipients"]}
            expect(set(people) == {"sw.okafor", "sw.lee", "coord.patel"},
                   f"a team address reaches every member but the sender: {people}")
            expect(all(d == "deliver" for d in people.values()), f"decisions {people}")
            s["referral"] = header["id"]
        run.check("SEND referral to team:... is ACCEPTED with an outcome per member", send_referral)

        def resend_same_key():
            cmd, header, _ = s["gp.khan"].request("SEND", referral_header("py-referral-1"), s["body"])
            expect(cmd == "ACCEPTED" and header["duplicate"] is True, f"resend answered {cmd} {header}")
            expect(header["id"] == s["referral"], "a resend must return the first message id")
        run.check("a resend with the same key is ACCEPTED as a duplicate with the same id", resend_same_key)

        def conflicting_key():
            other = encode(referral_body(reason="A different referral under a reused key."))
            answer = s["gp.khan"].request("SEND", referral_header("py-referral-1"), other)
            h = expect_rejected(answer, 412, "idempotency-conflict")
            expect(h.get("key") == "py-referral-1" and h.get("command") == "SEND", f"REJECTED {h}")
        run.check("the same key with different content is REJECTED 412", conflicting_key)

        def delivered_and_confirmed():
            sw = s["sw.okafor"]
            got = sw.deliver(kind="referral")
            expect(got is not None, "sw.okafor received no DELIVER")
            header, body = got
            expect(header["id"] == s["referral"], f"DELIVER id {header['id']}")
            expect(header["recipient"] == "sw.okafor" and header["from"] == "gp.khan", f"DELIVER {header}")
            expect(header["fromName"] == "Dr Amina Khan", f"fromName {header['fromName']}")
            expect(header["to"] == ["team:west.social-care"] and header["patient"] == PATIENT, f"DELIVER {header}")
            expect(header["attempt"] == 1, f"attempt {header['attempt']}")
            expect(header["sentAt"].endswith("Z"), f"sentAt {header['sentAt']}")
            expect(body == s["body"], "the body was not forwarded unchanged")
            sw.confirm([header["id"]])
            # CONFIRM has no answer, and is stored after the batch it arrived in (CRP.md 5.3):
            # a QUERY read in the same batch may not see it yet, so ask until it does.
            deadline = time.monotonic() + 5
            while True:
                cmd, result, body = sw.request("QUERY", {"query": "track", "params": {"id": s["referral"]}})
                expect(cmd == "RESULT", f"track answered {cmd} {result}")
                tracking = json.loads(body)
                state = {r["person"]: r["state"] for r in tracking["recipients"]}
                if state.get("sw.okafor") == "confirmed" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            expect(state.get("sw.okafor") == "confirmed", f"states after CONFIRM: {state}")
            expect(tracking["referral"]["status"] == "sent", f"referral {tracking['referral']}")
        run.check("a team member receives DELIVER, CONFIRMs it, and tracking shows it confirmed",
                  delivered_and_confirmed)

        def redelivered_after_bye():
            lee = s["sw.lee"]
            got = lee.deliver(kind="referral")
            expect(got is not None and got[0]["id"] == s["referral"], "sw.lee received no DELIVER")
            lee.send_command("BYE", {})  # no answer; the socket stays open until the end
            again = client("sw.lee")
            again.hello(receive=True, credit=16)
            got = again.deliver(kind="referral")
            expect(got is not None, "no redelivery after BYE without CONFIRM")
            expect(got[0]["id"] == s["referral"] and got[0]["attempt"] == 2, f"redelivery {got[0]}")
            again.confirm([s["referral"]])
            s["sw.lee"] = again
        run.check("an unconfirmed delivery is sent again (attempt 2) on the next session", redelivered_after_bye)

        def accept_event():
            event = {"referral": s["referral"], "event": "accepted", "at": now_iso(), "by": "sw.okafor",
                     "note": "Taken from the intake queue."}
            s["event"] = encode(event)
            s["event_header"] = {"key": "py-accept-1", "kind": "referral.event", "to": [],
                                 "correlation": s["referral"]}
            cmd, header, _ = s["sw.okafor"].request("SEND", s["event_header"], s["event"])
            expect(cmd == "ACCEPTED", f"accept answered {cmd} {header}")
            people = {r["person"] for r in header["recipients"]}
            expect("gp.khan" in people and "sw.okafor" not in people, f"event recipients {people}")
            s["event_id"] = header["id"]
        run.check("a social worker accepts the referral with a referral.event", accept_event)

        def gp_receives_event():
            gp = s["gp.khan"]
            got = gp.deliver(kind="referral.event")
            expect(got is not None, "the GP received no referral.event")
            header, body = got
            expect(header["id"] == s["event_id"] and header["from"] == "sw.okafor", f"DELIVER {header}")
            expect(header["correlation"] == s["referral"], f"correlation {header.get('correlation')}")
            event = json.loads(body)
            expect(event["event"] == "accepted" and event["by"] == "sw.okafor", f"event {event}")
            gp.confirm([header["id"]])
            cmd, result, body = gp.request("QUERY", {"query": "track", "params": {"id": s["referral"]}})
            expect(cmd == "RESULT", f"track answered {cmd}")
            referral = json.loads(body)["referral"]
            expect(referral["status"] == "accepted" and referral["takenBy"] == "sw.okafor", f"referral {referral}")
        run.check("the GP receives the acceptance and tracking names who took it", gp_receives_event)

        def second_accept():
            event = {"referral": s["referral"], "event": "accepted", "at": now_iso(), "by": "sw.lee"}
            answer = s["sw.lee"].request("SEND", {"key": "py-accept-lee", "kind": "referral.event", "to": [],
                                                  "correlation": s["referral"]}, encode(event))
            h = expect_rejected(answer, 415, "invalid-transition")
            expect("sw.okafor" in h["reason"], f"the reason should name who took it: {h['reason']}")
        run.check("a second acceptance is REJECTED 415 naming who took it", second_accept)

        def gp_may_not_accept():
            event = {"referral": s["referral"], "event": "completed", "at": now_iso(), "by": "gp.khan"}
            answer = s["gp.khan"].request("SEND", {"key": "py-gp-complete", "kind": "referral.event", "to": []},
                                          encode(event))
            expect_rejected(answer, 410, "not-permitted")
        run.check("the referrer may not complete a referral for the team (410)", gp_may_not_accept)

        def event_by_someone_else():
            event = {"referral": s["referral"], "event": "completed", "at": now_iso(), "by": "sw.lee"}
            answer = s["sw.okafor"].request("SEND", {"key": "py-forged-by", "kind": "referral.event", "to": []},
                                            encode(event))
            expect_rejected(answer, 410, "not-permitted")
        run.check("an event whose 'by' is not the sender is REJECTED 410", event_by_someone_else)

        def unknown_referral():
            event = {"referral": "m0-0", "event": "accepted", "at": now_iso(), "by": "sw.okafor"}
            answer = s["sw.okafor"].request("SEND", {"key": "py-unknown-ref", "kind": "referral.event", "to": []},
                                            encode(event))
            expect_rejected(answer, 414, "unknown-message")
        run.check("an event about an unknown referral is REJECTED 414", unknown_referral)

        def resend_accept_event():
            cmd, header, _ = s["sw.okafor"].request("SEND", s["event_header"], s["event"])
            if cmd == "ACCEPTED" and header.get("duplicate") is True and header.get("id") == s["event_id"]:
                return True
            raise CRPError(f"answered {cmd} {header.get('code')} {header.get('error')}: {header.get('reason')}")
        run.check_true("a resend of an applied referral.event with its key is ACCEPTED duplicate",
                      resend_accept_event)

        # --- Refusals: frames and headers (CRP.md, "Error codes") -----------------------
        def raw(frames, command_name, req=None):
            c = s["gp.khan"]
            c.send_frames(frames)
            return c.answer(req, command_name)

        def malformed():
            expect_rejected(raw([SIGNATURE, b"PING"], "PING"), 400, "malformed-message")
            expect_rejected(raw([SIGNATURE, b"PING", b"{}", b"x", b"y"], "PING"), 400, "malformed-message")
            expect_rejected(raw([SIGNATURE, b"PING", b"{}", b"unexpected body"], "PING"), 400, "malformed-message")
            expect_rejected(raw([SIGNATURE, b"SEND", json.dumps(referral_header("py-nobody")).encode()], "SEND"),
                            400, "malformed-message")
        run.check("wrong frame counts and a SEND without a body are REJECTED 400", malformed)

        def signature_and_version():
            expect_rejected(raw([b"ZMTP", b"PING", b"{}"], "PING"), 401, "bad-signature")
            expect_rejected(raw([b"CRP", b"PING", b"{}"], "PING"), 401, "bad-signature")
            expect_rejected(raw([b"CRP\x02", b"PING", b"{}"], "PING"), 402, "unsupported-version")
        run.check("a bad signature is 401 and another version 402", signature_and_version)

        def unknown_command():
            h = expect_rejected(raw([SIGNATURE, b"FETCH", b"{}"], "FETCH"), 403, "unknown-command")
            expect(h.get("command") == "FETCH", f"command {h.get('command')}")
            expect_rejected(raw([SIGNATURE, b"WELCOME", b"{}"], "WELCOME"), 403, "unknown-command")
        run.check("an unknown command (or a broker command sent by a client) is 403", unknown_command)

        def invalid_header():
            expect_rejected(raw([SIGNATURE, b"PING", b"not json"], "PING"), 404, "invalid-header")
            expect_rejected(raw([SIGNATURE, b"PING", b'{"req": "a", "colour": "red"}'], "PING", req="a"), 404, "invalid-header")
            expect_rejected(raw([SIGNATURE, b"PING", b"{" + b" " * (16 * 1024) + b"}"], "PING"), 404, "invalid-header")
            header = referral_header("py-bad-address")
            header["to"] = ["pers:gp.khan"]
            expect_rejected(raw([SIGNATURE, b"SEND", json.dumps(header).encode(), s["body"]], "SEND"),
                            404, "invalid-header")
            header = referral_header("")
            expect_rejected(raw([SIGNATURE, b"SEND", json.dumps(header).encode(), s["body"]], "SEND"),
                            404, "invalid-header")
        run.check("unreadable, unknown-field, oversize and invalid SEND headers are 404", invalid_header)

        def body_errors():
            gp = s["gp.khan"]
            expect_rejected(gp.request("SEND", referral_header("py-not-json"), b"{not json"), 405, "invalid-body")
            broken = referral_body()
            del broken["subject"]
            expect_rejected(gp.request("SEND", referral_header("py-schema"), encode(broken)), 406, "schema-violation")
            other = referral_body()
            other["subject"] = "4010232137"
            expect_rejected(gp.request("SEND", referral_header("py-other-patient"), encode(other)),
                            406, "schema-violation")
        run.check("a body that is not JSON is 405; one that breaks its schema 406", body_errors)

        def patient_details_errors():
            gp = s["gp.khan"]
            postcode = referral_body()
            postcode["patientDetails"]["address"]["postalCode"] = "SR46TJ"
            h = expect_rejected(gp.request("SEND", referral_header("py-postcode"), encode(postcode)), 406, "schema-violation")
            expect("patientDetails.address.postalCode" in h.get("reason", ""), f"reason names the field: {h}")
            unborn = referral_body()
            unborn["patientDetails"]["birthDate"] = "2030-01-01"
            h = expect_rejected(gp.request("SEND", referral_header("py-unborn"), encode(unborn)), 406, "schema-violation")
            expect("patientDetails.birthDate" in h.get("reason", ""), f"reason names the field: {h}")
        run.check("patient details with a malformed postcode or a date of birth after the referral are 406",
                  patient_details_errors)

        def nhs_number():
            header = referral_header("py-bad-nhs")
            header["patient"] = BAD_CHECK_DIGIT
            expect_rejected(raw([SIGNATURE, b"SEND", json.dumps(header).encode(), s["body"]], "SEND"),
                            407, "invalid-nhs-number")
            body = referral_body()
            body["subject"] = BAD_CHECK_DIGIT
            expect_rejected(s["gp.khan"].request("SEND", referral_header("py-bad-nhs-body"), encode(body)),
                            407, "invalid-nhs-number")
        run.check("a wrong NHS check digit, in header or body, is 407", nhs_number)

        def unknown_address():
            header = referral_header("py-unknown-team")
            header["to"] = ["team:west.nowhere"]
            h = expect_rejected(s["gp.khan"].request("SEND", header, s["body"]), 408, "unknown-address")
            expect(h.get("key") == "py-unknown-team", f"key not echoed: {h}")
        run.check("an address naming nothing in the directory is 408", unknown_address)

        def too_large():
            big = b'{"x":"' + b"a" * (1 << 20) + b'"}'
            expect_rejected(raw([SIGNATURE, b"SEND", json.dumps(referral_header("py-big")).encode(), big], "SEND"),
                            409, "message-too-large")
        run.check("a body above maxBody is 409", too_large)

        def hello_required():
            c = client("coord.patel")
            expect_rejected(c.request("PING", {}), 413, "hello-required")
            c.hello(receive=False, credit=0)
            cmd, _, _ = c.request("PING", {})
            expect(cmd == "PONG", f"PING after HELLO answered {cmd}")
            c.send_command("BYE", {})
            expect_rejected(c.request("PING", {}), 413, "hello-required")
        run.check("commands before HELLO and after BYE are 413", hello_required)

        def queries():
            gp = s["gp.khan"]
            cmd, header, body = gp.request("QUERY", {"query": "status"})
            expect(cmd == "RESULT" and header["query"] == "status", f"status answered {cmd} {header}")
            status = json.loads(body)
            expect(status["protocolVersion"] == 1 and status["connectedClients"] >= 1 and status["storeHealthy"] is True
                   and status["store"]["messages"] >= 1 and isinstance(status["store"]["intakeWaiting"], dict), f"status {status}")
            expect_rejected(gp.request("QUERY", {"query": "gossip"}), 404, "invalid-header")
            expect_rejected(gp.request("QUERY", {"query": "audit.verify"}), 410, "not-permitted")
            expect_rejected(gp.request("QUERY", {"query": "track", "params": {"id": "m0-0"}}), 414, "unknown-message")
            cmd, _, body = gp.request("QUERY", {"query": "careteam", "params": {"patient": PATIENT}})
            expect(cmd == "RESULT", f"careteam answered {cmd}")
            team = json.loads(body)
            expect("person:gp.khan" in team and "team:west.social-care" in team, f"care team {team}")
            expect_rejected(gp.request("QUERY", {"query": "careteam", "params": {"patient": BAD_CHECK_DIGIT}}),
                            407, "invalid-nhs-number")
        run.check("QUERY status, track, careteam and their refusals", queries)

        def revocation():
            # CRP.md 10.5: a withdrawal takes back what consent no longer covers, with a
            # broker.notice of kind revoked; 10.3: a recipient may break glass to read it.
            coord = client("coord.patel")
            coord.hello(receive=False)
            grant = {
                "action": "grant", "id": "py-cd-mood", "status": "active", "scope": "patient-privacy", "patient": PATIENT,
                "dateTime": now_iso(), "performer": {"person": "coord.patel", "role": "care-coordinator"},
                "policyRule": "explicit",
                "provision": {"type": "permit", "period": {"start": "2025-01-01T00:00:00Z"},
                              "actor": [{"role": "person", "reference": "sw.okafor"}], "class": ["mental-health"]},
            }
            cmd, header, _ = coord.request("SEND", {"key": "py-consent-1", "kind": "consent", "to": [], "patient": PATIENT},
                                           encode(grant))
            expect(cmd == "ACCEPTED", f"consent answered {cmd} {header}")
            examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Protocols", "examples")
            with open(os.path.join(examples, "careplan.share", "valid-home-plan-with-mental-health-section.json")) as f:
                plan = json.load(f)
            plan["patient"] = PATIENT
            cmd, header, _ = s["gp.khan"].request(
                "SEND", {"key": "py-plan-1", "kind": "careplan.share", "to": ["person:sw.okafor"], "patient": PATIENT}, encode(plan))
            expect(cmd == "ACCEPTED" and header["recipients"][0]["decision"] == "deliver", f"plan answered {cmd} {header}")
            plan_id = header["id"]
            sw = s["sw.okafor"]
            got = sw.deliver(kind="careplan.share")
            expect(got is not None and got[0]["id"] == plan_id, "sw.okafor received no plan")
            expect(b"PHQ-9" in got[1], "the whole plan, mood section included, was delivered")
            sw.confirm([plan_id])
            deadline = time.monotonic() + 5
            while True:
                cmd, _, body = sw.request("QUERY", {"query": "track", "params": {"id": plan_id}})
                states = {r["person"]: r["state"] for r in json.loads(body)["recipients"]}
                if states.get("sw.okafor") == "confirmed" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            withdraw = {"action": "withdraw", "patient": PATIENT, "dateTime": now_iso(),
                        "performer": {"person": "coord.patel", "role": "care-coordinator"}, "withdraws": "py-cd-mood"}
            cmd, header, _ = coord.request("SEND", {"key": "py-consent-2", "kind": "consent", "to": [], "patient": PATIENT},
                                           encode(withdraw))
            expect(cmd == "ACCEPTED", f"withdrawal answered {cmd} {header}")
            got = sw.deliver(kind="broker.notice")
            expect(got is not None, "no revocation notice")
            header, body = got
            notice = json.loads(body)
            expect(header["from"] == "carerelay" and header["correlation"] == plan_id, f"notice header {header}")
            expect(notice["notice"] == "revoked" and notice["message"] == plan_id and notice["parts"] == ["mood"]
                   and notice["kind"] == "careplan.share" and notice["by"] == "coord.patel", f"notice {notice}")
            sw.confirm([header["id"]])
            cmd, header, body = sw.request("QUERY", {"query": "message", "params": {"id": plan_id}})
            view = json.loads(body)
            expect(cmd == "RESULT" and "mood" in view["header"]["redacted"] and "PHQ-9" not in view["body"], f"after: {view}")
            reason = "Found collapsed at home; paramedics need her mental health history"
            cmd, header, body = sw.request("QUERY", {"query": "message", "params": {"id": plan_id, "breakGlass": reason}})
            view = json.loads(body)
            expect(cmd == "RESULT" and view["header"]["override"] is True and "PHQ-9" in view["body"], f"break glass: {view}")
            expect_rejected(sw.request("QUERY", {"query": "message", "params": {"id": plan_id, "breakGlass": "urgent"}}),
                            410, "not-permitted")
        run.check("a withdrawal revokes the section delivered (broker.notice revoked); break glass reads it again",
                  revocation)

        def subscriptions():
            sw = s["sw.okafor"]
            cmd, header, _ = sw.request("SUBSCRIBE", {"topic": "*/west/west.social-care"})
            expect(cmd == "SUBSCRIBED" and header["topic"] == "*/west/west.social-care", f"{cmd} {header}")
            expect_rejected(sw.request("SUBSCRIBE", {"topic": "*/west/*"}), 411, "subscription-denied")
            expect_rejected(sw.request("SUBSCRIBE", {"topic": "#/west"}), 404, "invalid-header")
            cmd, header, _ = sw.request("UNSUBSCRIBE", {"topic": "*/west/west.social-care"})
            expect(cmd == "UNSUBSCRIBED", f"UNSUBSCRIBE answered {cmd}")
        run.check("SUBSCRIBE within the role's rights, 411 beyond them, 404 for a bad pattern", subscriptions)

        def credit():
            c = s["gp.khan"]
            c.send_command("CREDIT", {"credit": 4})
            cmd, _, _ = c.request("PING", {})
            expect(cmd == "PONG", "CREDIT must not be answered; PING after it is")
        run.check("CREDIT takes no answer", credit)

        def rejected_send_header_echoes_req():
            c = s["gp.khan"]
            header = referral_header("py-req-echo")
            header["to"] = ["pers:nobody"]
            header["req"] = "echo-me"
            c.send_command("SEND", header, s["body"])
            cmd, h, _ = c.answer("echo-me", "SEND")
            if cmd == "REJECTED" and h.get("req") == "echo-me":
                return True
            raise CRPError(f"answered {cmd} {h.get('code')} {h.get('error')} with req={h.get('req')!r}")
        run.check_true("a REJECTED for an unreadable SEND header echoes its req when it can be read",
                      rejected_send_header_echoes_req)

        # --- Authentication (CRP.md, "Security") ----------------------------------------
        def unknown_key():
            stranger = client("stranger", zmq.curve_keypair())
            expect_rejected(stranger.request("HELLO", {"receive": True, "credit": 1}), 410, "not-permitted")
            expect_rejected(stranger.request("QUERY", {"query": "status"}), 410, "not-permitted")
            expect_rejected(stranger.request("QUERY", {"query": "enrol", "params": {"code": "AAAA-BBBB-CCCC"}}),
                            418, "enrolment-refused")
        run.check("a key not in the directory may only enrol: HELLO and queries are refused 410", unknown_key)

        def enrolment():
            admin = client("admin.it")
            admin.hello(receive=False, credit=0)
            new = {"id": "sw.new", "name": "Sam New", "roles": ["social-worker"], "organisation": "sunderland-ccg",
                   "teams": ["west.social-care"], "email": "sam.new@sunderland.example"}
            changes = json.dumps([{"op": "person.add", "person": new}]).encode()
            cmd, h, body = admin.request("QUERY", {"query": "directory.change", "params": {"dryRun": "true"}}, changes)
            expect(cmd == "RESULT" and json.loads(body)["dryRun"] is True, f"dry run answered {cmd} {h}")
            cmd, h, body = admin.request("QUERY", {"query": "directory.change"}, changes)
            expect(cmd == "RESULT" and json.loads(body)["revision"] >= 2, f"directory.change answered {cmd} {h}")
            # A change naming a team that does not exist: refused, naming the change.
            bad = json.dumps([{"op": "person.add", "person": dict(new, id="sw.bad", email="bad@x.example",
                                                                   teams=["west.nowhere"])}]).encode()
            h = expect_rejected(admin.request("QUERY", {"query": "directory.change"}, bad), 417, "invalid-directory-change")
            expect(h["reason"].startswith("changes[0]:"), f"reason does not name the change: {h['reason']}")
            cmd, h, body = admin.request("QUERY", {"query": "enrol.issue", "params": {"person": "sw.new"}})
            expect(cmd == "RESULT", f"enrol.issue answered {cmd} {h}")
            code = json.loads(body)["code"]
            keypair = zmq.curve_keypair()
            newcomer = client("newcomer", keypair)
            cmd, h, body = newcomer.request("QUERY", {"query": "enrol", "params": {"code": code}})
            expect(cmd == "RESULT" and json.loads(body)["person"] == "sw.new", f"enrol answered {cmd} {h} {body}")
            w = newcomer.hello(receive=False, credit=0)
            expect(w["person"] == "sw.new", f"the enrolled key is {w['person']}")
            again = client("again", zmq.curve_keypair())
            expect_rejected(again.request("QUERY", {"query": "enrol", "params": {"code": code}}), 418, "enrolment-refused")
            # Anyone but an administrator is refused.
            expect_rejected(s["gp.khan"].request("QUERY", {"query": "directory.change"}, changes), 410, "not-permitted")
        run.check("an administrator adds a person and issues a code; a new key enrols with it, once", enrolment)

        def wrong_server_key():
            liar = Client(ctx, broker.endpoint, zmq.curve_keypair()[0], keys["gp.khan"], "wrong-server")
            clients.append(liar)
            liar.send_command("HELLO", {"receive": False, "credit": 0, "req": "x"})
            expect(liar.recv_raw(1500) is None, "a client with the wrong broker key got an answer")
        run.check("a client that does not know the broker's key gets no answer", wrong_server_key)

        for c in clients:
            c.close()
        clients.clear()

        def sigterm():
            s["exit"] = broker.stop(timeout=8)
            expect(s["exit"] == 0 or (s["exit"] is None and "broker stopped" in broker.log()),
                   f"the broker exited with {s['exit']} after SIGTERM")
        run.check("SIGTERM stops the broker's loop cleanly", sigterm)

        def exited():
            if s.get("exit") == 0:
                return True
            raise CRPError("the broker logged 'broker stopped' but did not exit within 8 s of SIGTERM")
        run.check_true("after SIGTERM the process exits 0", exited)

    except Exception as error:  # noqa: BLE001
        run.failed += 1
        print(f"FAIL setup: {error}")
        traceback.print_exc()
    finally:
        for c in clients:
            c.close()
        if broker:
            broker.kill()
            if run.failed:
                print("--- broker stderr (tail) ---")
                print(broker.log())
        ctx.term()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"{run.passed} passed, {run.failed} failed")
    return 1 if run.failed else 0


def test_crp_against_broker():
    """For pytest: the broker comes from CARERELAY_BROKER or the default path."""
    assert main([]) == 0


if __name__ == "__main__":
    sys.exit(main())
