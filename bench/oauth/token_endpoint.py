#!/usr/bin/env python3
"""The token endpoint's cost per grant, and SIP latency while logins saturate Argon2.

Starts a release `sipreg serve` on loopback (store and keys in a temporary folder, the
default Argon2 cost), then measures, each in its own step:

- client_credentials and refresh_token grants (no Argon2 on these paths): grants per
  second with T keep-alive connections, and the server's CPU per grant (/proc);
- the password grant (Argon2id, m=19456 KiB, t=2, on the bounded blocking pool);
- `sipreg bench` REGISTERs with cached Bearer tokens at a fixed rate, alone and then
  while T connections flood the password grant: p50/p99/p99.9/max of the SIP answers.

Usage: bench/oauth/token_endpoint.py [--bin target/release/sipreg] [--seconds 8]
Prints a Markdown table. Loopback only; every process it starts is stopped at the end.
"""

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Server:
    def __init__(self, binary, folder):
        self.bin, self.dir = binary, folder
        self.sip, self.http = free_port(), free_port()
        self.cfg = os.path.join(folder, "sipreg.toml")
        with open(self.cfg, "w") as f:
            f.write(
                f'[sip]\nlisten = "127.0.0.1:{self.sip}"\n'
                f'[http]\nlisten = "127.0.0.1:{self.http}"\n'
                f'[database]\nurl = "sqlite://{folder}/sipreg.db?mode=rwc"\n'
                f'[tokens]\nkey_dir = "{folder}/keys"\n'
            )
        self.proc = None

    def cli(self, *args, stdin=None):
        out = subprocess.run(
            [self.bin, "--config", self.cfg, *args],
            input=stdin, capture_output=True, text=True, check=True,
        )
        return out.stdout

    def start(self):
        self.proc = subprocess.Popen(
            [self.bin, "--config", self.cfg, "serve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=1)
                c.request("GET", "/.well-known/jwks.json")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("sipreg did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


def post(conn, body, basic=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    conn.request("POST", "/oauth/token", urllib.parse.urlencode(body), headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else {}


def run_threads(srv, threads, seconds, work):
    """Runs `work(conn, state)` on `threads` connections for `seconds` (True: a 200,
    False: another answer, None: a setup request not counted); returns (count, errors,
    elapsed, server CPU seconds)."""
    counts, errors = [0] * threads, [0] * threads
    stop = threading.Event()

    def loop(i):
        conn = http.client.HTTPConnection("127.0.0.1", srv.http, timeout=30)
        state = {}
        while not stop.is_set():
            ok = work(conn, state)
            if ok is None:
                continue
            if ok:
                counts[i] += 1
            else:
                errors[i] += 1

    ts = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    c0, t0 = cpu_secs(srv.proc.pid), time.monotonic()
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(counts), sum(errors), time.monotonic() - t0, cpu_secs(srv.proc.pid) - c0


def sip_bench(srv, csv, rate, seconds):
    out = subprocess.run(
        [srv.bin, "bench", f"127.0.0.1:{srv.sip}", "--users-csv", csv, "--rate", str(rate),
         "--duration", str(seconds), "--warmup", "1", "--json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/sipreg")
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--sip-rate", type=int, default=2000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        srv = Server(os.path.abspath(a.bin), d)
        srv.cli("user", "add", "alice", "--password-stdin", stdin="Bench-Passw0rd-42\n")
        secret = [
            line.split("=", 1)[1]
            for line in srv.cli("client", "add", "Bench", "--id", "bench", "--grant",
                                "client_credentials", "--grant", "password", "--grant",
                                "refresh_token", "--scope", "sip.register").splitlines()
            if line.startswith("client_secret=")
        ][0]
        basic = f"bench:{secret}"
        csv = os.path.join(d, "users.csv")
        srv.cli("sipp-users", "--count", "200", "--prefix", "bench", "--out", csv)
        srv.start()
        try:
            rows = []

            def client_credentials(conn, _):
                s, _ = post(conn, {"grant_type": "client_credentials"}, basic)
                return s == 200

            def refresh(conn, state):
                if "rt" not in state:
                    s, v = post(conn, {"grant_type": "password", "username": "alice",
                                       "password": "Bench-Passw0rd-42"}, basic)
                    state["rt"] = v.get("refresh_token")
                    return None
                s, v = post(conn, {"grant_type": "refresh_token",
                                   "refresh_token": state["rt"]}, basic)
                state["rt"] = v.get("refresh_token", state["rt"])
                return s == 200

            def password(conn, _):
                s, _ = post(conn, {"grant_type": "password", "username": "alice",
                                   "password": "Bench-Passw0rd-42"}, basic)
                return s == 200

            for name, work in [("client_credentials", client_credentials),
                               ("refresh_token (rotation)", refresh),
                               ("password (Argon2id m=19456 KiB, t=2)", password)]:
                n, err, el, cpu = run_threads(srv, a.threads, a.seconds, work)
                rows.append(f"| {name} | {n / el:,.0f} | {cpu / max(n, 1) * 1e6:,.0f} | {n} ({err} not 200) |")
            alone = sip_bench(srv, csv, a.sip_rate, a.seconds)
            flood = {}
            t = threading.Thread(target=lambda: flood.update(
                r=run_threads(srv, 8, a.seconds + 2, password)))
            t.start()
            time.sleep(0.5)
            during = sip_bench(srv, csv, a.sip_rate, a.seconds)
            t.join()
        finally:
            srv.stop()
    print(f"| grant ({a.threads} keep-alive connections, {a.seconds} s) | grants/s | server CPU per grant (µs) | answered 200 |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"| sipreg bench REGISTER, {a.sip_rate}/s, Bearer tokens, {a.seconds} s | p50 | p99 | p99.9 | max | 2xx within 100 ms |")
    print("|---|---|---|---|---|---|")
    for name, r in [("alone", alone), (f"while 8 connections flood the password grant ({flood['r'][0]} logins)", during)]:
        lat = r["latency"]
        ms = lambda us: f"{us / 1000:.2f} ms"
        share = r["ok_in_time"] / max(r["sent"], 1)
        print(f"| {name} | {ms(lat['p50_us'])} | {ms(lat['p99_us'])} | {ms(lat['p999_us'])} | {ms(lat['max_us'])} | {share:.2%} |")

if __name__ == "__main__":
    main()
