#!/usr/bin/env bash
# Figures of scale-out (roas serve --nats and roas worker) on a local 3-node JetStream cluster,
# beside roas run on the same stream. See Benchmarks/README.md or --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: Benchmarks/scaleout.sh [options]

Starts a local 3-node NATS JetStream cluster (scripts/nats-cluster.sh, ports 4222-4224, R3), and
for each worker count runs: one edge (`roas serve --nats`, TCP ingest), N workers
(`roas worker --member I/N --idle-exit`), and Benchmarks/tcp_send.py sending a cached signed
`roas gen` stream into the edge. Prints, per run:

  wall      seconds from the first byte sent to the last part the workers read (each worker's exit
            less its --idle-exit), and events/s over that time
  CPU       CPU-seconds of the brokers, the edge and the workers, summed, and per million events
  ratio     that CPU per million events over roas run's (the issue's target: at most 3)

and checks that the workers' rows, sorted, equal roas run's. roas run's own wall and CPU come
first (the same stream, from the file).

  --events N       events of the stream (default 2000000)
  --runs K         runs per worker count (default 3)
  --workers LIST   worker counts, comma-separated (default 1,2,4)
  --binary PATH    use this roas binary (default: build the release one)
  -h, --help       this text

Environment: TMPDIR (the stream is cached in $TMPDIR/roas-scaleout; the cluster's data lives in
$TMPDIR/roas-scaleout/nats and is deleted at the end). On a 2-core machine this measures overhead,
not speed-up: every process shares the same two cores.
EOF
}

die() { echo "scaleout.sh: $*" >&2; exit 2; }

export LC_ALL=C
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
IDLE_MS=3000
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
events=2000000 runs=3 workers="1,2,4" binary=""

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
need_count() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 needs a positive integer, got '$2'"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --events)  need_value "$@"; need_count "$1" "$2"; events=$2; shift 2 ;;
        --runs)    need_value "$@"; need_count "$1" "$2"; runs=$2; shift 2 ;;
        --workers) need_value "$@"; workers=$2; shift 2 ;;
        --binary)  need_value "$@"; binary=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *)         usage >&2; die "unknown option '$1'" ;;
    esac
done
for count in ${workers//,/ }; do need_count --workers "$count"; done

if [[ -z $binary ]]; then
    (cd "$root" && swift build -c release --product roas >&2)
    binary="$root/.build/release/roas"
fi
[[ -x $binary ]] || die "no roas binary at $binary"

cache="${TMPDIR:-/tmp}/roas-scaleout"
work=$(mktemp -d "${TMPDIR:-/tmp}/roas-scaleout-run.XXXXXX")
nats_dir="$cache/nats"
mkdir -p "$cache"
edge_pid=""
cleanup() {
    [[ -n $edge_pid ]] && kill "$edge_pid" 2>/dev/null || true
    bash "$root/scripts/nats-cluster.sh" stop "$nats_dir" > /dev/null 2>&1 || true
    rm -rf "$nats_dir" "$work"
}
trap cleanup EXIT

stream_file="$cache/stream-$events.ndjson"
if [[ ! -s $stream_file ]]; then
    echo "making $stream_file" >&2
    "$binary" gen --seed 1 --events "$events" --users 200000 --creators 1000 --batch-size 1000 \
        --secret "$SECRET" > "$stream_file.tmp"
    mv "$stream_file.tmp" "$stream_file"
fi

now() { date +%s.%N; }
# Arithmetic on decimals with awk (no bc needed); `is` succeeds when a comparison holds.
calc() { awk "BEGIN { printf \"%.9f\", $1 }"; }
is() { awk "BEGIN { exit !($1) }"; }
# CPU seconds (user + system) a running process has used so far: /proc/PID/stat fields 14 and 15.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
brokers_cpu() {
    local total=0 file
    # One file at a time: nats-server writes its pid without a newline.
    for file in "$nats_dir"/n*/nats-server.pid; do
        total=$(calc "$total + $(cpu_of "$(cat "$file")")")
    done
    echo "$total"
}

echo "roas run on $events events (the reference), $runs runs:"
run_cpu_per_million=""
for run in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$work/run.time" "$binary" run --secret "$SECRET" --tolerance 0 --max-future 1h \
        --summary none < "$stream_file" > "$work/run.ndjson"
    read -r wall user system < "$work/run.time"
    cpu=$(calc "$user + $system")
    per=$(calc "$cpu * 1000000 / $events")
    run_cpu_per_million=${run_cpu_per_million:-$per}
    is "$per < $run_cpu_per_million" && run_cpu_per_million=$per
    printf '  run %d: %.2f s wall (%.2f M events/s), %.2f CPU-s (%.3f per M events)\n' \
        "$run" "$wall" "$(calc "$events / $wall / 1000000")" "$cpu" "$per"
done
sort "$work/run.ndjson" > "$work/run.sorted"

bash "$root/scripts/nats-cluster.sh" start "$nats_dir" > /dev/null
urls="nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
echo "cluster: 3 nodes, R3 ($urls); CPU ratios against roas run's best, $(printf '%.3f' "$run_cpu_per_million") CPU-s per M events"

for count in ${workers//,/ }; do
    for run in $(seq "$runs"); do
        stream="bench_${count}_${run}_$$"
        brokers_before=$(brokers_cpu)
        "$binary" serve --nats "$urls" --stream "$stream" --secret "$SECRET" --tolerance 0 \
            --listen-tcp 127.0.0.1:0 --no-http --log-level warning --summary none > /dev/null 2> "$work/edge.err" &
        edge_pid=$!
        port=""
        for _ in $(seq 300); do
            port=$(sed -n 's/^roas serve: tcp listening on .*:\([0-9]*\)$/\1/p' "$work/edge.err")
            [[ -n $port ]] && break
            kill -0 "$edge_pid" 2>/dev/null || die "the edge exited: $(cat "$work/edge.err")"
            sleep 0.1
        done
        [[ -n $port ]] || die "the edge did not listen: $(cat "$work/edge.err")"
        # The workers wait for the stream the edge made; each exits IDLE_MS after the last part.
        worker_pids=()
        for member in $(seq "$count"); do
            (
                /usr/bin/time -f "%U %S" -o "$work/w$member.time" "$binary" worker --nats "$urls" --stream "$stream" \
                    --member "$member/$count" --secret "$SECRET" --tolerance 0 --idle-exit "${IDLE_MS}ms" \
                    --summary none --output "$work/w$member.ndjson" 2> "$work/w$member.err"
                now > "$work/w$member.end"
            ) &
            worker_pids+=($!)
        done
        started=$(now)
        python3 "$root/Benchmarks/tcp_send.py" --port "$port" --input "$stream_file" > "$work/send.json"
        for pid in "${worker_pids[@]}"; do wait "$pid" || die "a worker failed: $(cat "$work"/w*.err)"; done
        edge_cpu=$(cpu_of "$edge_pid")
        kill "$edge_pid"
        wait "$edge_pid" 2>/dev/null || true
        edge_pid=""
        brokers=$(calc "$(brokers_cpu) - $brokers_before")
        last=0 workers_cpu=0
        for member in $(seq "$count"); do
            end=$(cat "$work/w$member.end")
            is "$end > $last" && last=$end
            read -r user system < "$work/w$member.time"
            workers_cpu=$(calc "$workers_cpu + $user + $system")
        done
        wall=$(calc "$last - $IDLE_MS / 1000 - $started")
        total=$(calc "$brokers + $edge_cpu + $workers_cpu")
        per=$(calc "$total * 1000000 / $events")
        same="rows equal roas run's"
        sort "$work"/w*.ndjson | cmp -s - "$work/run.sorted" || same="ROWS DIFFER from roas run's"
        printf '  %d workers, run %d: %.2f s wall (%.2f M events/s); CPU-s brokers %.2f, edge %.2f, workers %.2f, total %.2f (%.3f per M events, %.2fx roas run); %s\n' \
            "$count" "$run" "$wall" "$(calc "$events / $wall / 1000000")" "$brokers" "$edge_cpu" "$workers_cpu" \
            "$total" "$per" "$(calc "$per / $run_cpu_per_million")" "$same"
        rm -f "$work"/w*.ndjson
    done
done
