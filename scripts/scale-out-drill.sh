#!/usr/bin/env bash
# Tenant-move drill for cairn (see docs/scale-out.md).
#
# Two "app servers" on this machine: server a and server b, each a tenants directory
# replicated by its own `litestream replicate` (directory watcher) to its own prefix of
# one store: a file replica (default) or an SFTP server (--replica sftp: Debian's
# openssh-server on a localhost port with throwaway keys). One writer process
# (examples/scale_out_load.rs) hosts both servers' `cairn::Tenants` and routes every write
# by the routing table file. N tenants start on server a; under the write load, each one
# is moved to server b:
#
#   drain on a (Tenants::drain: writes refused, calls in flight finished, file locked)
#   -> litestream sync -wait (a's replica has the last WAL frame)
#   -> litestream restore -integrity-check full into b's .incoming/<id>/
#   -> cairn stats --json: last_seq >= the drain's high-water mark; cairn check --full
#   -> rename(2) into b's directory -> route updated -> litestream stop on a
#   -> old copy removed on a (Drained::moved: a tombstone stays)
#
# After the last move the load stops, and every acknowledged write (before, during and
# after its tenant's move) must be in the tenant's file on server b, and a restore of
# each tenant from server b's replica must hold exactly those writes; writes refused
# during a drain are counted as refused, not lost. Prints per-tenant move time
# (p50/p99/max) and tenants moved per minute; exits non-zero on any loss or failed move.
#
#   scripts/scale-out-drill.sh                    # 100 tenants, file replica
#   scripts/scale-out-drill.sh --replica sftp     # 100 tenants, SFTP replica on localhost
#   scripts/scale-out-drill.sh --short            # CI: 20 tenants
#   scripts/scale-out-drill.sh --help             # every option
#
# Environment: CAIRN_DRILL_DIR (default target/scale-out-drill: venv, run files),
# LITESTREAM (a litestream binary instead of the venv's), CAIRN_BIN and CAIRN_LOAD
# (prebuilt binaries instead of `cargo build`), CARGO_TARGET_DIR (honoured by cargo).
set -euo pipefail

usage() {
    cat <<EOF
usage: $0 [options]
  --tenants N            tenants to move from server a to server b (default 100)
  --short                CI form: --tenants 20 --warmup 1
  --threads N            writer threads of the load (default 4)
  --rate N               writes per second over all tenants, 0 = unlimited (default 200)
  --warmup S             seconds of writes before the first move (default 2)
  --replica file|sftp    the store: a directory, or an SFTP server on localhost (default file)
  --sftp-port P          the SFTP server's port (default 22022)
  --monitor-interval D   Litestream monitor-interval (default 100ms)
  --sync-interval D      Litestream replica sync-interval (default 100ms)
  --release              build release binaries (default: debug)
EOF
}

tenants=100
threads=4
rate=200
warmup=2
replica=file
sftp_port=22022
monitor=100ms
sync=100ms
profile=debug
while (($#)); do
    case $1 in
        --tenants) tenants=$2; shift ;;
        --short) tenants=20; warmup=1 ;;
        --threads) threads=$2; shift ;;
        --rate) rate=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --replica) replica=$2; shift ;;
        --sftp-port) sftp_port=$2; shift ;;
        --monitor-interval) monitor=$2; shift ;;
        --sync-interval) sync=$2; shift ;;
        --release) profile=release ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
[[ $replica == file || $replica == sftp ]] || { usage >&2; exit 2; }

log() { printf '%s\n' "$*"; }
die() { printf 'drill: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
drill_dir=${CAIRN_DRILL_DIR:-target/scale-out-drill}
mkdir -p "$drill_dir"
drill_dir=$(cd "$drill_dir" && pwd)

# shellcheck source=lib/litestream.sh
source "$root/scripts/lib/litestream.sh"
find_litestream "$drill_dir/venv"

if [[ -n ${CAIRN_BIN:-} && -n ${CAIRN_LOAD:-} ]]; then
    cairn=$CAIRN_BIN
    load=$CAIRN_LOAD
else
    build=(cargo build --quiet --bin cairn --example scale_out_load)
    [[ $profile == release ]] && build+=(--release)
    log "drill: ${build[*]}"
    "${build[@]}"
    target=$(cargo metadata --no-deps --format-version 1 |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    cairn=$target/$profile/cairn
    load=$target/$profile/examples/scale_out_load
fi
[[ -x $cairn && -x $load ]] || die "missing $cairn or $load"

# --- A fresh run directory --------------------------------------------------------------
run=$drill_dir/run-$replica
rm -rf "$run"
mkdir -p "$run/a/tenants" "$run/b/tenants" "$run/b/tenants/.incoming" "$run/store" "$run/logs"
chmod 700 "$run"
dir_a=$run/a/tenants
dir_b=$run/b/tenants
routes=$run/routes.txt
acks=$run/logs/acks.txt

pids=()
# Stops what the drill started: SIGTERM (Litestream then syncs each database once more),
# a second one after 5 s (Litestream skips what is left), SIGKILL after 10 s.
cleanup() {
    local pid n
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ((n = 0; n < 100; n++)); do
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then
                ((n == 50)) && kill "$pid" 2>/dev/null
                ((n == 99)) && kill -KILL "$pid" 2>/dev/null
                sleep 0.1
                continue 2
            fi
        done
        break
    done
    return 0
}
trap cleanup EXIT

# --- The store ------------------------------------------------------------------------
# Prints a replica block (indented for a dbs entry) for the prefix $1 of the store.
replica_yaml() {
    if [[ $replica == file ]]; then
        printf '    replica:\n      type: file\n      path: %s\n      sync-interval: %s\n' "$run/store/$1" "$sync"
    else
        printf '    replica:\n      type: sftp\n      host: 127.0.0.1:%s\n      user: %s\n      key-path: %s\n      host-key: "%s"\n      path: %s\n      sync-interval: %s\n' \
            "$sftp_port" "$(id -un)" "$run/ssh/client_key" "$(cat "$run/ssh/host_key.pub")" "$run/store/$1" "$sync"
    fi
}

if [[ $replica == sftp ]]; then
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    [[ -x $sshd ]] || die "--replica sftp needs sshd (on Debian: apt-get install openssh-server)"
    command -v ssh-keygen >/dev/null || die "--replica sftp needs ssh-keygen (openssh-client)"
    mkdir -p "$run/ssh"
    chmod 700 "$run/ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$run/ssh/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$run/ssh/client_key"
    cp "$run/ssh/client_key.pub" "$run/ssh/authorized_keys"
    # sshd wants its privilege-separation directory even when it runs unprivileged work.
    mkdir -p /run/sshd 2>/dev/null || true
    cat >"$run/ssh/sshd_config" <<EOF
Port $sftp_port
ListenAddress 127.0.0.1
HostKey $run/ssh/host_key
AuthorizedKeysFile $run/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $run/ssh/sshd.pid
Subsystem sftp internal-sftp
# Litestream opens one SSH connection per database, all at its start: sshd's default
# (MaxStartups 10:30:100) drops most of 100 concurrent handshakes, and Litestream exits.
MaxStartups 1000
EOF
    "$sshd" -D -e -f "$run/ssh/sshd_config" >"$run/logs/sshd.log" 2>&1 &
    pids+=($!)
    deadline=$(($(now_ms) + 10000))
    until grep -q 'Server listening' "$run/logs/sshd.log"; do
        kill -0 "${pids[-1]}" 2>/dev/null || die "sshd exited: $(tail -n3 "$run/logs/sshd.log")"
        (($(now_ms) < deadline)) || die "sshd did not start in 10 s; see $run/logs/sshd.log"
        sleep 0.05
    done
fi

# --- The servers' Litestream ------------------------------------------------------------
for server in a b; do
    {
        printf 'socket:\n  enabled: true\n  path: %s\n' "$run/$server/litestream.sock"
        printf 'dbs:\n  - dir: %s\n    pattern: "*.db"\n    watch: true\n    monitor-interval: %s\n' \
            "$run/$server/tenants" "$monitor"
        replica_yaml "$server"
    } >"$run/$server/litestream.yml"
done

# The restore of tenant $2 from server $1's prefix: a one-database configuration (the
# directory entry cannot be restored by path, and an SFTP URL cannot carry the key).
restore_config() {
    printf 'dbs:\n  - path: %s\n' "$run/$1/tenants/$2.db"
    replica_yaml "$1/$2.db"
}

"$load" create "$tenants" "a=$dir_a"
for ((i = 0; i < tenants; i++)); do printf 't%03d a\n' "$i"; done >"$routes"

for server in a b; do
    "$litestream" replicate -config "$run/$server/litestream.yml" >"$run/logs/litestream-$server.log" 2>&1 &
    pids+=($!)
done
# Writes wait until Litestream has set up every tenant, plus monitor-interval + 1 s
# (docs/litestream.md: it needs the write lock once to create its table).
deadline=$(($(now_ms) + 60000))
until (($(grep -c 'msg="initialized db"' "$run/logs/litestream-a.log" || true) >= tenants)); do
    (($(now_ms) < deadline)) || die "litestream a did not initialize $tenants tenants in 60 s; see $run/logs"
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || die "a process exited; see $run/logs"; done
    sleep 0.1
done
for server in a b; do
    [[ -S $run/$server/litestream.sock ]] || die "litestream $server has no control socket"
done
sleep "$(awk -v m="${monitor%ms}" 'BEGIN { printf "%.3f", m / 1000 + 1 }')"

log "drill: litestream $("$litestream" version), $replica replica, monitor-interval $monitor, sync-interval $sync"
log "drill: $tenants tenants from server a to server b, $threads writer threads at $rate writes/s in all (0 = unlimited)"
log "drill: files in $run"

# --- The load, with its control channel -----------------------------------------------
coproc LOAD { exec "$load" run "$routes" "$acks" "$threads" "$rate" "a=$dir_a" "b=$dir_b" 2>"$run/logs/load.err"; }
pids+=("$LOAD_PID")
load_in=${LOAD[1]}
load_out=${LOAD[0]}
# Sends one command to the load and prints its reply.
ctl() {
    local reply
    printf '%s\n' "$1" >&"$load_in"
    IFS= read -r -t 60 reply <&"$load_out" || die "the load did not answer \"$1\"; see $run/logs/load.err"
    printf '%s\n' "$reply"
}

deadline=$(($(now_ms) + 30000))
until grep -q '^ack ' "$acks" 2>/dev/null; do
    kill -0 "$LOAD_PID" 2>/dev/null || die "the load exited: $(tail -n3 "$run/logs/load.err")"
    (($(now_ms) < deadline)) || die "no write acknowledged in 30 s; see $run/logs"
    sleep 0.05
done
sleep "$warmup"

# Replaces the route of tenant $1 with server $2: a new file renamed over the old one,
# so the router reads the old table or the new one, never half of one.
set_route() {
    awk -v id="$1" -v to="$2" '$1 == id { $2 = to } { print }' "$routes" >"$routes.tmp"
    mv -f "$routes.tmp" "$routes"
}

# Forces syncs of tenant $2 on server $1 (up to 5) until Litestream reports its replica at
# the database's transaction; prints the last `litestream sync -json` output.
sync_until_replicated() {
    local server=$1 id=$2 attempt out txid replica_txid
    for ((attempt = 1; attempt <= 5; attempt++)); do
        if out=$("$litestream" sync -wait -timeout 30 -json -socket "$run/$server/litestream.sock" \
            "$run/$server/tenants/$id.db" 2>&1); then
            txid=$(sed -n 's/.*"txid": *\([0-9]*\).*/\1/p' <<<"$out" | head -n1)
            replica_txid=$(sed -n 's/.*"replica_txid": *\([0-9]*\).*/\1/p' <<<"$out")
            if [[ -n $txid && -n $replica_txid ]] && ((replica_txid >= txid)); then
                printf '%s\n' "$out"
                return 0
            fi
        fi
        printf '%s sync %s attempt %d: %s\n' "$server" "$id" "$attempt" "$(tr '\n' ' ' <<<"$out")" >>"$run/logs/sync-retries.log"
        sleep 0.2
    done
    printf '%s\n' "$out"
    return 1
}

# Moves tenant $1 from a to b; prints the failure and returns non-zero if it could not,
# after handing the tenant back to server a.
move() {
    local id=$1 reply word server seq acked sync_json txid replica_txid scratch stats last
    local t0 t1 t2 t3 t4
    t0=$(now_ms)
    reply=$(ctl "drain $id")
    read -r word _ server seq acked <<<"$reply"
    [[ $word == drained && $server == a ]] || { echo "drain: $reply"; return 1; }
    abort() { echo "$1"; ctl "abort $id" >/dev/null; return 1; }
    t1=$(now_ms)
    # The drained file is quiescent: forced syncs until the replica has its last frame.
    # One `sync -wait` is not always enough: under load it returned with replica_txid
    # one behind txid, or its client timed out on the control socket.
    if ! sync_json=$(sync_until_replicated a "$id"); then
        abort "litestream sync: $sync_json"
        return 1
    fi
    # Restore on b into a folder of its own on b's file system (cairn check builds an
    # index beside the copy; the watcher's pattern does not reach subfolders).
    t2=$(now_ms)
    scratch=$dir_b/.incoming/$id
    rm -rf "$scratch"
    mkdir -p "$scratch"
    restore_config a "$id" >"$scratch/restore.yml"
    "$litestream" restore -config "$scratch/restore.yml" -integrity-check full \
        -o "$scratch/$id.db" "$dir_a/$id.db" >"$scratch/restore.log" 2>&1 ||
        { abort "litestream restore: $(tail -n1 "$scratch/restore.log")"; return 1; }
    t3=$(now_ms)
    stats=$("$cairn" --db "$scratch/$id.db" stats --json 2>&1) || { abort "cairn stats: $stats"; return 1; }
    last=$(sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p' <<<"$stats")
    [[ -n $last ]] && ((last >= seq)) ||
        { abort "the restore ends at change $last, the drain at $seq"; return 1; }
    "$cairn" --db "$scratch/$id.db" check --full >"$scratch/check.log" 2>&1 ||
        { abort "cairn check --full: $(tr '\n' ' ' <"$scratch/check.log")"; return 1; }
    [[ -s $scratch/$id.db-wal ]] && { abort "cairn check left a non-empty WAL"; return 1; }
    t4=$(now_ms)
    chmod 600 "$scratch/$id.db"
    # The promotion: one rename(2) on b's file system, then the route, then the old copy.
    mv -T "$scratch/$id.db" "$dir_b/$id.db" || { abort "rename into $dir_b failed"; return 1; }
    rm -f "$dir_b/$id.db.moved"
    rm -rf "$scratch"
    set_route "$id" b
    # Server a's Litestream lets go of the file (it flushes, then closes it) before the
    # file goes: removed under a running replication, it logs sync errors instead.
    "$litestream" stop -timeout 30 -socket "$run/a/litestream.sock" "$dir_a/$id.db" >>"$run/logs/stop-a.log" 2>&1 ||
        printf 'warning: litestream stop %s failed; see %s\n' "$id" "$run/logs/stop-a.log" >&2
    reply=$(ctl "moved $id b")
    [[ $reply == "removed $id" ]] || { echo "moved: $reply"; return 1; }
    # The drain's high-water mark and last acknowledged write, then the steps' times:
    # drain, sync, restore, verify (stats + check), promote (rename, route, old copy).
    printf '%s %s %d %d %d %d %d\n' "$seq" "$acked" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t4 - t3)) $(($(now_ms) - t4))
}

move_ms=()
aborted=0
started_ms=$(now_ms)
# One pass over the tenants, then one more over those whose move was aborted (they are
# served by server a again, nothing lost): a move that aborts twice has failed.
todo=()
for ((i = 0; i < tenants; i++)); do todo+=("$(printf 't%03d' "$i")"); done
for pass in 1 2; do
    again=()
    for id in "${todo[@]}"; do
        t0=$(now_ms)
        if out=$(move "$id"); then
            ms=$(($(now_ms) - t0))
            move_ms+=("$ms")
            # id, move ms, high-water seq, last acked write, ms per step (see move).
            printf '%s %s %s\n' "$id" "$ms" "$out" >>"$run/logs/moves.txt"
        else
            aborted=$((aborted + 1))
            again+=("$id")
            printf 'move %s (pass %d) aborted, the tenant is served by a again: %s\n' "$id" "$pass" "$out"
        fi
    done
    ((${#again[@]} == 0)) && break
    todo=("${again[@]}")
done
failed=${#again[@]}
moves_s=$(awk -v a="$started_ms" -v b="$(now_ms)" 'BEGIN { printf "%.3f", (b - a) / 1000 }')

# A second of writes to the moved tenants on b, then stop the load.
sleep 1
reply=$(ctl stop)
read -r _ acked_total refused_total <<<"$reply"
wait "$LOAD_PID" || die "the load failed: $(tail -n3 "$run/logs/load.err")"

# The new server's replication: every moved tenant is on b's replica too. A forced sync,
# then a restore from b's prefix, which the check below compares with the live file.
b_behind=0
mkdir -p "$run/from-b"
for ((i = 0; i < tenants; i++)); do
    id=$(printf 't%03d' "$i")
    [[ -f $dir_b/$id.db ]] || continue
    sync_json=$(sync_until_replicated b "$id") ||
        { printf 'sync on b %s: %s\n' "$id" "$sync_json"; b_behind=$((b_behind + 1)); continue; }
    restore_config b "$id" >"$run/from-b/$id.yml"
    "$litestream" restore -config "$run/from-b/$id.yml" -integrity-check full \
        -o "$run/from-b/$id.db" "$dir_b/$id.db" >"$run/from-b/$id.log" 2>&1 ||
        { printf 'restore from b %s: %s\n' "$id" "$(tail -n1 "$run/from-b/$id.log")"; b_behind=$((b_behind + 1)); }
done

# --- Every acknowledged write must be in its tenant's file on b -------------------------
check=$(python3 - "$acks" "$dir_a" "$dir_b" "$tenants" "$run/from-b" "$routes" <<'PY'
import collections, os, sqlite3, sys
acks, dir_a, dir_b, n, from_b, routes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
route = dict(line.split() for line in open(routes) if line.strip())

def keys(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    have = {int(k[2:]) for (k,) in con.execute(
        "SELECT idempotency_key FROM episode WHERE agent = 'scale-out-load'")}
    con.close()
    return have

acked = collections.defaultdict(set)
refused = collections.Counter()
for line in open(acks):
    w = line.split()
    if w[0] == "ack":
        acked[w[1]].add(int(w[2]))
    elif w[0] == "refused":
        refused[w[5]] += 1
lost = missing = gaps = replica_differs = doubled = 0
for i in range(n):
    tid = f"t{i:03d}"
    # Where the route says (b, unless its move failed twice), and only there.
    here, there = (dir_b, dir_a) if route[tid] == "b" else (dir_a, dir_b)
    path = os.path.join(here, tid + ".db")
    if os.path.exists(os.path.join(there, tid + ".db")):
        doubled += 1
    if not os.path.exists(path):
        missing += 1
        lost += len(acked[tid])
        continue
    have = keys(path)
    lost += len(acked[tid] - have)
    # b's replica, restored after the load stopped, holds exactly the live file's writes.
    copy = os.path.join(from_b, tid + ".db")
    if route[tid] == "b" and (not os.path.exists(copy) or keys(copy) != have):
        replica_differs += 1
    # Written once each, in order: the keys are exactly 1..K.
    if have != set(range(1, len(have) + 1)):
        gaps += 1
print(sum(len(s) for s in acked.values()), lost, missing, gaps, doubled, replica_differs,
      ",".join(f"{k}:{v}" for k, v in sorted(refused.items())) or "none")
PY
)
read -r acked_in_log lost missing gaps doubled replica_differs refused_by <<<"$check"

stats_ms() {
    printf '%s\n' "$@" | sort -n | awk '
        { v[NR] = $1 }
        END {
            p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
            printf "p50 %d ms, p99 %d ms, max %d ms", p50, p99, v[NR]
        }'
}
moved=${#move_ms[@]}
printf 'summary: %d of %d tenants moved (%d moves aborted and retried, %d failed) in %s s: %.1f tenants/minute\n' \
    "$moved" "$tenants" "$aborted" "$failed" "$moves_s" "$(awk -v n="$moved" -v s="$moves_s" 'BEGIN { print (s > 0 ? n * 60 / s : 0) }')"
if ((moved > 0)); then
    printf 'move time: %s\n' "$(stats_ms "${move_ms[@]}")"
    awk '{ for (i = 5; i <= 9; i++) s[i] += $i } END {
        printf "mean per step: drain %.0f ms, litestream sync %.0f ms, restore %.0f ms, verify %.0f ms, promote %.0f ms\n",
            s[5] / NR, s[6] / NR, s[7] / NR, s[8] / NR, s[9] / NR }' "$run/logs/moves.txt"
fi
printf 'writes: %d acknowledged (%d in the log), %d refused (%s), acknowledged writes lost: %d\n' \
    "$acked_total" "$acked_in_log" "$refused_total" "$refused_by" "$lost"
((missing == 0)) || printf 'FAILED: %d tenants missing on the server their route names\n' "$missing"
((gaps == 0)) || printf 'FAILED: %d tenants whose writes are not exactly 1..K\n' "$gaps"
((doubled == 0)) || printf 'FAILED: %d tenants with a file on both servers\n' "$doubled"
((b_behind == 0)) || printf 'FAILED: %d tenants not synced or not restored from server b'"'"'s replica\n' "$b_behind"
((replica_differs == 0)) || printf 'FAILED: %d tenants whose restore from server b'"'"'s replica differs from the live file\n' "$replica_differs"
printf 'server b'"'"'s replica: %d of %d moved tenants restored with exactly the live file'"'"'s writes\n' "$((moved - replica_differs))" "$moved"
((acked_in_log == acked_total)) || printf 'FAILED: the load counted %d acks, its log has %d\n' "$acked_total" "$acked_in_log"
printf 'litestream sync -wait repeated: %d times (%s)\n' \
    "$(cat "$run/logs/sync-retries.log" 2>/dev/null | wc -l)" "$run/logs/sync-retries.log"
for server in a b; do
    errors=$(grep -c 'level=ERROR' "$run/logs/litestream-$server.log" || true)
    printf 'litestream %s: %d ERROR lines in %s\n' "$server" "$errors" "$run/logs/litestream-$server.log"
done
printf 'drill: %d s in all (build, setup, moves, checks)\n' "$SECONDS"
((failed == 0 && lost == 0 && missing == 0 && gaps == 0 && doubled == 0 && b_behind == 0 && replica_differs == 0 && acked_in_log == acked_total))
