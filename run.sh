#!/usr/bin/env bash
# linewatch's two entry points for a fresh Debian/Ubuntu machine, run as root:
#
#   ./run.sh test   installs what the test suite needs, then runs all of it (test output shown:
#                   the conformance and capture figures are printed by the tests):
#                   cargo fmt --check, cargo clippy -D warnings, cargo test (every crate).
#   ./run.sh demo   the demo: builds linewatch and the bench rig (release), makes a lab (two
#                   network namespaces joined by a veth pair), runs linewatch on one end and
#                   calm / spike / calm HTTP traffic from the other for about a minute: the
#                   status line, an alert firing and recovering, the reports, and the summary
#                   with its histograms. Ctrl-C ends it early; the lab is removed either way.
#
# The test corpus is read from ../shared/corpus beside this repository. With CI set, tests
# that need it fail when it is missing; without CI they say so and skip that part.
set -euo pipefail

cd "$(dirname "$0")"

# Debian packages each command needs beyond a Rust toolchain. Building: clang compiles the XDP
# program; libelf-dev, zlib1g-dev and pkg-config build libbpf (under the afxdp crate). Testing:
# tshark checks the generator's captures; nginx, curl, wrk, tcpdump, iproute2 and ping are the
# live tests' lab (network namespaces, veth, a real web server and real clients); tmux is the
# terminal the dashboard's tests type into.
BUILD_PACKAGES=(clang libelf-dev zlib1g-dev pkg-config)
TEST_PACKAGES=("${BUILD_PACKAGES[@]}" tshark nginx curl wrk tcpdump tcpreplay nmap python3-prometheus-client iproute2 iputils-ping util-linux tmux)
DEMO_PACKAGES=("${BUILD_PACKAGES[@]}" iproute2)

die() {
    echo "run.sh: $*" >&2
    exit 2
}

# Installs the Debian packages in "$@" that are not installed yet (apt-get update once).
install_missing() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}: run as root to install them"
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
    echo "run.sh: installing ${missing[*]}"
    # Packages such as nginx start their service when installed; the tests start their own
    # nginx in a network namespace, so keep the package's one from starting (policy-rc.d
    # answers "not now" to every service start during the install).
    local policy=/usr/sbin/policy-rc.d placed=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && placed=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        { [ "$placed" = 1 ] && rm -f "$policy"; die "installing ${missing[*]} failed"; }
    [ "$placed" = 1 ] && rm -f "$policy"
    return 0
}

need_cargo() {
    command -v cargo >/dev/null ||
        die "cargo not found: install a Rust toolchain (1.82 or newer) first, e.g. from rustup"
}

need_rust() {
    need_cargo
    cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
    cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"
}

run_tests() {
    install_missing "${TEST_PACKAGES[@]}"
    need_rust
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
    echo "== cargo clippy --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    echo "== cargo test"
    local log status=0
    log=$(mktemp)
    cargo test --workspace --profile ci --no-fail-fast -- --nocapture 2>&1 | tee "$log" || status=$?
    # One closing line for the whole suite: cargo prints a "test result" per test binary,
    # and the last of them is an empty doc-test run.
    awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
    rm -f "$log"
    return "$status"
}

run_demo() {
    [ "$(id -u)" -eq 0 ] || die "the demo builds network namespaces and attaches XDP: run it as root"
    install_missing "${DEMO_PACKAGES[@]}"
    need_cargo
    echo "run.sh: building linewatch and the bench rig (release; the first build takes a few minutes)"
    cargo build --release --quiet --bin linewatch --bin bench-rig
    exec ./target/release/bench-rig demo "$@"
}

case "${1:-}" in
    test) run_tests ;;
    demo) shift; run_demo "$@" ;;
    *) die "usage: ./run.sh test | ./run.sh demo" ;;
esac
