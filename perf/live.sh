#!/usr/bin/env bash
# Live capture against a real nginx: the highest rate wrk reaches in a two-namespace veth lab,
# whether linewatch loses anything at that rate, and what its worker costs. For each idle policy
# (and REPS repetitions, alternated so machine drift hits all alike) it runs linewatch MODE
# (mirror: --mirror on the serving veth; interface: --interface on a SPAN veth the script
# mirrors itself) while wrk drives nginx for SECS seconds, then compares linewatch's request count
# with nginx's access log.
#
#   REPS=3 SECS=10 MODE=mirror POLICIES="hybrid poll spin" bash perf/live.sh
#
# Needs root, nginx, wrk, iproute2, python3. Uses only the namespaces and 10.204.0.0/24 it creates,
# and removes them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
SECS=${SECS:-10}
MODE=${MODE:-mirror}
POLICIES=${POLICIES:-hybrid poll spin}
CONNS=${CONNS:-50}
LW=${LW:-target/release/linewatch}
NS_S=lwperf-s-$$ NS_C=lwperf-c-$$ DIR=$(mktemp -d /tmp/linewatch-live.XXXXXX)
[ -x "$LW" ] || cargo build --release --quiet

cleanup() {
    [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
    ip netns del "$NS_S" 2>/dev/null || true
    ip netns del "$NS_C" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ip netns add "$NS_S"; ip netns add "$NS_C"
ip link add lwps netns "$NS_S" type veth peer name lwpc netns "$NS_C"
ip -n "$NS_S" addr add 10.204.0.1/24 dev lwps; ip -n "$NS_C" addr add 10.204.0.2/24 dev lwpc
for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
ip -n "$NS_S" link set lwps up; ip -n "$NS_C" link set lwpc up
mkdir -p "$DIR/www/api" "$DIR/tmp"
echo ok > "$DIR/www/api/item"
cat > "$DIR/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; user root;
pid $DIR/nginx.pid; error_log $DIR/error.log;
events { worker_connections 4096; }
http {
  access_log $DIR/access.log;
  client_body_temp_path $DIR/tmp; proxy_temp_path $DIR/tmp; fastcgi_temp_path $DIR/tmp;
  uwsgi_temp_path $DIR/tmp; scgi_temp_path $DIR/tmp;
  server { listen 10.204.0.1:8080; root $DIR/www; }
}
NGINX
ip netns exec "$NS_S" nginx -c "$DIR/nginx.conf" > "$DIR/nginx.out" 2>&1 &
for _ in $(seq 50); do ip netns exec "$NS_C" curl -fs -o /dev/null http://10.204.0.1:8080/api/item && break; sleep 0.1; done

capture_if=lwps
args=(--mirror lwps)
if [ "$MODE" = interface ]; then
    ip -n "$NS_S" link add lwpm type veth peer name lwpx
    ip -n "$NS_S" link set lwpm up; ip -n "$NS_S" link set lwpx up
    ip netns exec "$NS_S" tc qdisc add dev lwps clsact
    for dir in ingress egress; do
        ip netns exec "$NS_S" tc filter add dev lwps "$dir" u32 match u32 0 0 action mirred egress mirror dev lwpm
    done
    capture_if=lwpx
    args=(--interface lwpx)
fi

printf '%-7s %3s %10s %10s %10s %8s %9s %8s %9s\n' policy rep "wrk req/s" requests "nginx log" dropped "worker s" "cpu %" "ns/frame"
for rep in $(seq "$REPS"); do
    for policy in $POLICIES; do
        : > "$DIR/access.log"
        ip netns exec "$NS_S" "$LW" "${args[@]}" --port 8080 --idle "$policy" --summary "$DIR/s.json" \
            > /dev/null 2> "$DIR/lw.err" &
        lw=$!
        for _ in $(seq 100); do grep -q 'capturing on' "$DIR/lw.err" && break; sleep 0.1; done
        rate=$(ip netns exec "$NS_C" wrk -t1 -c"$CONNS" -d"${SECS}s" http://10.204.0.1:8080/api/item |
            awk '/Requests\/sec/ { print $2 }')
        sleep 1
        kill -INT "$lw"; wait "$lw" || true
        python3 - "$DIR/s.json" "$DIR/access.log" "$policy" "$rep" "$rate" "$SECS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); log = sum(1 for _ in open(sys.argv[2]))
q = s["capture"]["queues"]; cpu = sum(x["cpu_seconds"] for x in q); frames = sum(x["frames"] for x in q)
secs = s["capture"]["wall_seconds"]
print(f'{sys.argv[3]:<7} {sys.argv[4]:>3} {float(sys.argv[5]):>10.0f} {s["requests"]:>10} {log:>10} '
      f'{s["dropped"]:>8} {cpu:>9.2f} {100 * cpu / secs:>8.1f} {cpu * 1e9 / max(frames, 1):>9.0f}')
PY
    done
done
echo "(cpu % = worker CPU time over the capture's wall time, ${SECS} s of traffic included; ns/frame = worker CPU per frame received)"
