#!/usr/bin/env bash
# In-memory pipeline benchmark (no kernel): vnicd's worker loop with every check
# on (anti-spoof with all protections, the VNIC's record read once per burst
# from a real LMDB file, the maxbw limiter) against the plain C forwarding loop
# of bench/c-forwarder, same rings and driver, in one run; plus the pipeline's
# heap allocations per packet (bench/malloc_count.c). Results:
# bench/results/DATE-HOST-pipeline.json (or --out FILE).
#
#   bench/pipeline.sh BIN_DIR [--packets N] [--runs R] [--out FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${1:?usage: bench/pipeline.sh BIN_DIR [--packets N] [--runs R] [--out FILE]}; shift
packets=5000000 runs=5 out=
while (($#)); do
    case $1 in
        --packets) packets=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "pipeline.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ -f $root/build/malloc_count.so ]] || { echo "pipeline.sh: build/malloc_count.so missing (make bench builds it)" >&2; exit 1; }
out=${out:-"$root/bench/results/$(date -u +%Y-%m-%d)-$(hostname -s)-pipeline.json"}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
VNIC_BENCH_JSON=$tmp/run.json LD_PRELOAD=$root/build/malloc_count.so \
    "$bin/vnic-pipeline-bench" "$packets" "$runs" 2>"$tmp/stderr" | tee "$tmp/stdout"
allocs=$(sed -n 's/^malloc_count: worker allocations //p' "$tmp/stderr" "$tmp/stdout" | head -1)
python3 - "$tmp/run.json" "$out" "${allocs:-0}" "$packets" "$runs" <<'PY'
import json, os, platform, sys
run, out, allocs, packets, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(run))
r["machine"] = {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")}
r["pipeline_heap_allocations"] = allocs
r["allocations_per_packet"] = allocs / (packets * runs)
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(r, open(out, "w"), indent=2, sort_keys=True)
print(f"pipeline heap allocations: {allocs} for {packets * runs} packets ({r['allocations_per_packet']} per packet)")
print(f"written: {out}")
PY
