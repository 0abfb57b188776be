#!/usr/bin/env bash
# Configuration-path latency, in a lab with vnicd:
#   1. request to reply: vnic-protocol-bench sends --count real requests (mtu,
#      alternating values, allowed by the policy) from VM1, one at a time, and
#      times each until its reply (policy check, LMDB commit with the audit
#      entry, reconcile, reply). Target p99 < 1 ms. Measured twice: with the
#      database on disk (as deployed; the commit waits for one fdatasync) and
#      on tmpfs (no flush), which tells vnicd's own share from the disk's.
#   2. host change to enforced in the dataplane: VM1 (ip-nospoof) sends from an
#      address it does not have yet, so every frame is a spoof; the address is
#      committed in-process (as vnicadm set does) and the time from just before
#      the commit to the first such frame at the wire is the latency. Target < 10 ms.
# Results: bench/results/DATE-HOST-protocol.json (or --out FILE).
#
#   bench/protocol.sh BIN_DIR [--count N] [--runs R] [--out FILE]
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args protocol count=200 runs=5 -- "$@"
source "$root/bench/lab.sh"
bench_request_lab p vnic1

requests=$(in_ns vm1 "$bin/vnic-protocol-bench" requests -i vnic0 --count "$count")
echo "request to reply (database on disk): $requests"
# The flush alone, as this disk does it between idle periods (what a commit waits for).
flush=$(python3 - "$tmp" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "flush-probe"), os.O_RDWR | os.O_CREAT, 0o600)
d = []
for i in range(100):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    t = time.perf_counter_ns(); os.fdatasync(fd); d.append((time.perf_counter_ns() - t) / 1000)
    time.sleep(0.02)
d.sort()
print('{"p50_us": %.0f, "p99_us": %.0f}' % (d[50], d[98]))
PY
)
echo "fdatasync on that disk: $flush"

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
stop_vnicd
extra_tmp=$(mktemp -d -p /dev/shm)
cp "$db" "$extra_tmp/vnic.db"
db=$extra_tmp/vnic.db
start_vnicd
requests_tmpfs=$(in_ns vm1 "$bin/vnic-protocol-bench" requests -i vnic0 --count "$count")
echo "request to reply (database on tmpfs): $requests_tmpfs"
python3 - "$out" "$requests" "${enforced[*]}" "$requests_tmpfs" "$flush" <<'PY'
import json, os, platform, statistics, sys
out, requests, enforced = sys.argv[1], json.loads(sys.argv[2]), [float(x) for x in sys.argv[3].split()]
tmpfs, flush = json.loads(sys.argv[4]), json.loads(sys.argv[5])
res = {"benchmark": "configuration paths: VM request to reply, host change to enforced",
       "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()},
       "request_to_reply_us": requests,
       "request_to_reply_tmpfs_us": tmpfs,
       "disk_fdatasync_us": flush,
       "set_to_enforced_ms": {"median": statistics.median(enforced), "max": max(enforced), "runs": enforced}}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
print(f"request to reply, database on disk:  p50 {requests['p50_us']:.0f} us, p99 {requests['p99_us']:.0f} us ({requests['answered']}/{requests['requests']} answered)")
print(f"request to reply, database on tmpfs: p50 {tmpfs['p50_us']:.0f} us, p99 {tmpfs['p99_us']:.0f} us ({tmpfs['answered']}/{tmpfs['requests']} answered)")
print(f"the disk's fdatasync alone:          p50 {flush['p50_us']:.0f} us, p99 {flush['p99_us']:.0f} us")
print(f"set to enforced: median {statistics.median(enforced)} ms, max {max(enforced)} ms")
print(f"written: {out}")
PY
