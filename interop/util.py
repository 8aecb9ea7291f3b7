#!/usr/bin/env python3
"""Small helpers for run.sh, so it needs nothing beyond Python (no curl, no ss):

  util.py free-ports N                  N free TCP ports on 127.0.0.1, space-separated
  util.py wait-http URL SECS [PID]      until URL answers 2xx (fails early if process PID is gone)
  util.py wait-line FILE PREFIX SECS [PID]
                                        until FILE has a line starting with PREFIX; prints the rest
  util.py endpoint-id NAME              the id of a Nexus endpoint, from `temporal ... endpoint get -o json` on stdin
"""
import json
import os
import socket
import sys
import time
import urllib.request


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(int(pid), 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def free_ports(n):
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_http(url, secs, pid=None):
    deadline = time.monotonic() + secs
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not alive(pid):
            sys.exit(f"process {pid} exited while waiting for {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if 200 <= r.status < 300:
                    return
                last = f"HTTP {r.status}"
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last = repr(e)
        time.sleep(0.05)
    sys.exit(f"{url} did not answer within {secs} s (last: {last})")


def wait_line(path, prefix, secs, pid=None):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(prefix):
                        print(line[len(prefix):].strip())
                        return
        except FileNotFoundError:
            pass
        if not alive(pid):
            sys.exit(f"process {pid} exited before writing {prefix!r} to {path}")
        time.sleep(0.05)
    sys.exit(f"no line starting with {prefix!r} in {path} within {secs} s")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "free-ports":
        print(" ".join(map(str, free_ports(int(argv[2])))))
    elif cmd == "wait-http":
        wait_http(argv[2], float(argv[3]), argv[4] if len(argv) > 4 else None)
    elif cmd == "wait-line":
        wait_line(argv[2], argv[3], float(argv[4]), argv[5] if len(argv) > 5 else None)
    elif cmd == "endpoint-id":
        print(json.load(sys.stdin)["id"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
