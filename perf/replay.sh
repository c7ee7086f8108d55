#!/usr/bin/env bash
# linewatch beside httpry and tshark on the same pcap, measured side by side in one run.
#
#   perf/replay.sh
#
# Builds gen-capture and linewatch (release), generates the 1,000,000-request bench capture
# (gen-capture --bench: 100 s at 10,000 requests/s, keep-alive, responses, port 80), warms the
# page cache, then runs the tools round-robin (linewatch, linewatch --workers 1, httpry, tshark,
# then again) so drift in the machine's state hits every tool alike. Prints a markdown table:
# median/min/max wall seconds, requests/s (the capture's request count over the median),
# linewatch's throughput over each tool's, and peak RSS.
#
# Environment:
#   REPS=5            repetitions of each tool
#   TSHARK_REPS=1     repetitions of tshark, which is slow (minutes on the 1M capture)
#   REQUESTS=N        a smaller capture (gen-capture --bench --requests N), e.g. 100000
#   DIR=path          where the capture is kept (default ${TMPDIR:-/tmp}/linewatch-replay); a
#                     capture already there with the recorded size is reused
#   SKIP_LINEWATCH=1  measure httpry and tshark only (while the linewatch binary is missing)
#   CARGO_TARGET_DIR  honoured
#
# Needs: cargo, GNU time (/usr/bin/time, package "time"), httpry, tshark.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk with '.' decimals

cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-5}
TSHARK_REPS=${TSHARK_REPS:-1}
REQUESTS=${REQUESTS:-}
DIR=${DIR:-${TMPDIR:-/tmp}/linewatch-replay}
SKIP_LINEWATCH=${SKIP_LINEWATCH:-0}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

die() {
    echo "replay.sh: $*" >&2
    exit 2
}

[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, not '$REPS'"
[[ $TSHARK_REPS =~ ^[0-9]+$ ]] || die "TSHARK_REPS must be an integer, not '$TSHARK_REPS'"
[[ -z $REQUESTS || $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "REQUESTS must be a positive integer"
[ -x /usr/bin/time ] || die "GNU time missing (/usr/bin/time): apt-get install time"
command -v httpry >/dev/null || die "httpry missing: apt-get install httpry"
command -v tshark >/dev/null || die "tshark missing: apt-get install tshark"

# ---- build
echo "== building (release)" >&2
cargo build --release --quiet -p linewatch-bench-rig --bin gen-capture
GEN=$TARGET/release/gen-capture
LINEWATCH=$TARGET/release/linewatch
if [ "$SKIP_LINEWATCH" = 1 ]; then
    echo "replay.sh: SKIP_LINEWATCH=1: linewatch is not built or measured" >&2
else
    cargo build --release --quiet --bin linewatch
    [ -x "$LINEWATCH" ] || die "$LINEWATCH was not built (SKIP_LINEWATCH=1 measures the others)"
fi

# ---- capture (deterministic, so a file of the recorded size is the same file)
mkdir -p "$DIR"
if [ -n "$REQUESTS" ]; then
    NAME=bench-$REQUESTS
    GEN_ARGS=(--bench --requests "$REQUESTS")
else
    NAME=bench-1m
    GEN_ARGS=(--bench)
fi
CAPTURE=$DIR/$NAME.pcap
TRUTH=$DIR/$NAME.json

# A number field of the truth JSON (gen-capture writes one key per line).
truth_field() {
    sed -n "s/^ *\"$1\": *\([0-9]*\),\{0,1\}$/\1/p" "$TRUTH" | head -n 1
}

size_of() { stat -c %s "$1"; }

if [ -f "$CAPTURE" ] && [ -f "$TRUTH" ] && [ "$(size_of "$CAPTURE")" = "$(truth_field bytes)" ]; then
    echo "== reusing $CAPTURE" >&2
else
    echo "== generating $CAPTURE" >&2
    "$GEN" "${GEN_ARGS[@]}" --out "$CAPTURE" --truth "$TRUTH" >&2
fi
REQUEST_COUNT=$(truth_field requests)
RESPONSE_COUNT=$(truth_field responses)
PACKETS=$(truth_field packets)
BYTES=$(size_of "$CAPTURE")
[ -n "$REQUEST_COUNT" ] && [ "$REQUEST_COUNT" -gt 0 ] || die "no request count in $TRUTH"

echo "== warming the page cache" >&2
cat "$CAPTURE" >/dev/null

# ---- the tools: a name, how many runs, the command (stdout goes to /dev/null)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

TOOLS=()
declare -A RUNS CMD ERR
add_tool() {
    local name=$1 runs=$2
    shift 2
    TOOLS+=("$name")
    RUNS[$name]=$runs
    CMD[$name]=$(printf '%q ' "$@")
    ERR[$name]=$WORK/stderr-${#TOOLS[@]}
}
if [ "$SKIP_LINEWATCH" != 1 ]; then
    add_tool "linewatch" "$REPS" "$LINEWATCH" --read "$CAPTURE" --summary /dev/null
    add_tool "linewatch --workers 1" "$REPS" \
        "$LINEWATCH" --read "$CAPTURE" --summary /dev/null --workers 1
fi
# httpry's default capture filter is "tcp port 80 or 8080" and its default methods include
# GET, POST and HEAD: it reads this capture as it is. Its log goes to /dev/null (-o); what it
# prints on stderr ("N http packets parsed") is kept for the check below.
add_tool "httpry" "$REPS" httpry -r "$CAPTURE" -o /dev/null
add_tool "tshark" "$TSHARK_REPS" tshark -r "$CAPTURE" -Y http.request -n

declare -A TIMES RSS
# Runs tool $1 once: wall time from EPOCHREALTIME, peak RSS (KiB) from GNU time.
run_once() {
    local name=$1 start end rss
    start=$EPOCHREALTIME
    if ! eval "/usr/bin/time -f %M -o $WORK/rss ${CMD[$name]}" >/dev/null 2>"${ERR[$name]}"; then
        echo "replay.sh: '$name' failed:" >&2
        tail -n 5 "${ERR[$name]}" >&2
        exit 1
    fi
    end=$EPOCHREALTIME
    rss=$(tail -n 1 "$WORK/rss")
    TIMES[$name]+="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }') "
    if [ -z "${RSS[$name]:-}" ] || [ "$rss" -gt "${RSS[$name]}" ]; then
        RSS[$name]=$rss
    fi
}

MAX_RUNS=$REPS
[ "$TSHARK_REPS" -gt "$MAX_RUNS" ] && MAX_RUNS=$TSHARK_REPS
for ((rep = 1; rep <= MAX_RUNS; rep++)); do
    for name in "${TOOLS[@]}"; do
        [ "$rep" -le "${RUNS[$name]}" ] || continue
        echo "== round $rep/$MAX_RUNS: $name" >&2
        run_once "$name"
    done
done

# ---- what each tool found (linewatch: one more, untimed run that keeps its summary)
FOUND_LINEWATCH=
if [ "$SKIP_LINEWATCH" != 1 ]; then
    "$LINEWATCH" --read "$CAPTURE" --summary "$WORK/summary.json" >/dev/null 2>&1 || true
    FOUND_LINEWATCH=$(grep -o '"requests": *[0-9]*' "$WORK/summary.json" 2>/dev/null |
        head -n 1 | grep -o '[0-9]*$' || true)
fi
FOUND_HTTPRY=$(grep -o '^[0-9]* http packets parsed' "${ERR[httpry]}" | grep -o '^[0-9]*' || true)

# ---- table
stats() { # times... -> "median min max"
    printf '%s\n' "$@" | sort -g | awk '{ t[NR] = $1 }
        END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
              printf "%.3f %.3f %.3f\n", m, t[1], t[NR] }'
}
declare -A MEDIAN MIN MAX
for name in "${TOOLS[@]}"; do
    [ -n "${TIMES[$name]:-}" ] || continue
    # shellcheck disable=SC2086 # the times are a space-separated list
    read -r median min max < <(stats ${TIMES[$name]})
    MEDIAN[$name]=$median MIN[$name]=$min MAX[$name]=$max
done
REFERENCE=${MEDIAN[linewatch]:-}

echo
echo "Replay of $(basename "$CAPTURE"): $REQUEST_COUNT requests, $RESPONSE_COUNT responses," \
    "$PACKETS packets, $((BYTES / 1048576)) MiB; $(nproc) CPUs," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1); $(date -u +%Y-%m-%d)."
echo "Runs: $REPS per tool, alternated round-robin; tshark $TSHARK_REPS (TSHARK_REPS; it is slow)."
echo
echo "| tool | runs | median s | min s | max s | requests/s | linewatch/tool | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in "${TOOLS[@]}"; do
    [ -n "${MEDIAN[$name]:-}" ] || continue
    awk -v name="$name" -v runs="${RUNS[$name]}" -v med="${MEDIAN[$name]}" \
        -v min="${MIN[$name]}" -v max="${MAX[$name]}" -v req="$REQUEST_COUNT" \
        -v ref="$REFERENCE" -v rss="${RSS[$name]}" 'BEGIN {
            rate = med > 0 ? sprintf("%.0f", req / med) : "-"
            ratio = (ref != "" && ref > 0) ? sprintf("%.2f", med / ref) : "n/a"
            printf "| %s | %d | %.3f | %.3f | %.3f | %s | %s | %.1f |\n",
                name, runs, med, min, max, rate, ratio, rss / 1024 }'
done
echo
echo "linewatch/tool is throughput (the tool's median time over linewatch's): above 1, linewatch is faster."
FOUND="Found: truth $REQUEST_COUNT requests + $RESPONSE_COUNT responses"
FOUND+="; httpry ${FOUND_HTTPRY:-?} HTTP packets (requests + responses)"
[ "$SKIP_LINEWATCH" = 1 ] || FOUND+="; linewatch ${FOUND_LINEWATCH:-?} requests (its --summary)"
echo "$FOUND."
