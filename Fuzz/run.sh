#!/usr/bin/env bash
# Builds the fuzz targets of RoasCore (libFuzzer with AddressSanitizer) and runs each for a while.
#
#   Fuzz/run.sh --seconds N [target...]     targets: json frames engine log snapshot parts (default: all)
#
# Each target starts from a copy of its seed corpus (Fuzz/corpus/<target>; the committed corpus
# is never changed) and runs for N seconds, one after the other. The script prints each target's
# executions and their total, and exits 1 when a target found a crash, printing the input's path,
# its bytes and the command that reproduces it.
#
# Options:
#   --seconds N        time per target (default 30)
#   --corpus-out DIR   keep the working corpora in DIR/<target> (and start from them when present)
#   --findings DIR     where crash inputs go (default: a folder in $TMPDIR, kept when something is found)
#   --avoid LIST       keep away from known bugs of issue 16 still being fixed: overflow, decay
#                      (sets ROAS_FUZZ_AVOID; see Sources/FuzzSupport/Driver.swift)
#   --no-build         use the binaries already built
#   --seeds            rewrite Fuzz/corpus from the library's own outputs (FuzzSeeds), then stop
#   -- ARGS            pass ARGS on to libFuzzer
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)

all_targets=(json frames engine log snapshot parts)
seconds=30
corpus_out=""
findings=""
build=1
seeds=0
targets=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --corpus-out) corpus_out="$2"; shift 2 ;;
    --findings) findings="$2"; shift 2 ;;
    --avoid) export ROAS_FUZZ_AVOID="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --seeds) seeds=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

binary_name() {
  case "$1" in
    json) echo FuzzJSON ;; frames) echo FuzzFrames ;; engine) echo FuzzEngine ;;
    log) echo FuzzLog ;; snapshot) echo FuzzSnapshot ;; parts) echo FuzzParts ;;
    *) echo "run.sh: unknown target $1 (known: ${all_targets[*]})" >&2; exit 2 ;;
  esac
}
for target in "${targets[@]}"; do binary_name "$target" >/dev/null; done

scratch="$fuzz_dir/.build-fuzz"
# lld, which comes with the Swift toolchain: gold (the default here) stops with an internal error
# (dwarf_reader.cc:2713) linking some of these sanitized targets.
build_flags=(-c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -use-ld=lld)
if [ "$build" = 1 ]; then
  start=$(date +%s)
  swift build "${build_flags[@]}"
  echo "run.sh: built in $(( $(date +%s) - start )) s"
fi
bin=$(swift build "${build_flags[@]}" --show-bin-path)

# Sanitizer reports, not the Swift runtime's backtracer (whose helper thread trips AddressSanitizer).
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}"
if [ -x /opt/swift/usr/bin/llvm-symbolizer ] && [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  export ASAN_SYMBOLIZER_PATH=/opt/swift/usr/bin/llvm-symbolizer
fi

if [ "$seeds" = 1 ]; then
  "$bin/FuzzSeeds" "$fuzz_dir/corpus"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/roas-fuzz-run.XXXXXX")
# Files the targets write (the log target's segments): in memory when /dev/shm is there.
if [ -w /dev/shm ]; then scratch_files=$(mktemp -d /dev/shm/roas-fuzz-files.XXXXXX); else scratch_files="$work/tmp"; fi
[ -n "$findings" ] || findings="$work/findings"
mkdir -p "$findings"
findings=$(cd "$findings" && pwd)
failed=()
cleanup() {
  rm -rf "$work/tmp" "$work/corpus" "$scratch_files"
  # Keep the logs (and the default findings folder) only when something was found.
  if [ ${#failed[@]} -eq 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

total=0
summary=()
for target in "${targets[@]}"; do
  name=$(binary_name "$target")
  if [ -n "$corpus_out" ]; then
    corpus="$corpus_out/$target"
    mkdir -p "$corpus"
    cp -n "$fuzz_dir/corpus/$target/"* "$corpus/" 2>/dev/null || true
  else
    corpus="$work/corpus/$target"
    mkdir -p "$corpus"
    cp "$fuzz_dir/corpus/$target/"* "$corpus/"
  fi
  target_options=()
  case "$target" in json|frames) target_options=(-dict="$fuzz_dir/dict/json.dict") ;; esac
  # Event lines are short: longer inputs only slow the json target down (128 levels of nesting take 256 bytes).
  case "$target" in json) target_options+=(-max_len=1024) ;; esac
  mkdir -p "$scratch_files/$target"
  log="$work/$target.log"
  echo "run.sh: $target for $seconds s ($name, corpus $(ls "$corpus" | wc -l) files)"
  status=0
  ROAS_FUZZ_TMP="$scratch_files/$target" "$bin/$name" "$corpus" "${target_options[@]}" \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=20 -rss_limit_mb=4096 \
    -artifact_prefix="$findings/$target-" "${extra[@]}" > "$log" 2>&1 || status=$?
  rm -rf "${scratch_files:?}/$target"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  runs=${runs:-0}
  total=$(( total + runs ))
  summary+=("$(printf '%-9s %12s executions %8s/s' "$target" "$runs" "${speed:-0}")")
  if [ "$status" != 0 ]; then
    failed+=("$target")
    echo "run.sh: $target FAILED (libFuzzer exit status $status); the end of its log:"
    grep -v -E '^#[0-9]+ +(NEW|REDUCE|pulse|INITED)' "$log" | tail -n 60
    for input in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
      echo "run.sh: crashing input: $input ($(wc -c < "$input") bytes)"
      od -A d -t x1 -v "$input" | head -n 40
      echo "run.sh: reproduce with: SWIFT_BACKTRACE=enable=no $bin/$name $input"
      echo "run.sh: minimise with:  SWIFT_BACKTRACE=enable=no $bin/$name -minimize_crash=1 -runs=200000 -exact_artifact_path=$input.min $input"
    done
  fi
done

echo "run.sh: executions per target (${seconds} s each):"
printf '  %s\n' "${summary[@]}"
echo "  total     $(printf '%12s' "$total") executions"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: crashes in: ${failed[*]} (inputs and logs in $work, findings in $findings)"
  exit 1
fi
