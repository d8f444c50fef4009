#!/usr/bin/env python3
"""Why SIP latency moves while logins saturate the Argon2 pool: the same SIP load alone and
beside each background, in one run, each step repeated (median of the p99s):

- `password`: 8 connections flood the password grant (Argon2id, m=19456 KiB, t=2), as in
  token_endpoint.py;
- `password-small`: the same flood with Argon2id at m=256 KiB (fits in cache), iterations
  raised so a hash costs about as much CPU: CPU contention without the memory traffic;
- `client_credentials`: 8 connections flood a grant with no Argon2 (HTTP and signing only);
- `idle-spin`, `idle-mem`: no HTTP at all: two processes of bench/oauth/hog.c at SCHED_IDLE
  (as sipreg's pool threads are), one spinning in registers, one walking an Argon2-sized
  buffer; what any lowest-priority work costs SIP on this machine.

Usage: bench/oauth/login_interference.py [--bin target/release/sipreg] [--seconds 8]
       [--repeat 3] [--sip-rate 2000] [--only NAME,NAME]
Prints a Markdown table. Loopback only; every process it starts is stopped at the end.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from token_endpoint import Server, post, run_threads, sip_bench  # noqa: E402

PASSWORD = "Bench-Passw0rd-42"


def build_hog(folder):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hog.c")
    out = os.path.join(folder, "hog")
    subprocess.run(["gcc", "-O2", "-o", out, src], check=True)
    return out


def start(binary, d, argon2):
    srv = Server(binary, d)
    with open(srv.cfg, "a") as f:
        f.write(f"[users]\nargon2_memory_kib = {argon2[0]}\nargon2_iterations = {argon2[1]}\n")
    srv.cli("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    secret = [
        line.split("=", 1)[1]
        for line in srv.cli("client", "add", "Bench", "--id", "bench", "--grant",
                            "client_credentials", "--grant", "password",
                            "--scope", "sip.register").splitlines()
        if line.startswith("client_secret=")
    ][0]
    csv = os.path.join(d, "users.csv")
    srv.cli("sipp-users", "--count", "200", "--prefix", "bench", "--out", csv)
    srv.start()
    return srv, f"bench:{secret}", csv


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default="target/release/sipreg")
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sip-rate", type=int, default=2000)
    p.add_argument("--small-iterations", type=int, default=120)
    p.add_argument("--only", default="")
    a = p.parse_args()
    binary = os.path.abspath(a.bin)
    names = ["alone", "password", "password-small", "client_credentials", "idle-spin", "idle-mem"]
    if a.only:
        names = [n for n in names if n in a.only.split(",") or n == "alone"]
    results = {n: [] for n in names}
    logins = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as big, tempfile.TemporaryDirectory() as small, \
            tempfile.TemporaryDirectory() as tools:
        hog = build_hog(tools)
        servers = {"big": start(binary, big, (19456, 2))}
        if "password-small" in names:
            servers["small"] = start(binary, small, (256, a.small_iterations))
        try:
            for _ in range(a.repeat):
                for name in names:
                    srv, basic, csv = servers["small" if name == "password-small" else "big"]
                    bg, stop = None, None
                    if name.startswith("password") or name == "client_credentials":
                        body = ({"grant_type": "client_credentials"} if name == "client_credentials"
                                else {"grant_type": "password", "username": "alice",
                                      "password": PASSWORD})
                        flood = {}
                        bg = threading.Thread(target=lambda: flood.update(r=run_threads(
                            srv, 8, a.seconds + 2,
                            lambda conn, _: post(conn, body, basic)[0] == 200)))
                        bg.start()
                    elif name.startswith("idle-"):
                        kind = name.split("-")[1]
                        stop = [subprocess.Popen(["chrt", "-i", "0", hog, kind]) for _ in range(2)]
                    time.sleep(0.5)
                    r = sip_bench(srv, csv, a.sip_rate, a.seconds)
                    if bg:
                        bg.join()
                        logins[name].append(flood["r"][0] / flood["r"][2])
                    for h in stop or []:
                        h.kill()
                        h.wait()
                    results[name].append(r)
                    time.sleep(1)
        finally:
            for srv, _, _ in servers.values():
                srv.stop()
    print(f"| SIP REGISTER {a.sip_rate}/s, cached Bearer, {a.seconds} s × {a.repeat} | "
          "p50 | p99 (median; each run) | p99.9 | max | background grants/s |")
    print("|---|---|---|---|---|---|")
    for n in names:
        rs = results[n]
        med = lambda k: statistics.median(r["latency"][k] for r in rs) / 1000
        each = "/".join(f"{r['latency']['p99_us'] / 1000:.2f}" for r in rs)
        g = f"{statistics.median(logins[n]):,.0f}" if logins[n] else "–"
        print(f"| {n} | {med('p50_us'):.2f} ms | {med('p99_us'):.2f} ms ({each}) | "
              f"{med('p999_us'):.2f} ms | {med('max_us'):.2f} ms | {g} |")


if __name__ == "__main__":
    main()
