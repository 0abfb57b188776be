#!/usr/bin/env bash
# A container's veth at Linux's default offloads (transmit checksum offload on:
# vnicd completes the partial checksums) against the same lab with them off,
# same run: iperf3 TCP VM1 -> wire and wire -> VM1, and UDP with 3000-byte
# datagrams (larger than the MTU: fragmented), through vnicd.
#
#   bench/offloads.sh BIN_DIR [--seconds S] [--runs N] [--out FILE]
#
# Results: bench/results/DATE-HOST-offloads.json (median Mbit/s per case and the
# ratio default/off).
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args offloads seconds=5 runs=3 -- "$@"
p=bo$$ dir=$(mktemp -d) vnicd_pid= server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null || true
    [[ -n $vnicd_pid ]] && kill "$vnicd_pid" 2>/dev/null && wait "$vnicd_pid" 2>/dev/null || true
    "$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
in_ns() { nsenter --net=/run/netns/$p-$1 "${@:2}"; }

"$bin/vnic-lab" up --prefix "$p" --vms 1 --queues 2 >/dev/null
db=$dir/vnic.db
"$bin/vnicadm" create-vnic --db "$db" -l uplink0 -m 02:00:00:00:01:01 --port vm1p -i 10.77.0.11/24 vnic1 >/dev/null
nsenter --net=/run/netns/$p-host "$bin/vnicd" --db "$db" --queues 2 >"$dir/vnicd.log" 2>&1 &
vnicd_pid=$!
for _ in $(seq 100); do grep -q "vnic vnic1 up" "$dir/vnicd.log" && break; sleep 0.1; done
in_ns wire iperf3 -s -p 5201 >/dev/null 2>&1 &
server=$!
sleep 0.5
in_ns vm1 ping -c 1 -W 5 10.77.0.1 >/dev/null

mbit() { python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]; s=d.get("sum_received") or d["sum"]; print(round(s["bits_per_second"]/1e6, 1))'; }
one() {   # a line of Mbit/s: tcp up, tcp down, udp up
    local up down udp
    up=$(in_ns vm1 iperf3 -c 10.77.0.1 -p 5201 -t "$seconds" -J | mbit)
    down=$(in_ns vm1 iperf3 -c 10.77.0.1 -p 5201 -t "$seconds" -R -J | mbit)
    udp=$(in_ns vm1 iperf3 -c 10.77.0.1 -p 5201 -t "$seconds" -u -b 200M -l 3000 -J | mbit)
    echo "$up $down $udp"
}
default=() off=()
for _ in $(seq "$runs"); do
    in_ns vm1 ethtool -K vnic0 tx on >/dev/null
    default+=("$(one)")
    in_ns vm1 ethtool -K vnic0 tx off >/dev/null
    off+=("$(one)")
done
errors=$(in_ns wire nstat -az TcpInCsumErrors UdpInCsumErrors | awk '/CsumErrors/ {s += $2} END {print s+0}')

python3 - "$out" "$seconds" "$errors" "$(printf '%s;' "${default[@]}")" "$(printf '%s;' "${off[@]}")" <<'PY'
import json, os, platform, statistics, sys
out, seconds, errors, d, o = sys.argv[1:]
rows = lambda s: [[float(x) for x in r.split()] for r in s.split(";") if r.strip()]
d, o = rows(d), rows(o)
names = ["tcp_vm_to_wire_mbit", "tcp_wire_to_vm_mbit", "udp_3000B_vm_to_wire_mbit"]
med = lambda rs, i: statistics.median(r[i] for r in rs)
res = {
  "benchmark": "iperf3 through vnicd, VM1's veth at Linux's default offloads vs tx checksum offload off, same lab, alternating",
  "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
              "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
  "seconds_per_run": float(seconds), "runs": len(d),
  "default_offloads": {n: med(d, i) for i, n in enumerate(names)} | {"runs": d},
  "offloads_off": {n: med(o, i) for i, n in enumerate(names)} | {"runs": o},
  "checksum_errors_on_the_wire": int(errors),
}
res["ratio_default_to_off"] = {n: round(med(d, i) / max(med(o, i), 0.001), 3) for i, n in enumerate(names)}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
print(f"{'case':<28}{'default':>10}{'off':>10}{'ratio':>8}")
for i, n in enumerate(names):
    print(f"{n:<28}{med(d, i):>10}{med(o, i):>10}{res['ratio_default_to_off'][n]:>8}")
print(f"checksum errors on the wire: {errors}; results: {out}")
PY
