#!/usr/bin/env bash
# "Works in a scratch image", tested: puts the static preforkctl and the static probe_worker of BUILD_DIR
# (a -DPREFORKCTL_STATIC=ON build) into an otherwise empty directory with an /etc/passwd and /etc/group of
# its own, and runs preforkctl there as PID 1 of new pid and mount namespaces (unshare, chroot). It checks
# what an image without a loader, libraries or a shell needs from its entrypoint: -V; N workers on one
# listening socket with the right LISTEN_FDS/LISTEN_PID that serve a connection; an orphaned grandchild
# reaped, no zombie left; SIGTERM forwarded, the workers gone and exit status 0; --user by a name only the
# root's /etc/passwd knows, and by numbers. Every wait has a deadline. Needs root.
#
#   bash tests/static/check.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: check.sh BUILD_DIR}
preforkctl=$build/src/preforkctl
worker=$build/tests/probe_worker
for program in "$preforkctl" "$worker"; do
    [[ -x $program ]] || { echo "check.sh: $program is missing (build the preforkctl and probe_worker targets)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "check.sh: needs root (unshare --pid, chroot)" >&2; exit 1; }

root=$(mktemp -d /tmp/preforkctl-scratch.XXXXXX)
logs=$(mktemp -d /tmp/preforkctl-scratch-logs.XXXXXX)
running=()  # host pids of the unshare processes still running
cleanup() {
    # --kill-child: when unshare dies, preforkctl and everything in its namespace go too; timeout passes TERM on.
    for pid in "${running[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$root" "$logs"
}
trap cleanup EXIT

# The root: the two programs, the account files, what every container runtime gives even a scratch image
# (/proc, mounted below, and /dev/null: workers get it as stdin) and a report directory that the workers can
# write as any user.
cp "$preforkctl" "$root/preforkctl"
cp "$worker" "$root/probe_worker"
chmod 755 "$root"  # mktemp made it 0700: --user workers must reach their program
mkdir -p "$root/etc" "$root/proc" "$root/dev" "$root/reports"
mknod -m 666 "$root/dev/null" c 1 3
chmod 1777 "$root/reports"
# A user and a group that the host does not have, so that a lookup that reached the host's files would fail.
printf 'root:x:0:0:root:/:/preforkctl\nscratchuser:x:4242:4343::/:/preforkctl\n' >"$root/etc/passwd"
printf 'root:x:0:\nscratchgroup:x:4343:\n' >"$root/etc/group"

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
pass() { echo "ok: $*" >&2; }

# Polls the command "$@" every 20 ms until it succeeds or SECONDS_ seconds have passed.
wait_for() {
    local seconds=$1 deadline
    shift
    deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.02
    done
}

# A snapshot of the host's processes: parent_of[PID] and state_of[PID] from /proc/PID/stat (read with
# builtins only: this runs every 20 ms while polling).
declare -A parent_of state_of
scan() {
    local file stat fields pid
    parent_of=() state_of=()
    for file in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$file" || continue
        pid=${stat%% *}
        # The command name may hold spaces and parentheses: the fields that follow come after the last ") ".
        read -r -a fields <<<"${stat##*) }"
        state_of[$pid]=${fields[0]}
        parent_of[$pid]=${fields[1]}
    done
}
# Children and all descendants of PID in the last scan, one a line.
children_of() {
    local pid
    for pid in "${!parent_of[@]}"; do [[ ${parent_of[$pid]} == "$1" ]] && echo "$pid"; done
    return 0
}
descendants_of() {
    local child
    for child in $(children_of "$1"); do
        echo "$child"
        descendants_of "$child"
    done
}
zombies_under() {
    local count=0 pid
    for pid in $(descendants_of "$1"); do [[ ${state_of[$pid]:-} == Z ]] && count=$((count + 1)); done
    echo "$count"
}
# The pid that host pid PID has in its innermost pid namespace (the last NSpid field).
inner_pid() { awk '/^NSpid:/ { print $NF }' "/proc/$1/status" 2>/dev/null; }
# True when PID blocks SIG (a number): preforkctl blocks the signals it handles before it starts anything,
# and a PID 1 drops a signal it neither handles nor blocks, so a signal sent earlier would test the kernel.
blocks() {
    local mask
    mask=$(awk '/^SigBlk:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    [[ -n $mask ]] && (((0x$mask >> ($2 - 1)) & 1))
}

# Starts preforkctl ARGS as PID 1 in the root, in the background (stdout and stderr in $logs/NAME.out/.err);
# sets `started` to the pid of the process tree's top, `timeout`, whose child is unshare, whose child is
# preforkctl. PROBE_DIR reaches the workers through preforkctl's environment.
start() {
    local name=$1
    shift
    PROBE_DIR=/reports timeout -s KILL 60 unshare --pid --fork --mount-proc="$root/proc" --kill-child \
        chroot "$root" /preforkctl "$@" >"$logs/$name.out" 2>"$logs/$name.err" &
    started=$!
    running+=("$started")
}
# Sets pid1 to the host pid of preforkctl below `start`'s process STARTED once it has exec'd and blocked
# SIGTERM; fails until then.
find_pid1() {
    local unshare child
    scan
    unshare=$(children_of "$1" | head -n1)
    [[ -n $unshare ]] || return 1
    child=$(children_of "$unshare" | head -n1)
    [[ -n $child && $(cat "/proc/$child/comm" 2>/dev/null) == preforkctl ]] && blocks "$child" 15 && pid1=$child
}
# Waits (SECONDS_ at most) for `start`'s process PID to end; sets `status` to its exit status, 255 on timeout.
finish() {
    local pid=$1 seconds=$2 kept=() other
    if wait_for "$seconds" ended "$pid"; then
        status=0
        wait "$pid" || status=$?
        for other in "${running[@]}"; do [[ $other == "$pid" ]] || kept+=("$other"); done
        running=("${kept[@]}")
    else
        status=255
    fi
}
ended() { scan; [[ -z ${state_of[$1]:-} || ${state_of[$1]} == Z ]]; }
# Like wait_for, but gives up at once when `start`'s process RUN has ended: a preforkctl that cannot even
# run in the root must not cost every deadline in turn.
wait_while_running() {
    local run=$1 deadline=$((SECONDS + $2))
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) && ! ended "$run" || return 1
        sleep 0.02
    done
}
report_count() { local files=("$root/reports"/*.report); [[ -e ${files[0]} ]] && echo ${#files[@]} || echo 0; }
reports_at_least() { (($(report_count) >= $1)); }
field() { sed -n "s/^$2=//p" "$1"; }

# ---- -V, in a root without /proc ----
if version=$(chroot "$root" /preforkctl -V 2>&1) && [[ $version == *preforkctl* ]]; then
    pass "-V: $version"
else
    fail "-V in the root: $version"
fi

# ---- PID 1: workers on one socket, a served connection, an orphan reaped, SIGTERM ----
# Each worker forks three children that fork once more and exit at once: the grandchildren, orphaned, live
# 1.5 s more, re-parented to PID 1, which must reap them.
start serve -n 2 -l 127.0.0.1:0 -- /probe_worker --orphan-ms 1500 --orphans 3 --serve
run=$started
reported=""
if wait_while_running "$run" 20 reports_at_least 2; then
    for report in "$root/reports"/*.report; do
        pid=$(field "$report" pid)
        reported+=" $pid "
        if [[ $(field "$report" env.LISTEN_FDS) == 1 && $(field "$report" env.LISTEN_PID) == "$pid" &&
              $(field "$report" fd3_accepting) == 1 && $(field "$report" ppid) == 1 ]]; then
            pass "worker $pid: LISTEN_FDS=1, LISTEN_PID its own pid, fd 3 listening, parent is PID 1"
        else
            fail "worker $pid got: $(tr '\n' ' ' <"$report")"
        fi
    done
else
    fail "two workers did not report within 20 s: $(cat "$logs/serve.err")"
fi
port="" answer=""
if wait_while_running "$run" 10 grep -q "listening on 127.0.0.1:" "$logs/serve.err"; then
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logs/serve.err" | head -n1)
    answer=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -n1 <&3" || true)
fi
if [[ $answer == pid=* && $reported == *" ${answer#pid=} "* ]]; then
    pass "a connection to 127.0.0.1:$port was served by worker ${answer#pid=}"
else
    fail "no worker answered on port '$port': '$answer'"
fi

pid1=""
if wait_while_running "$run" 10 find_pid1 "$run"; then
    # Children of preforkctl that are no worker: the re-parented orphans (zombies too, until reaped).
    strays() {
        local pid
        for pid in $(children_of "$pid1"); do [[ $reported == *" $(inner_pid "$pid") "* ]] || echo "$pid"; done
    }
    workers=$(children_of "$pid1")
    if wait_for 10 eval 'scan; [[ -n $(strays) ]]'; then
        pass "orphaned grandchildren were re-parented to preforkctl (PID 1)"
    else
        fail "no orphan reached preforkctl"
    fi
    if wait_for 10 eval 'scan; [[ -z $(strays) && $(zombies_under '"$run"') == 0 ]]'; then
        pass "the orphans were reaped: no zombie left in the namespace"
    else
        fail "left behind: strays $(strays | tr '\n' ' '), $(zombies_under "$run") zombies"
    fi
    kill -TERM "$pid1"
    finish "$run" 20
    if [[ $status == 0 ]]; then pass "SIGTERM: preforkctl exited 0"; else fail "SIGTERM: exit status $status"; fi
    for worker_pid in $workers; do
        if kill -0 "$worker_pid" 2>/dev/null; then fail "worker $worker_pid outlived preforkctl"; fi
    done
else
    fail "preforkctl never ran as PID 1: $(cat "$logs/serve.err")"
fi

# ---- --user: a name from the root's /etc/passwd, and bare numbers ----
check_user() {
    local spec=$1 uid=$2 gid=$3 name=user-${1//:/-} report pid1=""
    rm -f "$root/reports"/*.report
    start "$name" -n 1 --user "$spec" -- /probe_worker --sleep 60000
    local run=$started
    if wait_while_running "$run" 20 reports_at_least 1; then
        report=$(echo "$root/reports"/*.report)
        if [[ $(field "$report" uid) == "$uid" && $(field "$report" gid) == "$gid" ]]; then
            pass "--user $spec: the worker runs as uid $uid, gid $gid"
        else
            fail "--user $spec: the worker runs as uid $(field "$report" uid), gid $(field "$report" gid)"
        fi
    else
        fail "--user $spec: no worker reported: $(cat "$logs/$name.err")"
    fi
    wait_while_running "$run" 10 find_pid1 "$run" && kill -TERM "$pid1"
    finish "$run" 20
    [[ $status == 0 ]] || fail "--user $spec: exit status $status after SIGTERM: $(cat "$logs/$name.err")"
}
check_user scratchuser 4242 4343
check_user 12345:12345 12345 12345

# A user the host has and the root's /etc/passwd has not is refused with one error line: the name above was
# looked up in the root's file, not anywhere else.
start user-unknown -n 1 --user nobody -- /probe_worker
finish "$started" 20
if [[ $status == 2 && $(cat "$logs/user-unknown.err") == "preforkctl: error: --user: unknown user 'nobody'" ]]; then
    pass "--user nobody (known to the host, not to the root): refused with one error line"
else
    fail "--user nobody: status $status, stderr: $(cat "$logs/user-unknown.err")"
fi

if ((failures > 0)); then
    echo "check.sh: $failures check(s) failed in the scratch root" >&2
    exit 1
fi
echo "check.sh: the static preforkctl works in a scratch root" >&2
