#!/usr/bin/env python3
"""Load client of tests/bench/elastic.sh (python3 standard library only).

  elastic_load.py step --port P [--control SOCKET] [--before 1] [--after 32] [--warm 2] [--duration 10]
                       [--period-ms 400] [--handler-ms 50]
      BEFORE clients for WARM seconds, then AFTER clients for DURATION seconds (the new ones join within one
      PERIOD). Each client sends one request on a new connection every PERIOD ms (at once after the answer
      when that took longer; 0: back to back).
      Prints one line of key=value figures about the DURATION seconds after the step:
        drain      seconds from the step until the latency of new requests is back under 2x HANDLER ms and
                   stays there for a second ("never" when it does not within DURATION)
        queue_peak, queue_drain   the deepest accept queue (sum over listeners, from the control socket's
                   status, sampled every 100 ms) and when it was first empty again after that peak
        workers_max, workers_max_at   the most workers the status reported, and when it first did
        p50_ms, p99_ms   latency of the requests started after the step
        rps        answers within the DURATION seconds, per second
        errors, requests
  elastic_load.py first-byte --port P
      Connects to 127.0.0.1:P, sends a request and prints the milliseconds from the connect to the first byte.
  elastic_load.py cold --port P -- COMMAND...
      Starts COMMAND, connects to 127.0.0.1:P as soon as something listens there and prints the milliseconds
      from the start of COMMAND to the first byte of the answer; then stops COMMAND with SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def request(port, timeout=30.0):
    """One request on a new connection: (ok, seconds to the first byte, seconds to the end)."""
    start = time.monotonic()
    first = None
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(REQUEST)
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                if first is None:
                    first = time.monotonic() - start
                data += chunk
    except OSError:
        return False, first, time.monotonic() - start
    return data.startswith(b"HTTP/1.1 200 "), first, time.monotonic() - start


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * p / 100.0 + 0.999) - 1))]


class StatusPoller(threading.Thread):
    """Samples (time, accept queue over all listeners, workers) from preforkctl's control socket."""

    def __init__(self, path, origin):
        super().__init__(daemon=True)
        self.path = path
        self.origin = origin
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        conn = None
        reader = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    conn.settimeout(2.0)
                    conn.connect(self.path)
                    reader = conn.makefile("rb")
                conn.sendall(b'{"v":1,"cmd":"status"}\n')
                answer = json.loads(reader.readline())
                status = answer.get("status", {})
                queue = sum(listener.get("queue") or 0 for listener in status.get("listeners", []))
                self.samples.append((time.monotonic() - self.origin, queue, status.get("workers", 0)))
            except (OSError, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
            self.stop.wait(0.1)
        if conn is not None:
            conn.close()


def step(args):
    records = []  # (start relative to the step, seconds, ok)
    lock = threading.Lock()
    stop_at = [0.0]
    step_at = time.monotonic() + args.warm
    period = args.period_ms / 1000.0

    def client(begin):
        while True:
            now = time.monotonic()
            if now < begin:
                time.sleep(begin - now)
                continue
            if now >= stop_at[0]:
                return
            ok, _, seconds = request(args.port)
            with lock:
                records.append((now - step_at, seconds, ok))
            if period > 0:
                left = now + period - time.monotonic()
                if left > 0:
                    time.sleep(left)

    stop_at[0] = step_at + args.duration
    poller = StatusPoller(args.control, step_at) if args.control else None
    if poller:
        poller.start()
    # The first BEFORE clients run from now on; the others join at the step, spread over one period so that
    # their requests do not arrive in lockstep for ever after.
    def begin(i):
        if i < args.before:
            return time.monotonic()
        return step_at + period * (i - args.before) / max(1, args.after - args.before)

    threads = [threading.Thread(target=client, args=(begin(i),), daemon=True) for i in range(args.after)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if poller:
        poller.stop.set()
        poller.join()

    after = [(start, seconds, ok) for start, seconds, ok in records if start >= 0]
    limit = 2 * args.handler_ms / 1000.0
    # Drain: the first 250 ms bin from which four bins in a row (a second) have every latency under the limit.
    bins = {}
    for start, seconds, ok in after:
        bins.setdefault(int(start / 0.25), []).append(seconds if ok else float("inf"))
    drain = "never"
    last_bin = int(args.duration / 0.25)
    for first in range(0, last_bin - 3):
        window = [bins.get(b) for b in range(first, first + 4)]
        if all(w and max(w) < limit for w in window):
            drain = "%.2f" % (first * 0.25)
            break
    figures = {"drain": drain}
    if poller and poller.samples:
        after_samples = [s for s in poller.samples if 0 <= s[0] <= args.duration]
        peak_at, peak = 0.0, 0
        for at, queue, _ in after_samples:
            if queue > peak:
                peak_at, peak = at, queue
        empty = 0.0 if peak == 0 else next((at for at, queue, _ in after_samples if at >= peak_at and queue == 0), None)
        workers_max = max(s[2] for s in poller.samples)
        workers_max_at = next(at for at, _, workers in poller.samples if workers == workers_max)
        figures.update(queue_peak=peak, queue_drain="never" if empty is None else "%.2f" % empty,
                       workers_max=workers_max, workers_max_at="%.2f" % max(0.0, workers_max_at))
    else:
        figures.update(queue_peak="-", queue_drain="-", workers_max="-", workers_max_at="-")
    latencies = [seconds * 1000 for _, seconds, ok in after if ok]
    # Requests/s: the answers that arrived within the DURATION seconds (a request still queued at the end
    # has its latency counted above, but not its answer here).
    answered = sum(1 for start, seconds, ok in after if ok and start + seconds <= args.duration)
    figures.update(p50_ms="%.0f" % percentile(latencies, 50), p99_ms="%.0f" % percentile(latencies, 99),
                   rps="%.1f" % (answered / args.duration), errors=sum(1 for r in after if not r[2]),
                   requests=len(after))
    print(" ".join("%s=%s" % item for item in figures.items()))


def first_byte(args):
    ok, first, _ = request(args.port)
    if not ok or first is None:
        sys.exit("no answer from 127.0.0.1:%d" % args.port)
    print("%.2f" % (first * 1000))


def cold(args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if process.poll() is not None:
                sys.exit("the command exited with status %d" % process.returncode)
            try:
                conn = socket.create_connection(("127.0.0.1", args.port), timeout=30.0)
                break
            except ConnectionRefusedError:
                time.sleep(0.0005)
        with conn:
            conn.sendall(REQUEST)
            if not conn.recv(1):
                sys.exit("closed without an answer")
            print("%.2f" % ((time.monotonic() - start) * 1000))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="mode", required=True)
    s = commands.add_parser("step")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--control", default="")
    s.add_argument("--before", type=int, default=1)
    s.add_argument("--after", type=int, default=32)
    s.add_argument("--warm", type=float, default=2.0)
    s.add_argument("--duration", type=float, default=10.0)
    s.add_argument("--period-ms", type=float, default=400.0)
    s.add_argument("--handler-ms", type=float, default=50.0)
    f = commands.add_parser("first-byte")
    f.add_argument("--port", type=int, required=True)
    c = commands.add_parser("cold")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    {"step": step, "first-byte": first_byte, "cold": cold}[args.mode](args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
