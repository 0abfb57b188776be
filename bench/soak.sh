#!/usr/bin/env bash
# Soak: vnicd under steady load for a long time (default 30 minutes), its
# resident memory and open file descriptors sampled every 30 s. The load, in a
# lab with two VMs on a 1-queue uplink: wire -> VM1 at --rate pps, VM2 -> wire
# at half that, a spoofed frame stream from VM1 (counted drops), an in-band
# request from VM2 every second and a `vnicadm set` of VM2's MTU every 10 s
# (reconciles, notifications, audit entries). Not run in CI.
#
#   bench/soak.sh BIN_DIR [--minutes M] [--rate PPS] [--out FILE]
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args soak minutes=30 rate=20000 -- "$@"
source "$root/bench/lab.sh"
bench_request_lab s vnic2
seconds=$((minutes * 60))
pids=()
stop_load() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    pkill -f "/run/netns/$p-(wire|vm)" 2>/dev/null || true   # the generators inside the lab, not vnicd
    if ((${#pids[@]})); then wait "${pids[@]}" 2>/dev/null || true; fi   # (a bare wait would wait for vnicd)
    pids=()
}
trap 'stop_load; bench_cleanup' EXIT

# The load, for the whole run (each generator restarts when it ends).
loop() { local until=$1; shift; while (( $(date +%s) < until )); do "$@" >/dev/null 2>&1 || sleep 1; done; }
end=$(( $(date +%s) + seconds ))
loop "$end" in_ns wire "$bin/vnic-pktgen" -i wire0 --dst-mac 02:00:00:00:01:01 --rate "$rate" --duration 60 --flows 8 & pids+=($!)
loop "$end" in_ns vm2 "$bin/vnic-pktgen" -i vnic0 --dst-mac 02:00:00:00:00:01 --src-mac 02:00:00:00:01:02 \
    --src-ip 10.77.0.12 --dst-ip 10.77.0.1 --rate $((rate / 2)) --duration 60 & pids+=($!)
loop "$end" in_ns vm1 "$bin/vnic-pktgen" -i vnic0 --dst-mac 02:00:00:00:00:01 --src-mac 02:00:00:00:0f:0f \
    --src-ip 10.77.0.11 --dst-ip 10.77.0.1 --rate 1000 --duration 60 & pids+=($!)
loop "$end" in_ns vm2 "$bin/vnic-protocol-bench" requests -i vnic0 --count 60 & pids+=($!)
(
    i=0
    while (( $(date +%s) < end )); do
        "$bin/vnicadm" set --db "$db" --wait 0 vnic2 mtu=$((1400 + i % 2 * 100)) >/dev/null 2>&1 || true
        i=$((i + 1)); sleep 10
    done
) & pids+=($!)

samples="$tmp/samples"
: >"$samples"
start=$(date +%s)
while (( $(date +%s) < end )); do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$vnicd_pid/status")
    anon=$(awk '/^RssAnon/ {print $2}' "/proc/$vnicd_pid/status")   # heap and stacks; the rest is files (the LMDB map grows with the audit log)
    fds=$(ls "/proc/$vnicd_pid/fd" | wc -l)
    echo "$(( $(date +%s) - start )) $rss $fds $anon" >>"$samples"
    echo "t=$(( $(date +%s) - start )) s: vnicd rss ${rss} KiB (anonymous ${anon} KiB), ${fds} fds"
    sleep 30
done
stop_load
status=$(cat "$db-status.json")
python3 - "$out" "$samples" "$minutes" "$rate" "$status" <<'PY'
import json, os, platform, sys
out, samples, minutes, rate, status = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
rows = [tuple(int(x) for x in l.split()) for l in open(samples) if l.strip()]
rss = [r[1] for r in rows]; fds = [r[2] for r in rows]; anon = [r[3] for r in rows]
# "Flat": the second half's maximum against the first half's (warm-up done by then).
half = len(rows) // 2 or 1
res = {"benchmark": "soak: vnicd under steady load",
       "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()},
       "minutes": minutes, "rate_pps_to_vm1": rate,
       "rss_kib": {"first": rss[0], "last": rss[-1], "max": max(rss), "max_first_half": max(rss[:half]), "max_second_half": max(rss[half:] or rss)},
       "anon_kib": {"first": anon[0], "last": anon[-1], "max": max(anon)},
       "fds": {"first": fds[0], "last": fds[-1], "min": min(fds), "max": max(fds)},
       "samples": rows,
       "vnicd_counters": {n: {"rx": v["rxPackets"], "tx": v["txPackets"], "drops": v["drops"]} for n, v in status["vnics"].items()},
       "requests": status.get("requests", {})}
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
print(f"soak {minutes:g} min: rss first {rss[0]} KiB, last {rss[-1]} KiB, max {max(rss)} KiB "
      f"(first half max {res['rss_kib']['max_first_half']}, second half max {res['rss_kib']['max_second_half']}); "
      f"anonymous first {anon[0]} KiB, last {anon[-1]} KiB; fds first {fds[0]}, last {fds[-1]}, range {min(fds)}-{max(fds)}")
print(f"written: {out}")
PY
