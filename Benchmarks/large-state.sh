#!/usr/bin/env bash
# Checkpoints of a large state under load: `roas gen --tcp` streams signed batches straight into
# `roas serve --data-dir --checkpoint-every D` (no file of the stream), while the server's RSS is
# sampled every 0.2 s. Prints, per checkpoint: its size, how long it took, the longest chunk apply
# while it was written (the ingest pause) and the RSS just before it began against the peak while
# it was written (the issue-12 measure), and the longest apply between it and the checkpoint before.
# Needs free disk for the log between two checkpoints plus the two newest checkpoints (about 24 GB
# for 120M events with the defaults).
set -euo pipefail

usage() {
    cat <<'TEXT'
usage: Benchmarks/large-state.sh [--binary PATH] [--events N] [--users N] [--every D] [--dir DIR]
  --binary PATH   roas binary (default: .build/release/roas, built if missing)
  --events N      events to send (default 120000000)
  --users N       users of the stream (default 10000000)
  --every D       --checkpoint-every (default 30s)
  --dir DIR       working folder, emptied first and removed at the end (default: $TMPDIR/roas-large-state)
TEXT
}

root=$(cd "$(dirname "$0")/.." && pwd)
binary="" events=120000000 users=10000000 every=30s dir=${TMPDIR:-/tmp}/roas-large-state
while (($#)); do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --events) events=$2; shift 2 ;;
        --users) users=$2; shift 2 ;;
        --every) every=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "large-state.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
if [[ -z $binary ]]; then
    binary=$root/.build/release/roas
    [[ -x $binary ]] || (cd "$root" && swift build -c release --product roas)
fi
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
rm -rf "$dir"
mkdir -p "$dir"
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill -9 "$server_pid" 2>/dev/null || true
    rm -rf "$dir/data"
}
trap cleanup EXIT

"$binary" serve --no-http --listen-tcp 127.0.0.1:0 --secret "$secret" --tolerance 0 --output "$dir/rows.ndjson" \
    --summary json --data-dir "$dir/data" --checkpoint-every "$every" --log-level info 2> "$dir/serve.err" &
server_pid=$!
until grep -q "tcp listening on" "$dir/serve.err"; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$dir/serve.err" >&2; exit 1; }
    sleep 0.1
done
port=$(grep -o "tcp listening on .*" "$dir/serve.err" | head -1 | sed 's/.*://')
(while kill -0 "$server_pid" 2>/dev/null; do
    echo "$(date +%s.%N) $(awk '/VmRSS/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null)"
    sleep 0.2
done) > "$dir/rss.log" &
started=$(date +%s.%N)
"$binary" gen --seed 9 --events "$events" --users "$users" --creators 5000 --batch-size 1000 --secret "$secret" \
    --tcp "127.0.0.1:$port" 2> "$dir/gen.err"
sent=$(date +%s.%N)
echo "== $events events, $users users, --checkpoint-every $every"
awk -v a="$started" -v b="$sent" -v n="$events" 'BEGIN { printf "  sent in %.1f s (%.0f events/s)\n", b - a, n / (b - a) }'
echo "  peak RSS $(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status") MB"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
python3 - "$dir" <<'PY'
import datetime, re, sys
folder = sys.argv[1]
samples = [tuple(map(float, line.split())) for line in open(folder + "/rss.log") if len(line.split()) == 2]
for line in open(folder + "/serve.err"):
    if "checkpoint written" not in line:
        continue
    logged = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    took = int(re.search(r"milliseconds=(\d+)", line).group(1))
    size = int(re.search(r"bytes=(\d+)", line).group(1))
    pause = int(re.search(r"longest_apply_meanwhile_ms=(\d+)", line).group(1))
    pause_cpu = int(re.search(r"longest_apply_meanwhile_cpu_ms=(\d+)", line).group(1))
    pause_before = int(re.search(r"longest_apply_before_ms=(\d+)", line).group(1))
    pause_before_cpu = int(re.search(r"longest_apply_before_cpu_ms=(\d+)", line).group(1))
    # The log's time is to the second: the checkpoint ended within [logged, logged + 1).
    start, end = logged - took / 1000, logged + 1
    before = [rss for at, rss in samples if at <= start]
    during = [rss for at, rss in samples if start <= at <= end]
    if before and during:
        print(f"  checkpoint {size / 1e9:6.2f} GB in {took:5d} ms, longest chunk apply meanwhile {pause:4d} ms ({pause_cpu} ms CPU); "
              f"RSS {before[-1] / 1024:6.0f} MB before, {max(during) / 1024:6.0f} MB at most while written "
              f"({max(during) / before[-1]:.2f}x); longest apply between it and the one before {pause_before} ms ({pause_before_cpu} ms CPU)")
PY
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
