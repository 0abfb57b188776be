#!/usr/bin/env bash
# Scale: vnicd with N VNICs on real ports (a lab of N VMs, 1-queue uplink, the
# worker alone on core 1; generator, pings and the control thread on core 0),
# for each N of --counts (default 1 10 100 1000):
#   start_s      exec to vnicd's status with every VNIC up (the wall clock)
#   lab_s        vnic-lab up of the N VMs (not vnicd's; for the record)
#   ping_misses  VMs that did not answer their first ping from the wire (target 0);
#                past 400 VMs with permanent neighbour entries (the lab's kernel-wide ARP table, below)
#   idle_no_buffer  frames lost for want of a buffer after 2 s idle (target 0): no-buffer and
#                vsq-full over the VNICs, and the uplink queue's empty fill ring
#   rss_per_vnic_kib, rss_mib, kernel_mib  vnicd's resident set per VNIC up, and the
#                kernel memory the run took (MemAvailable before vnicd minus after its start)
#   pps          64-byte frames/s that reach VM1 from the wire (vnic-pktgen, --seconds)
#                while the N-1 others are idle; ratio = pps / pps at the first N (target >= 0.8)
#   idle_worker_cpu  the worker's share of a core over 5 s with every VNIC idle (target <= 5%),
#                after the rest; idle_vm_frames_per_s what the VMs' own stacks sent meanwhile
# Results: bench/results/DATE-HOST-scale.json (or --out).
#
#   bench/scale.sh BIN_DIR [--counts "1 10 100 1000"] [--seconds S] [--out FILE]
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args scale counts="1 10 100 1000" seconds=3 -- "$@"
p= tmp=$(mktemp -d) pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; fi
    if [[ -n $p ]]; then "$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true; fi
}
trap 'cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# The lab's plan (vnic-lab --help): 10.77.0.0 + 10 + I, /24 up to 244 VMs, else /16.
addr() { local a=$((0x0A4D0000 + 10 + $1)); echo "10.77.$(((a >> 8) & 255)).$((a & 255))"; }
mac() { printf '02:00:00:%02x:01:%02x' $(($1 >> 8)) $(($1 & 255)); }
status() { python3 -c "import json,sys; d=json.load(open('$tmp/vnic.db-status.json')); $1" 2>/dev/null; }
worker_ticks() { awk '{s += $14 + $15} END {print s + 0}' $(grep -l '^vnic-worker' /proc/"$pid"/task/*/comm | sed 's/comm$/stat/'); }
available_kib() { awk '/^MemAvailable/ {print $2}' /proc/meminfo; }

echo "[" >"$tmp/rows"
first=1
for n in $counts; do
    p=sc$(printf %05d $((RANDOM % 100000)))
    len=$((n <= 244 ? 24 : 16))
    t0=$(date +%s.%N)
    "$bin/vnic-lab" up --prefix "$p" --vms "$n" --queues 1 >/dev/null
    lab_s=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
    rm -f "$tmp"/vnic.db*
    for i in $(seq "$n"); do
        echo "create-vnic -l uplink0 -m $(mac "$i") --port vm${i}p -i $(addr "$i")/$len vnic$i"
    done >"$tmp/batch"
    "$bin/vnicadm" batch --db "$tmp/vnic.db" -f "$tmp/batch" >/dev/null
    before=$(available_kib)
    t0=$(date +%s.%N)
    nsenter --net="/run/netns/$p-host" -- taskset -c 0 "$bin/vnicd" --db "$tmp/vnic.db" --cores 1 2>"$tmp/vnicd.log" &
    pid=$!
    until status "sys.exit(0 if len(d['vnics']) == $n and all(v['state'] == 'up' for v in d['vnics'].values()) else 1)"; do
        sleep 0.02
        kill -0 "$pid" 2>/dev/null || { echo "scale.sh: vnicd died: $(tail -2 "$tmp/vnicd.log")" >&2; exit 1; }
    done
    start_s=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
    kernel_mib=$(( (before - $(available_kib)) / 1024 ))
    sleep 2
    lost="print(sum(v['drops'].get('no-buffer', 0) + v['drops'].get('vsq-full', 0) for v in d['vnics'].values()) + sum(q.get('noBuffer', 0) for q in d['queues']))"
    idle_nb=$(status "$lost")
    # One kernel runs every VM's stack here, and its neighbour table is system-wide:
    # past gc_thresh3 (1,024 entries) it refuses new ones, so the wire and N VMs
    # cannot all learn each other by ARP (pings to about 1 VM in 100 failed at
    # N = 1,000, with a few seconds' stall at 512 entries). Permanent entries do
    # not count: large runs get them on both sides, small ones use ARP.
    neighbours=arp
    if ((n > 400)); then
        neighbours=static
        for i in $(seq "$n"); do echo "neigh replace $(addr "$i") lladdr $(mac "$i") dev wire0 nud permanent"; done >"$tmp/neigh"
        ip -n "$p-wire" -batch "$tmp/neigh"
        for i in $(seq "$n"); do ip -n "$p-vm$i" neigh replace 10.77.0.1 lladdr 02:00:00:00:00:01 dev vnic0 nud permanent; done
    fi
    # Every VM's first ping, from the wire.
    for i in $(seq "$n"); do echo "ping -c 1 -W 2 -q $(addr "$i") >/dev/null 2>&1 || echo $i"; done >"$tmp/pings"
    misses=$(nsenter --net="/run/netns/$p-wire" -- taskset -c 0 sh "$tmp/pings" | wc -l)
    rss=$(status "print(d['memory']['residentBytes'] >> 20)")
    per=$(status "print(d['memory']['residentBytesPerVNIC'] >> 10)")
    # Wire -> VM1, 64-byte frames as fast as one generator core sends, N-1 neighbours idle.
    rx0=$(ip -n "$p-vm1" -s -j link show dev vnic0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
    nsenter --net="/run/netns/$p-wire" -- taskset -c 0 "$bin/vnic-pktgen" -i wire0 --dst-mac "$(mac 1)" \
        --dst-ip "$(addr 1)" --size 64 --duration "$seconds" --json >"$tmp/gen.json"
    sleep 0.3
    rx1=$(ip -n "$p-vm1" -s -j link show dev vnic0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
    pps=$(( (rx1 - rx0) / seconds ))
    nb=$(status "$lost")
    # The worker with every VNIC idle: its CPU over 5 s, and what the VMs' own
    # stacks sent meanwhile (IPv6 chatter after their links came up: a lab of
    # 1,000 VMs takes two minutes to build, so the last ones are still at it).
    sleep 2
    f0=$(status "print(d['classifier']['port-redirected'])"); a=$(worker_ticks)
    sleep 5
    b=$(worker_ticks); f1=$(status "print(d['classifier']['port-redirected'])")
    idle_cpu=$(python3 -c "print(round(($b - $a) / $(getconf CLK_TCK) / 5 * 100, 2))")
    idle_fps=$(( (f1 - f0) / 5 ))
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    "$bin/vnic-lab" down --prefix "$p" >/dev/null; p=
    echo "N=$n: up in $start_s s (lab $lab_s s), ping misses $misses ($neighbours neighbours), idle no-buffer $idle_nb, RSS $rss MiB ($per KiB per VNIC), kernel ~$kernel_mib MiB, worker idle ${idle_cpu}% of a core (VMs sending $idle_fps frames/s), wire->VM1 $pps pps"
    ((first)) || echo "," >>"$tmp/rows"
    first=0
    cat >>"$tmp/rows" <<ROW
{"vnics": $n, "start_s": $start_s, "lab_s": $lab_s, "ping_misses": $misses, "neighbours": "$neighbours", "idle_no_buffer": $idle_nb,
 "lost_under_load": $nb, "rss_mib": $rss, "rss_per_vnic_kib": $per, "kernel_mib": $kernel_mib,
 "idle_worker_cpu_percent": $idle_cpu, "idle_vm_frames_per_s": $idle_fps, "pps": $pps}
ROW
done
echo "]" >>"$tmp/rows"
python3 - "$tmp/rows" "$out" <<'PY'
import json, os, platform, sys, datetime
rows = json.load(open(sys.argv[1]))
base = rows[0]["pps"] or 1
for r in rows:
    r["pps_ratio"] = round(r["pps"] / base, 3)
result = {
    "benchmark": "scale", "date": datetime.date.today().isoformat(),
    "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
    "setup": "1-queue uplink, worker on core 1; generator (vnic-pktgen, 64 B), pings and vnicd's control thread on core 0",
    "targets": {"ping_misses": 0, "idle_no_buffer": 0, "rss_per_vnic_kib_at_1000": 1024, "pps_ratio_at_1000": 0.8,
                "idle_worker_cpu_percent": 5},
    "rows": rows,
}
json.dump(result, open(sys.argv[2], "w"), indent=1)
for r in rows:
    print(f"N={r['vnics']}: pps ratio {r['pps_ratio']}")
print("results:", sys.argv[2])
PY
