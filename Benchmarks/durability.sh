#!/usr/bin/env bash
# Figures of the durable `roas serve` (issue 5), end to end with the release binary on loopback:
# throughput with and without --data-dir, the checkpoint pause, recovery time per GiB of log, and
# memory and back-pressure under overload. See Benchmarks/README.md ("durability.sh") or --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: Benchmarks/durability.sh [options]

Runs the release `roas serve` on 127.0.0.1 (free ports) fed by `roas gen` and prints, per
measurement, every run, the medians and ratios, the load average and the checks that failed:

  throughput  `roas gen --tcp` (one connection) into `serve --no-http`: no data folder (none),
              --data-dir --fsync batch (batch) and --fsync always (always), in interleaved rounds;
              events/s = events / wall s of the gen command; medians and ratios to none. Each server
              is stopped with SIGTERM; its summary, acks and rows file are checked.
  checkpoint  a cached stream (`roas gen --output`) sent by a small Python client that timestamps
              every ack line, to --data-dir servers with --checkpoint-every D and with 1h
              (no checkpoint under load), interleaved: each checkpoint's state bytes, time and
              longest_apply_meanwhile_ms, and the longest gap between two acks in both cases
  recovery    `roas gen --tcp` into --data-dir --checkpoint-every 1h until DIR/wal holds
              --recovery-gib GiB, SIGKILL, restart under /usr/bin/time: the recovery line, GiB/s,
              time to listening, peak RSS; the data folder is deleted afterwards
  overload    --overload-tcp `roas gen --tcp` senders plus one `roas gen --http --connections C`,
              all unthrottled, with --overload-seconds x X events in all (X = the engine's rate:
              the throughput median without a data folder, or --rate), without and with a data
              folder: RSS every second (VmRSS, VmHWM), each sender's wall time against its data
              at rate X, webhook answers by status (503s), and that the totals add up

  --only LIST                 comma-separated: throughput,checkpoint,recovery,overload (default: all)
  --events N                  events per throughput run (default 6000000)
  --batch-size N              events per signed batch (default 1000)
  --users N, --creators N     passed to `roas gen` (default 1000000, 5000)
  --rounds K                  interleaved throughput rounds (default 3)
  --modes LIST                throughput modes, of none,batch,always (default none,batch,always)
  --window D                  --window of every server (default 5m: windows close, rows get written)
  --checkpoint-events N       events of the checkpoint stream (default 8000000; cached, 111 B/event)
  --checkpoint-every D        the checkpoint interval measured (default 2s)
  --checkpoint-rounds K       interleaved rounds of D against 1h (default 2)
  --recovery-gib G            log to recover, in GiB (default 1; decimals allowed)
  --overload-seconds S        overload length at rate X (default 60)
  --overload-tcp K            TCP senders (default 3)
  --overload-connections C    webhook connections of the HTTP sender (default 8)
  --overload-modes LIST       of none,batch (default none,batch)
  --rate X                    the engine's events/s for the overload (default: measured)
  --binary PATH               the roas binary (default $ROAS_BIN, else <package>/.build-fig/release/roas,
                              built with `swift build -c release --scratch-path .build-fig --product roas`)
  --keep                      keep the run folder (servers' stderr, rows, sender output; data folders
                              are deleted anyway)
  -h, --help                  this text

Environment: ROAS_BIN (the binary), TMPDIR (cache and runs in $TMPDIR/roas-durability). Timings on
a shared machine are noisy: compare the ratios of one invocation, and mind the printed load.
EOF
}

die() { echo "durability.sh: $*" >&2; exit 2; }

export LC_ALL=C
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

only="throughput,checkpoint,recovery,overload"
events=6000000 batch_size=1000 users=1000000 creators=5000 rounds=3 modes="none,batch,always" window=5m
ckpt_events=8000000 ckpt_every=2s ckpt_rounds=2
recovery_gib=1
overload_seconds=60 overload_tcp=3 overload_connections=8 overload_modes="none,batch" rate_x=""
binary=${ROAS_BIN:-} keep=0

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
need_count() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 needs a positive integer, got '$2'"; }
need_list() {
    local part
    for part in ${2//,/ }; do [[ ,$3, == *",$part,"* ]] || die "$1: '$part' is not one of $3"; done
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --only)                 need_value "$@"; need_list "$1" "$2" throughput,checkpoint,recovery,overload; only=$2; shift 2 ;;
        --events)               need_value "$@"; need_count "$1" "$2"; events=$2; shift 2 ;;
        --batch-size)           need_value "$@"; need_count "$1" "$2"; batch_size=$2; shift 2 ;;
        --users)                need_value "$@"; need_count "$1" "$2"; users=$2; shift 2 ;;
        --creators)             need_value "$@"; need_count "$1" "$2"; creators=$2; shift 2 ;;
        --rounds)               need_value "$@"; need_count "$1" "$2"; rounds=$2; shift 2 ;;
        --modes)                need_value "$@"; need_list "$1" "$2" none,batch,always; modes=$2; shift 2 ;;
        --window)               need_value "$@"; window=$2; shift 2 ;;
        --checkpoint-events)    need_value "$@"; need_count "$1" "$2"; ckpt_events=$2; shift 2 ;;
        --checkpoint-every)     need_value "$@"; ckpt_every=$2; shift 2 ;;
        --checkpoint-rounds)    need_value "$@"; need_count "$1" "$2"; ckpt_rounds=$2; shift 2 ;;
        --recovery-gib)         need_value "$@"; [[ $2 =~ ^[0-9]*\.?[0-9]+$ ]] || die "--recovery-gib needs a number"; recovery_gib=$2; shift 2 ;;
        --overload-seconds)     need_value "$@"; need_count "$1" "$2"; overload_seconds=$2; shift 2 ;;
        --overload-tcp)         need_value "$@"; need_count "$1" "$2"; overload_tcp=$2; shift 2 ;;
        --overload-connections) need_value "$@"; need_count "$1" "$2"; overload_connections=$2; shift 2 ;;
        --overload-modes)       need_value "$@"; need_list "$1" "$2" none,batch,always; overload_modes=$2; shift 2 ;;
        --rate)                 need_value "$@"; need_count "$1" "$2"; rate_x=$2; shift 2 ;;
        --binary)               need_value "$@"; binary=$2; shift 2 ;;
        --keep)                 keep=1; shift ;;
        -h|--help)              usage; exit 0 ;;
        *)                      usage >&2; die "unknown option '$1'" ;;
    esac
done
wants() { [[ ",$only," == *",$1,"* ]]; }

say() { printf '%s\n' "$*"; }
log() { printf '%s\n' "$*" >&2; }

if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null; then
    die "needs GNU time at /usr/bin/time (Debian/Ubuntu: apt-get install time)"
fi
if wants checkpoint; then command -v python3 >/dev/null || die "--only checkpoint needs python3"; fi
if wants overload; then command -v curl >/dev/null || die "--only overload needs curl"; fi

# --- the binary -------------------------------------------------------------------------------
if [[ -z $binary ]]; then
    binary=$root/.build-fig/release/roas
    if [[ ! -x $binary ]]; then
        log "building: swift build -c release --scratch-path $root/.build-fig --product roas"
        swift build -c release --package-path "$root" --scratch-path "$root/.build-fig" --product roas >&2
    fi
fi
[[ -x $binary ]] || die "no executable roas at '$binary'"

cache=${TMPDIR:-/tmp}/roas-durability
mkdir -p "$cache"
work=$(mktemp -d "$cache/run.XXXXXX")
server_pid="" helper_pids=()
cleanup() {
    local pid
    for pid in "${helper_pids[@]}"; do pkill -9 -P "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
    [[ -n ${server_pid:-} ]] && kill -9 "$server_pid" 2>/dev/null || true
    rm -rf "$work/data"
    if [[ $keep -eq 0 ]]; then rm -rf "$work"; else log "kept: $work"; fi
}
trap cleanup EXIT

gen_common=(--users "$users" --creators "$creators" --batch-size "$batch_size" --secret "$SECRET")
serve_common=(--secret "$SECRET" --tolerance 0 --window "$window" --summary json)

load() { cut -d' ' -f1-3 /proc/loadavg; }
now_ns() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else printf "%.4f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
batches_of() { echo $((($1 + batch_size - 1) / batch_size)); }

# field NAME FILE: a number or boolean of the last JSON summary line of a server's stderr.
field() {
    local v
    v=$(grep '^{"lines_read"' "$2" | tail -n 1 | sed -n -e "s/.*\"$1\" *: *\({[^}]*}\).*/\1/p" -e "t" -e "s/.*\"$1\" *: *\([^,}]*\).*/\1/p")
    printf '%s' "${v:-?}"
}
# meta KEY LINE: a value of swift-log metadata (key=value) in a log line.
meta() { grep -o "$1=[^ ]*" <<< "$2" | head -n 1 | cut -d= -f2 | tr -d '"'; }
problems=()
check() { # check CONDITION-TEXT MESSAGE: records a failed check
    if ! eval "$1"; then problems+=("$2"); log "  CHECK FAILED: $2"; fi
}

# start_server NAME [PREFIX...] -- ARGS...: `roas serve ARGS` on free ports, stderr to $work/NAME.err;
# sets server_pid (the roas process, also under a PREFIX such as /usr/bin/time), port and http.
start_server() {
    local name=$1 prefix=() waited=0 launcher
    shift
    while [[ $1 != -- ]]; do prefix+=("$1"); shift; done
    shift
    : > "$work/$name.err"
    "${prefix[@]}" "$binary" serve "$@" 2> "$work/$name.err" > /dev/null &
    launcher=$!
    server_pid=$launcher
    if [[ ${#prefix[@]} -gt 0 ]]; then
        until server_pid=$(pgrep -P "$launcher" -x roas); do sleep 0.01; done
    fi
    until grep -q "roas serve: tcp listening on" "$work/$name.err"; do
        kill -0 "$server_pid" 2>/dev/null || die "the server ($name) exited: $(cat "$work/$name.err")"
        sleep 0.05
        waited=$((waited + 1))
        ((waited < 24000)) || die "the server ($name) did not listen within 20 minutes"
    done
    port=$(grep -o "tcp listening on .*" "$work/$name.err" | head -n 1 | sed 's/.*://')
    http=$(grep -o "http listening on .*" "$work/$name.err" | head -n 1 | sed 's/.*on //')
    server_launcher=$launcher
}

# stop_server: SIGTERM, then waits; sets server_rc.
stop_server() {
    kill -TERM "$server_pid"
    server_rc=0
    wait "$server_launcher" || server_rc=$?
    while kill -0 "$server_pid" 2>/dev/null; do sleep 0.05; done
    server_pid=""
}

# gen_stats FILE: "acks duplicates nacks" from `roas gen --tcp` stderr (0 0 0 without acks).
gen_acks() {
    sed -n 's/^roas gen: \([0-9]*\) batches acknowledged (\([0-9]*\) duplicates), \([0-9]*\) not$/\1 \2 \3/p' "$1" | tail -n 1 | grep . || echo "0 0 0"
}

machine() {
    local cpu version commit
    cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
    version=$("$binary" --version 2>/dev/null || echo unknown)
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ $commit != unknown && -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then commit+="+dirty"; fi
    say "machine: $(nproc) cpus, ${cpu:-$(uname -m)}; roas $version, commit $commit; binary $binary; load now $(load)"
}

say "durability.sh: $(date -u +%FT%TZ), load $(load), $(df -h "$cache" | awk 'NR == 2 { print $4 " free under " $6 }')"
declare -A rates=()
wal_per_event=""

# --- 1. throughput ----------------------------------------------------------------------------
if wants throughput; then
    n_batches=$(batches_of "$events")
    say ""
    say "== throughput: roas gen --seed 1 --events $events ${gen_common[*]} --tcp 127.0.0.1:PORT (one connection), $rounds interleaved rounds"
    say "   serve --no-http --listen-tcp 127.0.0.1:0 ${serve_common[*]} --output rows [--data-dir DIR --fsync MODE]"
    say "$(printf '%-6s %-7s %8s %11s %7s %10s %8s %8s %7s %9s  %s' round mode 'wall s' 'events/s' '/none' 'peak MiB' acks 'wal MB' rows balanced load)"
    for ((round = 1; round <= rounds; round++)); do
        for mode in ${modes//,/ }; do
            rm -rf "$work/data"
            options=()
            [[ $mode != none ]] && options=(--data-dir "$work/data" --fsync "$mode")
            name=tp-$round-$mode
            before=$(load)
            start_server "$name" -- --no-http --listen-tcp 127.0.0.1:0 "${serve_common[@]}" --log-level warning \
                --output "$work/$name.rows" "${options[@]}"
            started=$(now_ns)
            "$binary" gen --seed 1 --events "$events" "${gen_common[@]}" --tcp "127.0.0.1:$port" 2> "$work/$name.gen" ||
                { cat "$work/$name.gen" >&2; die "roas gen failed ($name)"; }
            wall=$(seconds_since "$started")
            wal_mb="-"
            if [[ $mode != none ]]; then
                wal_bytes=$(du -sb "$work/data/wal" | cut -f1)
                wal_mb=$(awk -v b="$wal_bytes" 'BEGIN { printf "%.0f", b / 1e6 }')
                wal_per_event=$(awk -v b="$wal_bytes" -v e="$events" 'BEGIN { printf "%.1f", b / e }')
            fi
            hwm=$(status_kib "$server_pid" VmHWM)
            stop_server
            read -r acks dups nacks < <(gen_acks "$work/$name.gen")
            lines=$(field lines_read "$work/$name.err") accepted=$(field accepted_batches "$work/$name.err")
            balanced=$(field balanced "$work/$name.err")
            final=$(field final_rows "$work/$name.err") updates=$(field update_rows "$work/$name.err")
            rows=$(wc -l < "$work/$name.rows")
            rate=$(awk -v e="$events" -v w="$wall" 'BEGIN { printf "%.0f", e / w }')
            rates[$mode]+="$rate "
            base=$(median ${rates[none]:-})
            ratio=$(awk -v r="$rate" -v b="$base" 'BEGIN { if (b == "nan" || b == 0) print "-"; else printf "%.2f", r / b }')
            say "$(printf '%-6s %-7s %8.2f %11d %7s %10s %8s %8s %7s %9s  %s' "$round" "$mode" "$wall" "$rate" "$ratio" \
                "$(mib "$hwm")" "$([[ $mode == none ]] && echo - || echo "$acks")" "$wal_mb" "$rows" "$balanced" "$before")"
            check "[[ $server_rc -eq 0 ]]" "$name: the server exited with $server_rc"
            check "[[ $lines == $((events + n_batches)) ]]" "$name: lines_read $lines, expected $((events + n_batches))"
            check "[[ $accepted == $n_batches ]]" "$name: accepted_batches $accepted, expected $n_batches"
            check "[[ $balanced == true ]]" "$name: the summary does not balance"
            check "[[ $rows -gt 0 ]]" "$name: the rows file is empty"
            check "[[ $rows == $((final + updates)) ]]" "$name: rows file $rows lines, summary $final + $updates rows"
            if [[ $mode != none ]]; then
                check "[[ $acks == $n_batches && $dups == 0 && $nacks == 0 ]]" "$name: $acks acks ($dups duplicates), $nacks nacks of $n_batches batches"
            fi
            rm -rf "$work/data"
        done
    done
    base=$(median ${rates[none]:-})
    for mode in ${modes//,/ }; do
        m=$(median ${rates[$mode]})
        say "$(printf 'median %-7s %11.0f events/s%s   (runs: %s)' "$mode" "$m" \
            "$(awk -v a="$m" -v b="$base" -v mode="$mode" 'BEGIN { if (mode != "none" && b != "nan") printf ", %.3f of none", a / b }')" "${rates[$mode]% }")"
    done
    if [[ -n ${rates[none]:-} ]]; then
        for mode in batch always; do
            [[ -n ${rates[$mode]:-} ]] || continue
            # Per-round ratios (each round's runs are next to each other in time).
            read -ra a <<< "${rates[none]}"
            read -ra b <<< "${rates[$mode]}"
            rs=()
            for ((i = 0; i < ${#a[@]}; i++)); do rs+=("$(awk -v x="${b[$i]}" -v y="${a[$i]}" 'BEGIN { printf "%.3f", x / y }')"); done
            say "ratio $mode/none per round: ${rs[*]}; median $(median "${rs[@]}")"
        done
    fi
    [[ -n $wal_per_event ]] && say "log: $wal_per_event bytes per event (DIR/wal after the run)"
    machine
fi

# --- 2. checkpoint pause ----------------------------------------------------------------------
if wants checkpoint; then
    stream=$cache/gen-s1-e$ckpt_events-u$users-c$creators-b$batch_size.ndjson
    if [[ ! -s $stream ]]; then
        log "generating: roas gen --seed 1 --events $ckpt_events ${gen_common[*]} --output $stream"
        "$binary" gen --seed 1 --events "$ckpt_events" "${gen_common[@]}" --output "$stream.partial.$$" ||
            { rm -f "$stream.partial.$$"; die "roas gen failed"; }
        mv -f "$stream.partial.$$" "$stream"
    fi
    cat > "$work/ack_gaps.py" <<'EOF'
# Sends a file to roas serve --listen-tcp as fast as the socket takes it, timestamps the answer
# lines as they arrive, half-closes and waits for the server to close. Prints one line:
# seconds acks nacks max_gap_ms p99_gap_ms gaps_over_100ms (gaps between consecutive ack arrivals).
import socket, sys, threading, time
port, path = int(sys.argv[1]), sys.argv[2]
data = open(path, "rb").read()
arrivals, counts = [], {"ack": 0, "nack": 0}
def read(connection):
    pending = b""
    while True:
        chunk = connection.recv(1 << 20)
        if not chunk:
            return
        now = time.monotonic()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            arrivals.append(now)
        for line in lines:
            counts["nack" if line.startswith(b'{"nack"') else "ack"] += 1
started = time.monotonic()
connection = socket.create_connection(("127.0.0.1", port))
reader = threading.Thread(target=read, args=(connection,))
reader.start()
view = memoryview(data)
for offset in range(0, len(data), 1 << 20):
    connection.sendall(view[offset:offset + (1 << 20)])
connection.shutdown(socket.SHUT_WR)
reader.join()
seconds = time.monotonic() - started
gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:])) or [0.0]
p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
print("%.3f %d %d %.0f %.1f %d" % (seconds, counts["ack"], counts["nack"], gaps[-1] * 1000, p99 * 1000,
                                    sum(1 for g in gaps if g > 0.1)))
EOF
    n_batches=$(batches_of "$ckpt_events")
    say ""
    say "== checkpoint: $stream ($(du -m "$stream" | cut -f1) MB) over one TCP connection (a Python client timestamping acks)"
    say "   serve --no-http ${serve_common[*]} --data-dir DIR --fsync batch --checkpoint-every {$ckpt_every | 1h}, $ckpt_rounds interleaved rounds"
    declare -A gaps=() ck_rates=()
    for ((round = 1; round <= ckpt_rounds; round++)); do
        for every in "$ckpt_every" 1h; do
            rm -rf "$work/data"
            name=ck-$round-$every
            before=$(load)
            start_server "$name" -- --no-http --listen-tcp 127.0.0.1:0 "${serve_common[@]}" --log-level info \
                --output "$work/$name.rows" --data-dir "$work/data" --checkpoint-every "$every"
            read -r secs acks nacks max_gap p99_gap long_gaps < <(python3 "$work/ack_gaps.py" "$port" "$stream")
            during=$(grep -c "checkpoint written" "$work/$name.err" || true)
            hwm=$(status_kib "$server_pid" VmHWM)
            stop_server
            rate=$(awk -v e="$ckpt_events" -v s="$secs" 'BEGIN { printf "%.0f", e / s }')
            gaps[$every]+="$max_gap " ck_rates[$every]+="$rate "
            say "round $round, --checkpoint-every $every: $secs s, $rate events/s, $acks acks, $nacks nacks; ack gaps: longest $max_gap ms, p99 $p99_gap ms, $long_gaps over 100 ms; peak RSS $(mib "$hwm") MiB; load $before"
            i=0
            while IFS= read -r line; do
                i=$((i + 1))
                when="under load"; [[ $i -gt $during ]] && when="at shutdown"
                say "$(printf '    checkpoint %2d (%s): lsn %s, %8.1f MB of state in %5s ms; longest apply meanwhile %4s ms' "$i" "$when" \
                    "$(meta lsn "$line")" "$(awk -v b="$(meta bytes "$line")" 'BEGIN { print b / 1e6 }')" "$(meta milliseconds "$line")" \
                    "$(meta longest_apply_meanwhile_ms "$line")")"
            done < <(grep "checkpoint written" "$work/$name.err")
            check "[[ $server_rc -eq 0 ]]" "$name: the server exited with $server_rc"
            check "[[ $acks == $n_batches && $nacks == 0 ]]" "$name: $acks acks, $nacks nacks of $n_batches batches"
            check "[[ $(field balanced "$work/$name.err") == true ]]" "$name: the summary does not balance"
            rm -rf "$work/data"
        done
    done
    for every in "$ckpt_every" 1h; do
        say "median --checkpoint-every $every: longest ack gap $(median ${gaps[$every]}) ms (runs: ${gaps[$every]% }), $(median ${ck_rates[$every]}) events/s"
    done
    machine
fi

# --- 3. recovery ------------------------------------------------------------------------------
if wants recovery; then
    target=$(awk -v g="$recovery_gib" 'BEGIN { printf "%.0f", g * 1073741824 }')
    per_event=${wal_per_event:-112}
    say ""
    say "== recovery: --data-dir DIR --checkpoint-every 1h until DIR/wal >= $recovery_gib GiB ($target bytes), SIGKILL, restart"
    say "   disk before: $(df -h "$cache" | awk 'NR == 2 { print $4 " free" }')"
    rm -rf "$work/data"
    rec_opts=(--no-http --listen-tcp 127.0.0.1:0 "${serve_common[@]}" --log-level warning --data-dir "$work/data" --checkpoint-every 1h)
    start_server rec-1 -- "${rec_opts[@]}" --output "$work/rec.rows"
    wal_bytes=0 part=0 sent=0
    while ((wal_bytes < target)); do
        # One stream; a top-up is a second stream two days later (its ids are then out of the
        # dedup horizon and its events not late).
        n=$(awk -v t="$target" -v w="$wal_bytes" -v p="$per_event" -v b="$batch_size" \
            'BEGIN { n = (t - w) * 1.02 / p; n = int(n / b + 1) * b; print (n < 100 * b ? 100 * b : n) }')
        start_ms=$((1795219200000 + part * 172800000))   # 2026-11-21T00:00:00Z + part x 2 days
        started=$(now_ns)
        "$binary" gen --seed $((1 + part)) --start "$start_ms" --events "$n" "${gen_common[@]}" \
            --tcp "127.0.0.1:$port" 2> "$work/rec-gen-$part.gen" || { cat "$work/rec-gen-$part.gen" >&2; die "roas gen failed"; }
        secs=$(seconds_since "$started")
        wal_bytes=$(du -sb "$work/data/wal" | cut -f1)
        read -r acks dups nacks < <(gen_acks "$work/rec-gen-$part.gen")
        sent=$((sent + n))
        per_event=$(awk -v w="$wal_bytes" -v s="$sent" 'BEGIN { printf "%.2f", w / s }')
        say "   sent $n events in $secs s ($acks acks, $nacks nacks); DIR/wal now $wal_bytes bytes ($per_event per event)"
        check "[[ $acks == $(batches_of "$n") && $nacks == 0 ]]" "recovery: $acks acks, $nacks nacks of $(batches_of "$n") batches"
        part=$((part + 1))
    done
    hwm1=$(status_kib "$server_pid" VmHWM)
    say "   first server: peak RSS $(mib "$hwm1") MiB; SIGKILL"
    kill -9 "$server_pid"
    wait "$server_launcher" 2>/dev/null || true
    server_pid=""
    sync
    before=$(load)
    started=$(now_ns)
    start_server rec-2 /usr/bin/time -f '%e %M' -o "$work/rec-2.time" -- "${rec_opts[@]}" --output "$work/rec.rows"
    ready=$(seconds_since "$started")
    hwm2=$(status_kib "$server_pid" VmHWM)
    line=$(grep "roas serve: recovered" "$work/rec-2.err" || echo "no recovery line")
    say "   $line"
    say "   restart to listening: $ready s; peak RSS when listening $(mib "$hwm2") MiB; load before the restart $before"
    if [[ $line =~ replayed\ ([0-9]+)\ log\ records\ \(([0-9]+)\ bytes\)\ in\ ([0-9]+)\ ms ]]; then
        r=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]} t=${BASH_REMATCH[3]}
        say "$(awk -v r="$r" -v b="$b" -v t="$t" 'BEGIN { s = t / 1000; printf "   replayed %d records, %.3f GiB in %.2f s: %.3f GiB/s, %.1f s per GiB, %.0f MB/s", r, b / 1073741824, s, b / 1073741824 / s, s / (b / 1073741824), b / 1e6 / s }')"
    else
        problems+=("recovery: no recovery line")
    fi
    stop_server
    read -r _ rss_kib < <(tail -n 1 "$work/rec-2.time")
    shutdown_ckpt=$(grep "checkpoint written" "$work/rec-2.err" | tail -n 1 || true)
    say "   SIGTERM after the restart: exit $server_rc; /usr/bin/time peak RSS of the whole restart $(mib "$rss_kib") MiB (includes the last checkpoint at SIGTERM${shutdown_ckpt:+: $(awk -v b="$(meta bytes "$shutdown_ckpt")" 'BEGIN { printf "%.0f MB", b / 1e6 }') in $(meta milliseconds "$shutdown_ckpt") ms})"
    check "[[ $(field balanced "$work/rec-2.err") == true ]]" "recovery: the restart's summary does not balance"
    say "   disk with the data: $(du -sh "$work/data" | cut -f1); deleting it"
    rm -rf "$work/data"
    machine
fi

# --- 4. overload ------------------------------------------------------------------------------
if wants overload; then
    if [[ -z $rate_x && -n ${rates[none]:-} ]]; then rate_x=$(median ${rates[none]} | cut -d. -f1); fi
    if [[ -z $rate_x ]]; then
        log "measuring X: one run without a data folder"
        start_server ov-x -- --no-http --listen-tcp 127.0.0.1:0 "${serve_common[@]}" --log-level warning --output /dev/null
        started=$(now_ns)
        "$binary" gen --seed 1 --events "$events" "${gen_common[@]}" --tcp "127.0.0.1:$port" 2> /dev/null
        rate_x=$(awk -v e="$events" -v s="$(seconds_since "$started")" 'BEGIN { printf "%.0f", e / s }')
        stop_server
    fi
    # What one sender can make without a server (generation and HMAC only).
    started=$(now_ns)
    "$binary" gen --seed 9 --events 2000000 "${gen_common[@]}" > /dev/null
    gen_rate=$(awk -v s="$(seconds_since "$started")" 'BEGIN { printf "%.0f", 2000000 / s }')
    senders=$((overload_tcp + 1))
    each=$(awk -v x="$rate_x" -v s="$overload_seconds" -v k="$senders" -v b="$batch_size" 'BEGIN { n = x * s / k; print int(n / b + 1) * b }')
    say ""
    say "== overload: X = $rate_x events/s; $overload_tcp x roas gen --tcp and 1 x roas gen --http --connections $overload_connections,"
    say "   $each events each (X x ${overload_seconds}s in all), unthrottled; one gen alone makes $gen_rate events/s ($(awk -v g="$gen_rate" -v x="$rate_x" 'BEGIN { printf "%.1f", g / x }') X): $senders of them could offer $(awk -v g="$gen_rate" -v x="$rate_x" -v k="$senders" 'BEGIN { printf "%.1f", g * k / x }') X given $senders cores; this machine has $(nproc)"
    for mode in ${overload_modes//,/ }; do
        rm -rf "$work/data"
        options=()
        [[ $mode != none ]] && options=(--data-dir "$work/data" --fsync "$mode")
        name=ov-$mode
        before=$(load)
        start_server "$name" -- --listen-tcp 127.0.0.1:0 --listen-http 127.0.0.1:0 "${serve_common[@]}" --log-level warning \
            --output "$work/$name.rows" "${options[@]}"
        started=$(now_ns)
        helper_pids=()
        for ((k = 1; k <= senders; k++)); do
            if ((k <= overload_tcp)); then target_args=(--tcp "127.0.0.1:$port"); else
                target_args=(--http "http://$http/v1/events" --connections "$overload_connections"); fi
            ( s=$(now_ns); rc=0
              "$binary" gen --seed $((100 + k)) --events "$each" "${gen_common[@]}" "${target_args[@]}" 2> "$work/$name-$k.gen" || rc=$?
              echo "$rc $(seconds_since "$s")" > "$work/$name-$k.done" ) &
            helper_pids+=($!)
        done
        peak=0 samples=() t=0 read_at_s=""
        while :; do
            sleep 1
            t=$((t + 1))
            rss=$(status_kib "$server_pid" VmRSS)
            ((rss > peak)) && peak=$rss
            samples+=("$(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }')")
            if ((t == overload_seconds)); then
                read_at_s=$(curl -s "http://$http/metrics" | awk '/^roas_lines_read_total/ { print $2 }')
            fi
            running=0
            for pid in "${helper_pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
            ((running == 0)) && break
            if ((t >= 4 * overload_seconds)); then
                log "  senders still running after $t s: stopping them"
                for pid in "${helper_pids[@]}"; do pkill -INT -P "$pid" 2>/dev/null || true; done
            fi
        done
        total_s=$(seconds_since "$started")
        for pid in "${helper_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
        helper_pids=()
        metrics=$(curl -s "http://$http/metrics")
        hwm=$(status_kib "$server_pid" VmHWM)
        stop_server
        status_count() { awk -v s="$1" -F'[ ]' '$1 ~ /^roas_webhook_requests_total/ && $1 ~ "status=\"" s "\"" { print $2 }' <<< "$metrics" | head -n 1; }
        say "-- $mode: all senders done in $total_s s; load before $before"
        say "   server RSS, MiB, every second: ${samples[*]}"
        say "   peak VmRSS sample $(mib "$peak") MiB, VmHWM $(mib "$hwm") MiB"
        [[ -n $read_at_s ]] && say "   lines read in the first ${overload_seconds}s: $read_at_s ($(awk -v l="$read_at_s" -v s="$overload_seconds" -v x="$rate_x" 'BEGIN { printf "%.0f/s, %.2f X", l / s, l / s / x }'))"
        tcp_acks=0
        for ((k = 1; k <= senders; k++)); do
            read -r rc secs < "$work/$name-$k.done"
            own=$(awk -v n="$each" -v x="$rate_x" 'BEGIN { printf "%.1f", n / x }')
            if ((k <= overload_tcp)); then
                read -r acks dups nacks < <(gen_acks "$work/$name-$k.gen")
                tcp_acks=$((tcp_acks + acks))
                say "   tcp sender $k: exit $rc, $secs s for data that takes $own s at rate X ($(awk -v a="$secs" -v b="$own" 'BEGIN { printf "%.1fx", a / b }'))$([[ $mode != none ]] && echo "; $acks acks, $dups duplicates, $nacks nacks")"
            else
                say "   http sender: exit $rc, $secs s for data that takes $own s at rate X; $(grep 'webhook answers' "$work/$name-$k.gen" | sed 's/^roas gen: //' || echo 'no answer line')"
                http_line=$(grep 'webhook answers' "$work/$name-$k.gen" || true)
            fi
        done
        s202=$(status_count 202) s200=$(status_count 200) s503=$(status_count 503)
        say "   server webhook answers: 202 ${s202:-0}, 200 ${s200:-0}, 503 ${s503:-0}"
        accepted=$(field accepted_batches "$work/$name.err") lines=$(field lines_read "$work/$name.err")
        expected_batches=$((senders * $(batches_of "$each")))
        say "   server summary: lines_read $lines, accepted_batches $accepted of $expected_batches sent, dead letters $(field dead_letters "$work/$name.err"), balanced $(field balanced "$work/$name.err"), rows $(wc -l < "$work/$name.rows")"
        check "[[ $server_rc -eq 0 ]]" "$name: the server exited with $server_rc"
        check "[[ $(field balanced "$work/$name.err") == true ]]" "$name: the summary does not balance"
        check "[[ $lines == $((senders * (each + $(batches_of "$each")))) ]]" "$name: lines_read $lines, expected $((senders * (each + $(batches_of "$each"))))"
        check "[[ $accepted == $expected_batches ]]" "$name: accepted_batches $accepted, expected $expected_batches"
        if [[ $mode != none ]]; then
            check "[[ $((tcp_acks + ${s202:-0})) == $accepted ]]" "$name: TCP acks $tcp_acks + HTTP 202 ${s202:-0} != accepted $accepted"
        fi
        rm -rf "$work/data"
    done
    machine
fi

say ""
if [[ ${#problems[@]} -gt 0 ]]; then
    say "failed checks (${#problems[@]}):"
    printf '  %s\n' "${problems[@]}"
    exit 1
fi
say "all checks passed"
