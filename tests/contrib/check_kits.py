#!/usr/bin/python3
"""Checks the container kits of contrib/ (Dockerfile, compose.yaml, the Kubernetes Deployment) as far as a
machine without a container engine allows, and says what it ran.

For each kit it reads the command line the container would run (ENTRYPOINT + CMD, entrypoint + command,
the image's ENTRYPOINT + the pod's args), checks the settings around it that preforkctl depends on, and
then runs that very command line with the built binaries in place of the image's paths and test ports in
place of the fixed ones: the HTTP readiness check must be answered, the health or liveness command
(`preforkctl ctl status`) must succeed against it, and SIGTERM must stop it with status 0 well within the
grace period the kit gives.

usage: check_kits.py PREFORKCTL HELLO_SERVER  (ctest runs it; needs python3-yaml)
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFORKCTL, HELLO_SERVER = sys.argv[1], sys.argv[2]
IMAGE_PATHS = {"/usr/bin/preforkctl": PREFORKCTL, "/usr/local/bin/hello_server": HELLO_SERVER}
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "dash", "/bin/dash"}
failures = []


def fail(kit, message):
    failures.append(f"{kit}: {message}")
    print(f"FAIL {kit}: {message}", file=sys.stderr)


def seconds(text):
    """A preforkctl or Compose duration ("20s", "1m", "500ms") in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m)", str(text))
    if not match:
        raise ValueError(f"not a duration: {text}")
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60}[match[2]]


def option(args, name):
    """The value of option NAME in a preforkctl command line (before `--`), or None."""
    own = args[: args.index("--")] if "--" in args else args
    return own[own.index(name) + 1] if name in own else None


def dockerfile():
    """The Dockerfile's instructions as (KEYWORD, text) pairs, continuation lines joined."""
    text = open(os.path.join(ROOT, "contrib/docker/Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def exec_form(kit, what, text):
    """A JSON-array instruction (exec form: no shell in between), or a failure."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        fail(kit, f"{what} is not in exec form (a JSON array): {text}")
        return []
    return value


def no_shell(kit, command):
    if command and (command[0] in SHELLS or "-c" in command[:2]):
        fail(kit, f"runs a shell: {command}")


def check_dockerfile():
    kit = "contrib/docker/Dockerfile"
    instructions = dockerfile()
    stages = [text for keyword, text in instructions if keyword == "FROM"]
    if len(stages) < 2 or not stages[0].startswith("debian:12 ") or not stages[-1].startswith("debian:12-slim"):
        fail(kit, f"want a debian:12 build stage and a debian:12-slim runtime stage, found {stages}")
    if "scratch AS static" not in stages:
        fail(kit, "no `static` stage holding only the static binary")
    runtime = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    last = {keyword: text for keyword, text in instructions[runtime:]}
    if not re.fullmatch(r"\d+(:\d+)?", last.get("USER", "")):
        fail(kit, f"USER is not numeric: {last.get('USER')}")
    if last.get("STOPSIGNAL") not in ("SIGTERM", "TERM"):
        fail(kit, f"STOPSIGNAL is {last.get('STOPSIGNAL')}, not SIGTERM")
    entrypoint = exec_form(kit, "ENTRYPOINT", last.get("ENTRYPOINT", ""))
    command = entrypoint + exec_form(kit, "CMD", last.get("CMD", ""))
    health = exec_form(kit, "HEALTHCHECK CMD", last.get("HEALTHCHECK", "").split(" CMD ", 1)[-1])
    no_shell(kit, command)
    no_shell(kit, health)
    # docker stop waits 10 s by default before SIGKILL.
    stop = option(command, "--stop-timeout")
    if stop is None or seconds(stop) >= 10:
        fail(kit, f"--stop-timeout {stop} does not fit docker stop's 10 s")
    return kit, entrypoint, command, health, 10


def check_compose(entrypoint):
    kit = "contrib/docker/compose.yaml"
    service = yaml.safe_load(open(os.path.join(ROOT, kit)))["services"]["web"]
    command = entrypoint + service["command"]
    no_shell(kit, command)
    if not re.fullmatch(r"\d+(:\d+)?", str(service.get("user", ""))):
        fail(kit, f"user is not numeric: {service.get('user')}")
    if "cpus" not in service:
        fail(kit, "no cpus: -n auto would follow the host's CPUs")
    grace = seconds(service.get("stop_grace_period", "10s"))
    stop = option(command, "--stop-timeout")
    if stop is None or seconds(stop) >= grace:
        fail(kit, f"--stop-timeout {stop} does not fit stop_grace_period {grace} s")
    if service["build"]["dockerfile"] != "contrib/docker/Dockerfile":
        fail(kit, "does not build contrib/docker/Dockerfile")
    return kit, command, [PREFORKCTL, "ctl", "status"], grace


def check_deployment(entrypoint):
    kit = "contrib/kubernetes/deployment.yaml"
    documents = [d for d in yaml.safe_load_all(open(os.path.join(ROOT, kit))) if d]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container.get("command", entrypoint) + container.get("args", [])
    no_shell(kit, command)
    if "cpu" not in container.get("resources", {}).get("limits", {}):
        fail(kit, "no CPU limit: -n auto would follow the node's CPUs")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    stop = option(command, "--stop-timeout")
    if stop is None or seconds(stop) >= grace:
        fail(kit, f"--stop-timeout {stop} is not below terminationGracePeriodSeconds {grace}")
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    if not isinstance(context.get("runAsUser"), int) or not context.get("runAsNonRoot"):
        fail(kit, "the pod does not run as a numeric non-root user")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    readiness = container["readinessProbe"]["httpGet"]
    listen = option(command, "-l") or option(command, "--listen")
    if ports.get(readiness["port"], readiness["port"]) != int(listen.split(",")[0].rsplit(":", 1)[1]):
        fail(kit, f"the readiness probe's port {readiness['port']} is not the listener {listen}")
    liveness = container["livenessProbe"]["exec"]["command"]
    no_shell(kit, liveness)
    return kit, command, liveness, grace


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local(command, port):
    """The container's command line for this machine: built binaries, loopback test ports."""
    out = []
    for arg in command:
        arg = IMAGE_PATHS.get(arg, arg)
        arg = re.sub(r"^:8080\b", f"127.0.0.1:{port}", arg)
        arg = re.sub(r"^:9100$", "127.0.0.1:0", arg)
        out.append(arg)
    return out


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def answered(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return response.status == 200 and b"pid=" in response.read()
    except OSError:
        return False


def run(kit, command, health, grace):
    """Runs the kit's command line as the container would, probes it, stops it as the runtime would."""
    port = free_port()
    argv = local(command, port)
    with tempfile.TemporaryDirectory() as runtime:
        # Its own XDG_RUNTIME_DIR: the control socket, and so `ctl status`, cannot meet another preforkctl.
        env = {**os.environ, "XDG_RUNTIME_DIR": runtime}
        plan = subprocess.run(argv[:1] + ["--print-plan"] + argv[1:], env=env, capture_output=True, text=True)
        if plan.returncode != 0:
            fail(kit, f"--print-plan exit {plan.returncode}: {plan.stderr.strip()}")
            return
        log = open(os.path.join(runtime, "log"), "w+")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_until(lambda: answered(port), 20):
                fail(kit, "the readiness request was not answered")
                return
            status = subprocess.run(local(health, port), env=env, capture_output=True, text=True, timeout=10)
            if status.returncode != 0 or "slot" not in status.stdout.lower():
                fail(kit, f"{' '.join(health)} exit {status.returncode}: {status.stdout}{status.stderr}")
            start = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=grace)
            if code != 0:
                fail(kit, f"exit {code} after SIGTERM")
            print(f"ran {kit}: served on 127.0.0.1:{port}, '{' '.join(health[1:])}' answered, "
                  f"stopped by SIGTERM in {time.monotonic() - start:.2f} s (grace {grace} s)")
        except subprocess.TimeoutExpired:
            fail(kit, f"did not stop within the grace period of {grace} s")
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            if failures:
                log.seek(0)
                print(log.read(), file=sys.stderr)
            log.close()


def main():
    kit, entrypoint, command, health, grace = check_dockerfile()
    kits = [(kit, command, health, grace), check_compose(entrypoint), check_deployment(entrypoint)]
    for kit, command, health, grace in kits:
        run(kit, command, health, grace)
    if failures:
        sys.exit(f"{len(failures)} failure(s)")


main()
