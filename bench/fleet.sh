#!/usr/bin/env bash
# The fleet's latencies (issue 19) against a real 3-member etcd cluster on
# loopback (Debian's etcd-server), with vnicd's fleet code in process
# (vnic-fleet-bench: FleetSync and a real LMDB file, which vnicd's workers
# read at their next loop): an etcd put of a VNIC's record to its commit in the
# host's database (p50, p99), the initial sync of --vnics VNICs into an empty
# database, and a VM's request committed through etcd (p50, p99).
# Results: bench/results/DATE-HOST-fleet.json (or --out FILE).
#
#   bench/fleet.sh BIN_DIR [--count N] [--vnics N] [--out FILE]
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args fleet count=200 vnics=1000 -- "$@"
command -v etcd >/dev/null || { echo "fleet.sh: etcd not found (apt-get install etcd-server)" >&2; exit 1; }
[[ -x $bin/vnic-fleet-bench ]] || { echo "fleet.sh: $bin/vnic-fleet-bench not built (swift build -c release)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if ((${#pids[@]})); then wait "${pids[@]}" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
base=$((20000 + RANDOM % 600 * 20))
initial=m1=http://127.0.0.1:$((base + 1)),m2=http://127.0.0.1:$((base + 3)),m3=http://127.0.0.1:$((base + 5))
for i in 0 1 2; do
    c=$((base + 2 * i)) p=$((base + 2 * i + 1))
    etcd --name m$((i + 1)) --data-dir "$tmp/m$i" --listen-client-urls http://127.0.0.1:$c --advertise-client-urls http://127.0.0.1:$c \
        --listen-peer-urls http://127.0.0.1:$p --initial-advertise-peer-urls http://127.0.0.1:$p --initial-cluster "$initial" \
        --initial-cluster-token "fleet-bench-$base" --initial-cluster-state new >"$tmp/m$i.log" 2>&1 &
    pids+=($!)
done
endpoints=127.0.0.1:$base,127.0.0.1:$((base + 2)),127.0.0.1:$((base + 4))
for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done
"$bin/vnic-fleet-bench" --etcd "$endpoints" --count "$count" --vnics "$vnics" >"$tmp/result.json"
python3 - "$tmp/result.json" "$out" "$count" "$vnics" <<'PY'
import json, os, platform, sys
r = json.load(open(sys.argv[1]))
out, count, vnics = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
p, v, s = r["put_to_enforced"], r["vm_request_through_etcd"], r["initial_sync"]
print(f"etcd put to enforced in the host's database: p50 {p['p50_us']:.0f} us, p99 {p['p99_us']:.0f} us ({count} puts)")
print(f"initial sync of {s['vnics']} VNICs: {s['ms']:.0f} ms")
print(f"VM request committed through etcd: p50 {v['p50_us']:.0f} us, p99 {v['p99_us']:.0f} us ({count} requests)")
r["benchmark"] = "fleet"
r["cluster"] = "3 etcd members on loopback (etcd " + os.popen("etcd --version").read().split("\n")[0].split()[-1] + ")"
r["machine"] = {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()}
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
json.dump(r, open(out, "w"), indent=1, sort_keys=True)
print(f"written: {out}")
PY
