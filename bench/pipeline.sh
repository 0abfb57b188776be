#!/usr/bin/env bash
# In-memory pipeline benchmark (no kernel): vnicd's worker loop with every check
# on (anti-spoof with all protections, the VNIC's record read once per burst
# from a real LMDB file, the maxbw limiter) against the plain C forwarding loop
# of bench/c-forwarder, same rings and driver, in one run; plus the pipeline's
# heap allocations per packet (bench/malloc_count.c). Results:
# bench/results/DATE-HOST-pipeline.json (or --out FILE).
#
# With --callgrind [N], also instructions per packet under valgrind's callgrind
# (stable where times are not): the worker's step (Worker.loopOnce, inclusive)
# VM -> wire and wire -> VM in bursts of 64, the plain C step, and the
# instructions of a one-frame burst VM -> wire; each from two runs of N and 2N
# packets (default 100000), so start-up cancels out. The binary is copied
# without its debug information (valgrind cannot read Swift's).
#
#   bench/pipeline.sh BIN_DIR [--packets N] [--runs R] [--callgrind [N]] [--out FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${1:?usage: bench/pipeline.sh BIN_DIR [--packets N] [--runs R] [--callgrind [N]] [--out FILE]}; shift
packets=5000000 runs=5 out= callgrind=
while (($#)); do
    case $1 in
        --packets) packets=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --callgrind) if [[ ${2:-} =~ ^[0-9]+$ ]]; then callgrind=$2; shift 2; else callgrind=100000; shift; fi ;;
        *) echo "pipeline.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ -f $root/build/malloc_count.so ]] || { echo "pipeline.sh: build/malloc_count.so missing (make bench builds it)" >&2; exit 1; }
out=${out:-"$root/bench/results/$(date -u +%Y-%m-%d)-$(hostname -s)-pipeline.json"}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
VNIC_BENCH_JSON=$tmp/run.json LD_PRELOAD=$root/build/malloc_count.so \
    "$bin/vnic-pipeline-bench" "$packets" "$runs" 2>"$tmp/stderr" | tee "$tmp/stdout"
allocs=$(sed -n 's/^malloc_count: worker allocations //p' "$tmp/stderr" "$tmp/stdout" | head -1)
echo '{}' > "$tmp/callgrind.json"
if [[ -n $callgrind ]]; then
    command -v valgrind >/dev/null || { echo "pipeline.sh: --callgrind needs valgrind (apt-get install valgrind)" >&2; exit 1; }
    objcopy --strip-debug "$bin/vnic-pipeline-bench" "$tmp/vnic-pipeline-bench"
    n1=$callgrind n2=$((2 * callgrind))
    for mode in to-wire:64 to-vm:64 plain:64 to-wire:1; do
        for n in $n1 $n2; do
            (cd "$tmp" && VNIC_BENCH_ONLY=${mode%:*} VNIC_BENCH_BURST=${mode#*:} valgrind --tool=callgrind \
                --callgrind-out-file="$tmp/cg.$mode.$n" ./vnic-pipeline-bench "$n" 1 >/dev/null 2>"$tmp/vg.log") \
                || { echo "pipeline.sh: callgrind failed: $(tail -3 "$tmp/vg.log")" >&2; exit 1; }
        done
        python3 "$here/suite_report.py" callgrind "$tmp/cg.$mode.$n1" "$tmp/cg.$mode.$n2" "$n1" "$n2" > "$tmp/cg.$mode.json"
    done
    python3 - "$tmp" "$n1" "$n2" > "$tmp/callgrind.json" <<'PY'
import json, sys
tmp, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def per(mode, key):
    return json.load(open(f"{tmp}/cg.{mode}.json"))["instructions_per_packet"][key]
print(json.dumps({
    "instructions_per_packet": {"vm_to_wire": per("to-wire:64", "worker_step"), "wire_to_vm": per("to-vm:64", "worker_step"),
                                "plain_c": per("plain:64", "plain_step")},
    "one_frame_burst": {"vm_to_wire_instructions": per("to-wire:1", "worker_step")},
    "callgrind": {"what": "valgrind --tool=callgrind, inclusive instructions of the step (Worker.loopOnce; vnic_plain_forward) "
                          "per packet, from runs of N and 2N packets; bursts of 64, and of 1 for one_frame_burst",
                  "packets": [n1, n2]},
}))
PY
fi
python3 - "$tmp/run.json" "$out" "${allocs:-0}" "$packets" "$runs" "$tmp/callgrind.json" <<'PY'
import json, os, platform, sys
run, out, allocs, packets, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = json.load(open(run))
cg = json.load(open(sys.argv[6]))
r.update(cg)
if cg:
    i = cg["instructions_per_packet"]
    print(f"callgrind instructions per packet: VM -> wire {i['vm_to_wire']}, wire -> VM {i['wire_to_vm']}, plain C {i['plain_c']}; "
          f"a one-frame burst VM -> wire {cg['one_frame_burst']['vm_to_wire_instructions']}")
r["machine"] = {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
                "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")}
r["pipeline_heap_allocations"] = allocs
r["allocations_per_packet"] = allocs / (packets * runs)
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(r, open(out, "w"), indent=2, sort_keys=True)
print(f"pipeline heap allocations: {allocs} for {packets * runs} packets ({r['allocations_per_packet']} per packet)")
print(f"written: {out}")
PY
