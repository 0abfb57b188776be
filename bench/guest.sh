#!/usr/bin/env bash
# A real guest through vnicd and through a Linux bridge, same tap, same run:
# `vnic-lab up --vms 1 --qemu 1` boots a QEMU guest (TCG here: slow, so the
# guest, not the dataplane, bounds these figures) on tap vm1t with QEMU's
# default virtio-net offloads, on a 2-queue uplink. Per system:
#   - packets/s wire -> guest: 64-byte UDP from vnic-pktgen on wire0 at each
#     offered rate for S seconds, counted by the guest's eth0 (rx_packets);
#   - TCP Mbit/s wire -> guest and guest -> wire (iperf3, the guest's TSO and
#     partial checksums on: vnicd segments and completes them).
# Then the per-packet cost of the checksum handling from vnic-pipeline-bench
# (VNIC_BENCH_FRAME=tcp: the test for a partial checksum and a completion).
#
#   bench/guest.sh BIN_DIR [--seconds S] [--rates R1,R2,..] [--out FILE]
#
# Results: bench/results/DATE-HOST-guest.json. Needs what `vnic-lab up --qemu`
# needs (qemu-system-x86, linux-image-amd64, busybox-static, cpio) and iperf3.
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args guest seconds=3 rates=10000,20000,50000 -- "$@"
p=bg$$ dir=$(mktemp -d) vnicd_pid=
cleanup() {
    [[ -n $vnicd_pid ]] && kill "$vnicd_pid" 2>/dev/null && wait "$vnicd_pid" 2>/dev/null || true
    "$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
g() { "$bin/vnic-lab" guest exec --prefix "$p" --timeout 120 1 -- "$@"; }
in_ns() { nsenter --net=/run/netns/$p-$1 "${@:2}"; }

"$bin/vnic-lab" up --prefix "$p" --vms 1 --queues 2 --qemu 1 >/dev/null
db=$dir/vnic.db
"$bin/vnicadm" create-vnic --db "$db" -l uplink0 -m 02:00:00:00:01:01 --port vm1t -i 10.77.0.11/24 vnic1 >/dev/null

# Offered rate -> received by the guest in S seconds, as packets/s.
pps() {
    local r out=() before after
    for r in ${rates//,/ }; do
        before=$(g cat /sys/class/net/eth0/statistics/rx_packets)
        in_ns wire "$bin/vnic-pktgen" -i wire0 --dst-mac 02:00:00:00:01:01 --dst-ip 10.77.0.11 \
            --rate "$r" --duration "$seconds" --json >/dev/null
        sleep 0.5
        after=$(g cat /sys/class/net/eth0/statistics/rx_packets)
        out+=("$r:$(( (after - before) / seconds ))")
    done
    echo "${out[*]}"
}
# TCP Mbit/s: iperf3 in the guest as the server, the wire as client (-R: the guest sends).
tcp() {
    local dirflag=$1
    g "iperf3 -s -1 -D -p 5201" >/dev/null; sleep 0.5
    in_ns wire iperf3 -c 10.77.0.11 -p 5201 -t 5 $dirflag -J \
        | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6, 1))'
}
measure() { echo "pps=$(pps) tcp_to_guest=$(tcp '') tcp_from_guest=$(tcp -R)"; }

# vnicd
nsenter --net=/run/netns/$p-host "$bin/vnicd" --db "$db" --queues 2 >"$dir/vnicd.log" 2>&1 &
vnicd_pid=$!
for _ in $(seq 100); do grep -q "vnic vnic1 up" "$dir/vnicd.log" && break; sleep 0.1; done
in_ns wire ping -c 1 -W 5 10.77.0.11 >/dev/null
vnicd=$(measure)
kill "$vnicd_pid"; wait "$vnicd_pid" 2>/dev/null || true; vnicd_pid=

# Linux bridge on the same tap and uplink
ip -n "$p-host" link add br0 address 02:00:00:00:00:03 type bridge stp_state 0 mcast_snooping 0
for dev in uplink0 vm1t; do ip -n "$p-host" link set dev "$dev" master br0 up; done
ip -n "$p-host" link set dev br0 up
in_ns wire ping -c 1 -W 5 10.77.0.11 >/dev/null
bridge=$(measure)

# The checksum handling's cost per packet (in-memory pipeline, callgrind-free timing).
pipeline=$(VNIC_BENCH_FRAME=tcp "$bin/vnic-pipeline-bench" 1000000 3 2>/dev/null | grep -E '^(checksum completion|segmentation|pipeline \()' || true)

python3 - "$out" "$seconds" "$vnicd" "$bridge" "$pipeline" <<'PY'
import json, os, platform, sys
out, seconds, v, b, pipeline = sys.argv[1:]
def parse(s):
    # "pps=R1:N1 R2:N2 tcp_to_guest=X tcp_from_guest=Y"
    pps_part, rest = s.split(" tcp_to_guest=")
    to_guest, from_guest = rest.split(" tcp_from_guest=")
    pps = {int(r): int(n) for r, n in (x.split(":") for x in pps_part[len("pps="):].split())}
    return {"received_pps_by_offered_pps": pps, "tcp_mbit_to_guest": float(to_guest),
            "tcp_mbit_from_guest": float(from_guest)}
pipe = [l.strip() for l in pipeline.splitlines() if l.strip()]
res = {
  "benchmark": "a QEMU guest (TCG, 1 vCPU, QEMU's default virtio-net) on tap vm1t: wire -> guest 64-byte UDP, TCP both ways (iperf3, 5 s)",
  "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
              "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
  "seconds_per_rate": float(seconds),
  "vnicd": parse(v), "linux_bridge": parse(b),
  "checksum_handling_pipeline_tcp": pipe,
}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
print(f"{'system':<14}{'offered->received pps':<40}{'TCP to guest':>14}{'from guest':>12}")
for k in ("vnicd", "linux_bridge"):
    r = res[k]
    rates = " ".join(f"{o}->{n}" for o, n in r["received_pps_by_offered_pps"].items())
    print(f"{k:<14}{rates:<40}{r['tcp_mbit_to_guest']:>11} Mb{r['tcp_mbit_from_guest']:>9} Mb")
print(f"results: {out}")
PY
