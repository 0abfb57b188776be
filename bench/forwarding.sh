#!/usr/bin/env bash
# Forwarding benchmark, wire -> VM1, 64-byte frames, trafgen on one core (CPU 0),
# measured in one run against the Linux bridge between the same veths:
#   vnicd   : one worker (uplink with 1 queue) pinned to core 1
#   bridge  : uplink0 and the ports enslaved to a Linux bridge (bench/bridge-baseline.sh)
# The figure is what VM1's interface received per second (median of --runs runs,
# with min and max); vnicd's worker threads are run under malloc_count.so to report
# heap allocations per forwarded packet. Results: bench/results/DATE-HOST-forwarding.json.
#
#   bench/forwarding.sh BIN_DIR [--seconds S] [--runs R] [--out FILE]
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args forwarding seconds=5 runs=3 -- "$@"
[[ -f $root/build/malloc_count.so ]] || { echo "forwarding.sh: build/malloc_count.so missing (make bench builds it)" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "forwarding.sh: trafgen (netsniff-ng) not found" >&2; exit 1; }

source "$here/lab.sh"
bench_lab b 1
rx_packets() { ip -n "$p-vm1" -s -j link show dev vnic0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

# One 64-byte frame (60 bytes + FCS): wire0 -> VM1, IPv4/UDP to port 9.
cat >"$tmp/frame.cfg" <<'CFG'
{ 0x02,0x00,0x00,0x00,0x01,0x01, 0x02,0x00,0x00,0x00,0x00,0x01, 0x08,0x00,
  0x45,0x00,0x00,0x2e, 0x00,0x00,0x40,0x00, 0x40,0x11,0x26,0x1a, 10,77,0,1, 10,77,0,11,
  0x04,0x00,0x00,0x09, 0x00,0x1a,0x00,0x00,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0 }
CFG

# One measurement: trafgen for $seconds on CPU 0; prints received packets per second.
measure() {
    local before after t0 t1
    before=$(rx_packets); t0=$(date +%s.%N)
    in_ns wire timeout -s INT "$seconds" trafgen -o wire0 -c "$tmp/frame.cfg" -P 1 -C >/dev/null 2>&1 || true
    sleep 0.2
    after=$(rx_packets); t1=$(date +%s.%N)
    python3 -c "print(round(($after - $before) / ($t1 - $t0 - 0.2)))"
}

VNICD_ENV=(env LD_PRELOAD="$root/build/malloc_count.so")
declare -a vnicd_runs bridge_runs
start_vnicd --cores 1
in_ns wire ping -c 1 -W 2 10.77.0.11 >/dev/null
for r in $(seq "$runs"); do vnicd_runs+=("$(measure)"); done
kill -TERM "$vnicd_pid"; wait "$vnicd_pid" || true; vnicd_pid=
allocs=$(sed -n 's/^malloc_count: worker allocations //p' "$tmp/vnicd.log")
forwarded=$(sed -n 's/^vnicd: vnic vnic1: up rx \([0-9]*\) pkts.*/\1/p' "$tmp/vnicd.log")

bash "$here/bridge-baseline.sh" --prefix "$p" >/dev/null
# The bridge alone, as vnicd is measured alone: no br_netfilter pass (per namespace).
in_ns host sysctl -q -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
    net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
ip -n "$p-host" link set dev br0 type bridge ageing_time 30000 2>/dev/null || true
bridge -n "$p-host" fdb replace 02:00:00:00:01:01 dev vm1p master static
in_ns wire ping -c 1 -W 2 10.77.0.11 >/dev/null
for r in $(seq "$runs"); do bridge_runs+=("$(measure)"); done

python3 - "$out" "$seconds" "$allocs" "$forwarded" "${vnicd_runs[*]}" "${bridge_runs[*]}" <<'PY'
import json, os, platform, statistics, sys
out, seconds, allocs, forwarded, v, b = sys.argv[1:]
v = [int(x) for x in v.split()]; b = [int(x) for x in b.split()]
allocs = int(allocs or 0); forwarded = int(forwarded or 0)
def fig(xs): return {"median_pps": int(statistics.median(xs)), "min_pps": min(xs), "max_pps": max(xs), "runs": xs}
res = {
  "benchmark": "forwarding wire -> VM1, 64-byte frames, trafgen -P 1 (CPU 0)",
  "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
              "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
  "seconds_per_run": float(seconds),
  "vnicd": fig(v) | {"worker_heap_allocations": allocs, "packets_forwarded": forwarded,
                      "allocations_per_packet": (allocs / forwarded) if forwarded else None},
  "linux_bridge": fig(b),
}
res["ratio_vnicd_to_bridge"] = round(res["vnicd"]["median_pps"] / max(res["linux_bridge"]["median_pps"], 1), 3)
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
print(f"{'system':<14}{'median pps':>12}{'min':>12}{'max':>12}")
for k in ("vnicd", "linux_bridge"):
    r = res[k]; print(f"{k:<14}{r['median_pps']:>12}{r['min_pps']:>12}{r['max_pps']:>12}")
print(f"vnicd / bridge: {res['ratio_vnicd_to_bridge']}")
app = res["vnicd"]["allocations_per_packet"]
print(f"vnicd worker heap allocations: {allocs} for {forwarded} packets ({app if app is not None else 'n/a'} per packet)")
print(f"written: {out}")
PY
