#!/usr/bin/env bash
# Figures of `roas serve --data-dir`: what the write-ahead log costs over TCP, the checkpoint pause,
# recovery time per GiB of log, and memory under overload. See Benchmarks/README.md or --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: Benchmarks/durability.sh [options]

Runs the release `roas serve` on loopback against a cached signed stream (`roas gen`) sent by
Benchmarks/tcp_send.py (a file sender that spends no CPU making events) and prints:

  throughput  events/s over TCP without a data folder, with --data-dir --fsync batch and with
              --fsync always, in interleaved rounds; the medians and the ratios to no folder
  checkpoint  the same stream with --checkpoint-every 1s: each checkpoint's state bytes, time, and
              the longest chunk apply while it was written (the pause ingest sees); the server's
              peak RSS with those checkpoints and without a data folder
  recovery    a log of --recovery-gib GiB (no checkpoint), SIGKILL, restart: the recovery line,
              seconds per GiB and the restart's peak RSS
  overload    --overload-seconds of two unthrottled TCP senders plus 64 webhook connections
              (`roas gen --http`) against a server held to a twentieth of the CPU (SIGSTOP/SIGCONT),
              with and without a data folder: peak RSS, how much the senders got in, webhook
              answers by status, and that every acknowledged batch was accepted

  --only LIST          comma-separated measurements to run (default: all four)
  --events N           events of the stream (default 4000000)
  --rounds K           interleaved rounds of the throughput measurement (default 3)
  --recovery-gib G     size of the log to recover, in GiB (default 1)
  --overload-seconds S length of the overload (default 60)
  --binary PATH        use this roas binary (default: build the release one)
  -h, --help           this text

Environment: TMPDIR (streams cached in $TMPDIR/roas-durability; data folders are deleted after
each run). Timings on a shared machine are noisy: compare the ratios of one invocation.
EOF
}

die() { echo "durability.sh: $*" >&2; exit 2; }

export LC_ALL=C
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
only="throughput,checkpoint,recovery,overload" events=4000000 rounds=3 recovery_gib=1 overload_seconds=60 binary=""

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
need_count() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 needs a positive integer, got '$2'"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --only)             need_value "$@"; only=$2; shift 2 ;;
        --events)           need_value "$@"; need_count "$1" "$2"; events=$2; shift 2 ;;
        --rounds)           need_value "$@"; need_count "$1" "$2"; rounds=$2; shift 2 ;;
        --recovery-gib)     need_value "$@"; need_count "$1" "$2"; recovery_gib=$2; shift 2 ;;
        --overload-seconds) need_value "$@"; need_count "$1" "$2"; overload_seconds=$2; shift 2 ;;
        --binary)           need_value "$@"; binary=$2; shift 2 ;;
        -h|--help)          usage; exit 0 ;;
        *)                  usage >&2; die "unknown option '$1'" ;;
    esac
done
for part in ${only//,/ }; do
    [[ $part =~ ^(throughput|checkpoint|recovery|overload)$ ]] || die "--only: unknown measurement '$part'"
done
wants() { [[ ",$only," == *",$1,"* ]]; }

if [[ -z $binary ]]; then
    (cd "$root" && swift build -c release --product roas >&2)
    binary=$root/.build/release/roas
fi
[[ -x $binary ]] || die "no roas binary at $binary"
cache=${TMPDIR:-/tmp}/roas-durability
mkdir -p "$cache"
work=$(mktemp -d "$cache/run-XXXXXX")
server_pid="" sender_pids=()
cleanup() {
    for pid in $server_pid "${sender_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json_field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }

# A cached signed stream: stream SEED EVENTS -> path
stream() {
    local path=$cache/stream-s$1-e$2.ndjson
    if [[ ! -s $path ]]; then
        echo "generating $2 events (seed $1) into $path" >&2
        "$binary" gen --seed "$1" --events "$2" --users 1000000 --creators 5000 --batch-size 1000 \
            --secret "$SECRET" --output "$path.tmp"
        mv "$path.tmp" "$path"
    fi
    echo "$path"
}

# start_server NAME ARGS... : starts `roas serve` on a free TCP port; sets server_pid and port.
start_server() {
    local name=$1
    shift
    : > "$work/$name.err"
    "$binary" serve --no-http --listen-tcp 127.0.0.1:0 --secret "$SECRET" --tolerance 0 \
        --output "$work/$name.rows" --summary json "$@" 2> "$work/$name.err" &
    server_pid=$!
    local waited=0
    until grep -q "roas serve: tcp listening on" "$work/$name.err"; do
        sleep 0.1
        waited=$((waited + 1))
        ((waited < 3000)) || die "the server did not start: $(cat "$work/$name.err")"
        kill -0 "$server_pid" 2>/dev/null || die "the server exited: $(cat "$work/$name.err")"
    done
    port=$(grep -o "tcp listening on .*" "$work/$name.err" | head -1 | sed 's/.*://')
}

stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
}

peak_rss_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }

machine() { echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"; }

if wants throughput; then
    input=$(stream 1 "$events")
    echo "== throughput: $events events ($(du -m "$input" | cut -f1) MB) over one TCP connection, $rounds interleaved rounds"
    declare -A rates=()
    for round in $(seq 1 "$rounds"); do
        for mode in none batch always; do
            rm -rf "$work/data"
            options=()
            [[ $mode != none ]] && options=(--data-dir "$work/data" --fsync "$mode")
            start_server "tp-$mode" "${options[@]}" --log-level warning
            result=$(python3 "$root/Benchmarks/tcp_send.py" --port "$port" --input "$input")
            peak=$(peak_rss_mb "$server_pid")
            stop_server
            seconds=$(json_field seconds <<< "$result")
            rate=$(awk -v e="$events" -v s="$seconds" 'BEGIN { printf "%.0f", e / s }')
            rates[$mode]+="$rate "
            rows=$(wc -l < "$work/tp-$mode.rows")
            printf '  round %d %-7s %8.2f s %10d events/s  peak RSS %5d MB  rows %d  answers %s\n' \
                "$round" "$mode" "$seconds" "$rate" "$peak" "$rows" "$result"
        done
    done
    base=$(tr ' ' '\n' <<< "${rates[none]}" | grep . | median)
    for mode in none batch always; do
        m=$(tr ' ' '\n' <<< "${rates[$mode]}" | grep . | median)
        printf '  median %-7s %10.0f events/s  %.2f of no data folder\n' "$mode" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN { print a / b }')"
    done
    machine
fi

if wants checkpoint; then
    input=$(stream 1 "$events")
    echo "== checkpoint: $events events with --data-dir --checkpoint-every 1s"
    start_server plain --log-level warning
    python3 "$root/Benchmarks/tcp_send.py" --port "$port" --input "$input" > /dev/null
    plain_peak=$(peak_rss_mb "$server_pid")
    stop_server
    rm -rf "$work/data"
    start_server ckpt --data-dir "$work/data" --checkpoint-every 1s --log-level info
    result=$(python3 "$root/Benchmarks/tcp_send.py" --port "$port" --input "$input")
    peak=$(peak_rss_mb "$server_pid")
    stop_server
    echo "  sender: $result"
    printf '  peak RSS: %d MB without a data folder, %d MB with checkpoints every second (%.2fx)\n' \
        "$plain_peak" "$peak" "$(awk -v a="$peak" -v b="$plain_peak" 'BEGIN { print a / b }')"
    grep "checkpoint written" "$work/ckpt.err" | sed -E 's/.*bytes=([0-9]+).*longest_apply_meanwhile_ms=([0-9]+).*lsn=([0-9]+).*milliseconds=([0-9]+).*/\1 \2 \4/' |
        awk '{ printf "  checkpoint %3d: %7.1f MB written in %5d ms; longest chunk apply meanwhile %4d ms\n", NR, $1 / 1e6, $3, $2 }'
    machine
fi

if wants recovery; then
    first=$(stream 1 "$events")
    bytes_per_event=$(( $(stat -c %s "$first") / events ))
    needed=$(( recovery_gib * 1073741824 * 108 / 100 / bytes_per_event ))  # the log holds a little more than the events
    input=$(stream 2 "$needed")
    echo "== recovery: a log of $(du -m "$input" | cut -f1) MB ($needed events), no checkpoint, SIGKILL, restart"
    rm -rf "$work/data"
    start_server rec1 --data-dir "$work/data" --checkpoint-every 1h --log-level warning
    result=$(python3 "$root/Benchmarks/tcp_send.py" --port "$port" --input "$input")
    echo "  sender: $result; log: $(du -sm "$work/data/wal" | cut -f1) MB"
    kill -9 "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sync
    started=$(date +%s.%N)
    start_server rec2 --data-dir "$work/data" --checkpoint-every 1h --log-level warning
    ready=$(date +%s.%N)
    line=$(grep "roas serve: recovered" "$work/rec2.err")
    echo "  $line"
    echo "  start to listening: $(awk -v a="$started" -v b="$ready" 'BEGIN { printf "%.1f", b - a }') s; peak RSS of the restart $(peak_rss_mb "$server_pid") MB"
    if [[ $line =~ \(([0-9]+)\ bytes\)\ in\ ([0-9]+)\ ms ]]; then
        awk -v b="${BASH_REMATCH[1]}" -v ms="${BASH_REMATCH[2]}" \
            'BEGIN { printf "  %.1f s per GiB of log (%.0f MB/s)\n", (ms / 1000) / (b / 1073741824), b / 1e6 / (ms / 1000) }'
    fi
    stop_server
    machine
fi

if wants overload; then
    # Overload: the server gets a twentieth of the CPU it could use (a SIGSTOP/SIGCONT duty cycle of
    # 5 ms in 100 ms), while the senders go as fast as the sockets let them, with distinct batches.
    input=$(stream 1 "$events")
    second=$(stream 2 "$events")
    for mode in none batch; do
        rm -rf "$work/data"
        options=()
        [[ $mode != none ]] && options=(--data-dir "$work/data")
        echo "== overload ($mode): ${overload_seconds}s at a twentieth of the CPU, 2 unthrottled TCP senders, 64 webhook connections"
        : > "$work/ov.err"
        "$binary" serve --listen-tcp 127.0.0.1:0 --listen-http 127.0.0.1:0 --secret "$SECRET" --tolerance 0 \
            --output "$work/ov.rows" --summary json --log-level warning "${options[@]}" 2> "$work/ov.err" &
        server_pid=$!
        until grep -q "http listening on" "$work/ov.err" && grep -q "tcp listening on" "$work/ov.err"; do sleep 0.1; done
        port=$(grep -o "tcp listening on .*" "$work/ov.err" | sed 's/.*://')
        http=$(grep -o "http listening on .*" "$work/ov.err" | sed 's/.*on //')
        sender_pids=()
        for file in "$input" "$second"; do
            python3 "$root/Benchmarks/tcp_send.py" --port "$port" --input "$file" > "$work/ov-tcp${#sender_pids[@]}.json" 2>&1 &
            sender_pids+=($!)
        done
        "$binary" gen --seed 6 --events "$events" --users 1000000 --creators 5000 --batch-size 1000 \
            --secret "$SECRET" --http "http://$http/v1/events" --connections 64 > "$work/ov-http.out" 2>&1 &
        sender_pids+=($!)
        ( while kill -0 "$server_pid" 2>/dev/null; do
              kill -CONT "$server_pid"; sleep 0.005; kill -STOP "$server_pid" 2>/dev/null; sleep 0.095
          done ) &
        throttle=$!
        peak=0
        for _ in $(seq 1 "$overload_seconds"); do
            sleep 1
            rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status")
            ((rss > peak)) && peak=$rss
        done
        kill "$throttle"; wait "$throttle" 2>/dev/null || true
        kill -CONT "$server_pid"
        read_then=$(curl -s "http://$http/metrics" | awk '/^roas_lines_read_total/ { print $2 }')
        for pid in "${sender_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${sender_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
        sender_pids=()
        hwm=$(peak_rss_mb "$server_pid")
        metrics=$(curl -s "http://$http/metrics" | grep -E '^roas_webhook_requests_total\{status="(202|200|503)"' | sort | tr '\n' ' ' || true)
        stop_server
        summary=$(grep '^{"lines_read"' "$work/ov.err" | tail -1)
        acks=$(cat "$work"/ov-tcp*.json | python3 -c 'import json,sys; print(sum(json.loads(l)["acks"] for l in sys.stdin if l.startswith("{")))')
        sent=$(cat "$work"/ov-tcp*.json | python3 -c 'import json,sys; print(sum(json.loads(l)["bytes"] for l in sys.stdin if l.startswith("{")))')
        accepted=$(json_field accepted_batches <<< "$summary")
        accepted_202=$(grep -o 'status="202"} [0-9]*' <<< "$metrics" | awk '{ print $2 }')
        echo "  server RSS: peak of 1-second samples ${peak} MB, high-water mark ${hwm} MB"
        echo "  TCP: $((sent / 1000000)) of $((($(stat -c %s "$input") + $(stat -c %s "$second")) / 1000000)) MB sent by the 2 senders in ${overload_seconds}s; $acks batches acknowledged"
        echo "  webhooks (server metrics): $metrics"
        echo "  server: ${read_then:-?} lines read when the overload ended; at exit $accepted batches accepted, $(json_field lines_read <<< "$summary") lines read; balanced: $(json_field balanced <<< "$summary")"
        if [[ $mode != none ]]; then
            total=$((acks + ${accepted_202:-0}))
            echo "  acknowledged (TCP acks + HTTP 202) $total <= accepted $accepted: $([[ $total -le $accepted ]] && echo yes || echo NO)"
        fi
    done
    machine
fi
