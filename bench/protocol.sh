#!/usr/bin/env bash
# Configuration-path latency, in a lab with vnicd:
#   1. request to reply: vnic-protocol-bench sends --count real requests (mtu,
#      alternating values, allowed by the policy) from VM1, one at a time, and
#      times each until its reply (policy check, LMDB commit with the audit
#      entry, reconcile, reply). Target p99 < 1 ms.
#   2. host change to enforced in the dataplane: VM1 (ip-nospoof) sends from an
#      address it does not have yet, so every frame is a spoof; the address is
#      committed in-process (as vnicadm set does) and the time from just before
#      the commit to the first such frame at the wire is the latency. Target < 10 ms.
# Results: bench/results/DATE-HOST-protocol.json (or --out FILE).
#
#   bench/protocol.sh BIN_DIR [--count N] [--runs R] [--out FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: bench/protocol.sh BIN_DIR [--count N] [--runs R] [--out FILE]}; shift
count=200 runs=5 out=
while (($#)); do
    case $1 in
        --count) count=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "protocol.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
out=${out:-"$root/bench/results/$(date -u +%Y-%m-%d)-$(hostname -s)-protocol.json"}
source "$root/bench/lab.sh"
bench_lab p 1
"$bin/vnicadm" set-policy --db "$db" -p mtu=1280-9000 vnic1
"$bin/vnicadm" set-linkprop --db "$db" -p protection=mac-nospoof,ip-nospoof vnic1
VNICD_ENV=()
start_vnicd

requests=$(in_ns vm1 "$bin/vnic-protocol-bench" requests -i vnic0 --count "$count")
echo "request to reply: $requests"

enforced=()
for r in $(seq "$runs"); do
    ip=10.77.0.$((29 + r))
    in_ns wire "$bin/vnic-pktgen" --sink -i wire0 --duration 4 --idle 0.5 --src-ip "$ip" --json >"$tmp/sink" 2>/dev/null &
    sink=$!
    sleep 0.3
    in_ns vm1 "$bin/vnic-pktgen" -i vnic0 --dst-mac 02:00:00:00:00:01 --src-mac 02:00:00:00:01:01 --src-ip "$ip" \
        --dst-ip 10.77.0.1 --duration 2 --rate 20000 >/dev/null &
    gen=$!
    sleep 0.8
    t0=$("$bin/vnic-protocol-bench" commit --db "$db" --vnic vnic1 --ip "$ip/24")
    wait "$gen"; wait "$sink" || true
    first=$(python3 -c "import json; print(json.loads(open('$tmp/sink').read().splitlines()[-1])['first_arrival_ns'])")
    ms=$(python3 -c "print(round(($first - $t0) / 1e6, 3))")
    echo "run $r: set ip=$ip/24 enforced (first frame from it at the wire) after $ms ms"
    enforced+=("$ms")
done
python3 - "$out" "$requests" "${enforced[*]}" <<'PY'
import json, os, platform, statistics, sys
out, requests, enforced = sys.argv[1], json.loads(sys.argv[2]), [float(x) for x in sys.argv[3].split()]
res = {"benchmark": "configuration paths: VM request to reply, host change to enforced",
       "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()},
       "request_to_reply_us": requests,
       "set_to_enforced_ms": {"median": statistics.median(enforced), "max": max(enforced), "runs": enforced}}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
print(f"request to reply: p50 {requests['p50_us']:.0f} us, p99 {requests['p99_us']:.0f} us ({requests['answered']}/{requests['requests']} answered)")
print(f"set to enforced: median {statistics.median(enforced)} ms, max {max(enforced)} ms")
print(f"written: {out}")
PY
