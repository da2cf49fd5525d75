#!/usr/bin/env bash
# End-to-end benchmark of the release `roas run` on the reference workload.
# See Benchmarks/README.md ("End to end: e2e.sh") or run with --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: Benchmarks/e2e.sh [options] [-- roas-run-options...]

Generates a signed workload with `roas gen` (cached), runs the release `roas run` on it
--runs times and prints wall time, events/s, MB/s, peak RSS, rows, dead letters and whether
the summary's accounting balances, per run and the median, then one line of machine info.

  --events N       events to generate (default 10000000)
  --users N        users (default 1000000)
  --creators N     creators (default 5000)
  --seed N         generator seed (default 1)
  --duration D     generate this span of event time (e.g. 30d) instead of --events
  --runs K         timed runs of `roas run` (default 3)
  --binary PATH    use this roas binary instead of building one
  --keep           keep each run's rows and summary files (the directory is printed)
  --regen          generate the workload again even when it is cached
  --json           print the median figures as one JSON object on stdout (the table goes to stderr)
  -h, --help       this text
  -- ARGS...       passed to `roas run`, e.g. -- --model linear, -- --window 24h --slide 1h

Environment: SCRATCH (build folder, default <package>/.build), TMPDIR (cache in $TMPDIR/roas-e2e).
EOF
}

die() { echo "e2e.sh: $*" >&2; exit 2; }

export LC_ALL=C
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

events=10000000 users=1000000 creators=5000 seed=1 duration="" runs=3
binary="" keep=0 regen=0 json=0 events_given=0
run_args=()

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
need_count() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 needs a positive integer, got '$2'"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --events)   need_value "$@"; need_count "$1" "$2"; events=$2; events_given=1; shift 2 ;;
        --users)    need_value "$@"; need_count "$1" "$2"; users=$2; shift 2 ;;
        --creators) need_value "$@"; need_count "$1" "$2"; creators=$2; shift 2 ;;
        --seed)     need_value "$@"; [[ $2 =~ ^[0-9]+$ ]] || die "--seed needs an integer"; seed=$2; shift 2 ;;
        --duration) need_value "$@"; duration=$2; shift 2 ;;
        --runs)     need_value "$@"; need_count "$1" "$2"; runs=$2; shift 2 ;;
        --binary)   need_value "$@"; binary=$2; shift 2 ;;
        --keep)     keep=1; shift ;;
        --regen)    regen=1; shift ;;
        --json)     json=1; shift ;;
        -h|--help)  usage; exit 0 ;;
        --)         shift; run_args=("$@"); break ;;
        *)          usage >&2; die "unknown option '$1'" ;;
    esac
done
[[ -n $duration && $events_given -eq 1 ]] && die "--events and --duration exclude each other"
[[ -z $duration || $duration =~ ^[0-9a-z]+$ ]] || die "--duration '$duration' is not a duration (e.g. 30d, 1h30m)"

# The table goes to stdout, or to stderr with --json so that stdout holds only the JSON.
if [[ $json -eq 1 ]]; then exec 3>&2; else exec 3>&1; fi
say() { printf '%s\n' "$*" >&3; }
log() { printf '%s\n' "$*" >&2; }

# GNU time: -f and %M are not in the BSD or shell-builtin `time`.
if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null; then
    die "needs GNU time at /usr/bin/time (Debian/Ubuntu: apt-get install time)"
fi

# --- the binary -------------------------------------------------------------------------------
if [[ -z $binary ]]; then
    scratch=${SCRATCH:-$root/.build}
    log "building: swift build -c release --product roas --scratch-path $scratch"
    swift build -c release --product roas --package-path "$root" --scratch-path "$scratch" >&2
    binary=$(swift build -c release --package-path "$root" --scratch-path "$scratch" --show-bin-path)/roas
fi
[[ -x $binary ]] || die "no executable roas at '$binary'"

# --- the workload, cached by its generator arguments ------------------------------------------
gen_args=(--seed "$seed" --users "$users" --creators "$creators" --secret "$SECRET")
if [[ -n $duration ]]; then
    gen_args+=(--duration "$duration"); key="seed$seed-d$duration-u$users-c$creators"
else
    gen_args+=(--events "$events"); key="seed$seed-e$events-u$users-c$creators"
fi
cache=${TMPDIR:-/tmp}/roas-e2e
workload=$cache/gen-$key.ndjson
mkdir -p "$cache"

gen_s=""
if [[ $regen -eq 1 || ! -s $workload ]]; then
    log "generating: roas gen ${gen_args[*]} > $workload"
    partial=$workload.partial.$$
    trap 'rm -f "$partial" "$partial.err" "$partial.time"' EXIT
    if ! /usr/bin/time -f '%e %M' -o "$partial.time" "$binary" gen "${gen_args[@]}" > "$partial" 2> "$partial.err"; then
        cat "$partial.err" >&2; rm -f "$partial" "$partial.err" "$partial.time"; die "roas gen failed"
    fi
    read -r gen_s _ < "$partial.time"
    rm -f "$partial.err" "$partial.time"
    mv -f "$partial" "$workload"   # only a complete file ever gets the cached name
    trap - EXIT
    gen_note="generated in $gen_s s"
else
    gen_note="cached (--regen to generate again)"
fi
input_bytes=$(wc -c < "$workload")
say "workload: roas gen ${gen_args[*]}"
say "          $workload, $(awk -v b="$input_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB, $gen_note"
say "run:      roas run --secret ... --tolerance 0${run_args[*]:+ ${run_args[*]}} --summary json < workload > rows"

# --- the runs ---------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/roas-e2e-run.XXXXXX")
if [[ $keep -eq 0 ]]; then trap 'rm -rf "$work"' EXIT; fi

# field NAME FILE: the value of a top-level number/boolean (or, for an object, the object) in the summary line.
field() {
    local v
    v=$(sed -n -e "s/.*\"$1\" *: *\({[^}]*}\).*/\1/p" -e "t" -e "s/.*\"$1\" *: *\([^,}]*\).*/\1/p" "$2" | head -n 1)
    [[ -n $v ]] || die "no \"$1\" in the summary $2"
    printf '%s' "$v"
}

header=$(printf '%-7s %8s %11s %8s %13s %9s %13s %9s' run 'wall s' 'events/s' 'MB/s' 'peak RSS MiB' rows 'dead letters' balanced)
say ""
say "$header"
walls=() rates=() mbs=() rsss=() rowss=() deads=() all_balanced=1 lines_read="" runs_json=()
for ((i = 1; i <= runs; i++)); do
    rows_file=$work/rows-$i.ndjson summary_file=$work/summary-$i.json time_file=$work/time-$i.txt
    if ! /usr/bin/time -f '%e %M' -o "$time_file" \
        "$binary" run --secret "$SECRET" --tolerance 0 "${run_args[@]}" --summary json \
        < "$workload" > "$rows_file" 2> "$summary_file"; then
        cat "$summary_file" >&2; die "roas run failed (run $i)"
    fi
    grep '^{' "$summary_file" | tail -n 1 > "$summary_file.line" || die "no JSON summary from roas run (run $i): $(cat "$summary_file")"
    s=$summary_file.line
    read -r wall rss_kib < "$time_file"
    lines=$(field lines_read "$s")
    bytes=$(field bytes_read "$s")
    final=$(field final_rows "$s")
    updates=$(field update_rows "$s")
    dead=$(field dead_letter_count "$s")
    balanced=$(field balanced "$s")
    rows=$((final + updates)) lines_read=$lines
    [[ $bytes -eq $input_bytes ]] || log "run $i: bytes_read $bytes differs from the file's $input_bytes bytes"
    written=$(wc -l < "$rows_file")
    [[ $written -eq $rows ]] || log "run $i: the rows file has $written lines, the summary says $rows rows"
    [[ $balanced == true ]] || all_balanced=0
    read -r rate mb rss_mib < <(awk -v l="$lines" -v b="$bytes" -v w="$wall" -v k="$rss_kib" \
        'BEGIN { if (w <= 0) w = 0.01; printf "%d %.1f %.1f\n", l / w, b / w / 1e6, k / 1024 }')
    say "$(printf '%-7s %8.2f %11d %8.1f %13.1f %9d %13d %9s' "$i" "$wall" "$rate" "$mb" "$rss_mib" "$rows" "$dead" \
        "$([[ $balanced == true ]] && echo yes || echo NO)")"
    if [[ $dead -gt 0 ]]; then say "        dead letters by reason: $(field dead_letters "$s")"; fi
    walls+=("$wall") rates+=("$rate") mbs+=("$mb") rsss+=("$rss_mib") rowss+=("$rows") deads+=("$dead")
    runs_json+=("{\"wall_s\":$wall,\"events_per_s\":$rate,\"mb_per_s\":$mb,\"peak_rss_mib\":$rss_mib,\"rows\":$rows,\"dead_letters\":$dead,\"balanced\":$balanced}")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.4f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m_wall=$(median "${walls[@]}") m_rate=$(median "${rates[@]}") m_mb=$(median "${mbs[@]}")
m_rss=$(median "${rsss[@]}") m_rows=$(median "${rowss[@]}") m_dead=$(median "${deads[@]}")
say "$(printf '%-7s %8.2f %11.0f %8.1f %13.1f %9.0f %13.0f %9s' median "$m_wall" "$m_rate" "$m_mb" "$m_rss" "$m_rows" "$m_dead" \
    "$([[ $all_balanced -eq 1 ]] && echo yes || echo NO)")"
say "events/s = lines read ($lines_read: events and batch headers) / wall s; MB/s = $input_bytes input bytes / wall s / 1e6"
[[ $keep -eq 1 ]] && say "kept: $work (rows-N.ndjson, summary-N.json, time-N.txt)"

# --- the machine ------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
cpu=${cpu:-$(uname -m)}
version=$("$binary" --version 2>/dev/null || echo unknown)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit+="+dirty"
fi
say ""
say "machine: $(nproc) cpus, $cpu; roas $version, commit $commit; binary $binary"

if [[ $json -eq 1 ]]; then
    esc() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
    args_json="" sep=""
    for a in "${run_args[@]}"; do args_json+="$sep$(esc "$a")"; sep=","; done
    runs_list=$(IFS=,; echo "${runs_json[*]}")
    printf '{"workload":%s,"input_bytes":%d,"lines_read":%d,"gen_s":%s,"run_args":[%s],"runs":%d,' \
        "$(esc "roas gen ${gen_args[*]}")" "$input_bytes" "$lines_read" "${gen_s:-null}" "$args_json" "$runs"
    printf '"wall_s":%.2f,"events_per_s":%.0f,"mb_per_s":%.1f,"peak_rss_mib":%.1f,"rows":%.0f,"dead_letters":%.0f,"balanced":%s,' \
        "$m_wall" "$m_rate" "$m_mb" "$m_rss" "$m_rows" "$m_dead" "$([[ $all_balanced -eq 1 ]] && echo true || echo false)"
    printf '"per_run":[%s],"nproc":%d,"cpu":%s,"version":%s,"commit":%s}\n' \
        "$runs_list" "$(nproc)" "$(esc "$cpu")" "$(esc "$version")" "$(esc "$commit")"
fi

[[ $all_balanced -eq 1 ]] || { log "e2e.sh: a run's summary does not balance"; exit 1; }
