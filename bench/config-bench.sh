#!/usr/bin/env bash
# Configuration database benchmark:
#   1. vnicadm batch: 10,000 create-vnic lines (each with maxbw and priority) into
#      a fresh database, in one transaction (median of --runs runs), and once with
#      --per-line (10,000 commits). Target: < 10 s.
#   2. Fast-path reads (vnic-config-bench, a release binary): ns per lookup of a
#      random VNIC among 10,000 inside a burst (mdb_get + the hot fields: mac,
#      protection, priority, maxbw, allowed-ips match), ns per burst (renew +
#      one lookup + reset) and so per packet for bursts of 64 packets, alone and
#      while another thread commits a change every millisecond; against the
#      slow path (ConfigStore.vnic(index:): decode into a VNICRecord) measured in
#      the same run. Heap allocations per operation counted by malloc_count.so
#      (bench/malloc_count.c; it counts threads named vnic-worker-*).
# Results: bench/results/DATE-HOST-config.json (or --out FILE).
#
#   bench/config-bench.sh BIN_DIR [--vnics N] [--runs R] [--out FILE]
#   (BIN_DIR holds release builds of vnicadm and vnic-config-bench)
set -euo pipefail
source "$(dirname "$0")/args.sh"
bench_args config-bench:config vnics=10000 runs=3 -- "$@"
for b in vnicadm vnic-config-bench; do
    [[ -x $bin/$b ]] || { echo "config-bench.sh: $bin/$b not built (swift build -c release)" >&2; exit 1; }
done
command -v gcc >/dev/null || { echo "config-bench.sh: gcc not found (for malloc_count.so)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
gcc -O2 -shared -fPIC -o "$tmp/malloc_count.so" "$here/malloc_count.c"

# 1. vnicadm batch
python3 - "$vnics" >"$tmp/batch.txt" <<'PY'
import sys
for i in range(1, int(sys.argv[1]) + 1):
    print(f"create-vnic -l uplink0 -m 02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x} --port p{i}"
          f" -i 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/8 -p maxbw=100M,priority=medium vnic{i}")
PY
timed() {  # seconds a command takes
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    python3 -c "print(round($t1 - $t0, 3))"
}
declare -a batch_runs
for r in $(seq "$runs"); do
    rm -f "$tmp"/b.db*
    batch_runs+=("$(timed "$bin/vnicadm" batch --db "$tmp/b.db" -f "$tmp/batch.txt")")
done
created=$("$bin/vnicadm" show-vnic --db "$tmp/b.db" -p -o name | wc -l)
rm -f "$tmp"/p.db*
per_line=$(timed "$bin/vnicadm" batch --per-line --db "$tmp/p.db" -f "$tmp/batch.txt")
db_bytes=$(stat -c %s "$tmp/b.db")

# 2. fast path
fast() {  # mode, extra args...: the benchmark's key/value lines plus the allocation count
    local mode=$1; shift
    LD_PRELOAD="$tmp/malloc_count.so" "$bin/vnic-config-bench" --vnics "$vnics" --mode "$mode" "$@" 2>"$tmp/err"
    sed -n 's/^malloc_count: worker allocations /allocations /p' "$tmp/err"
}
fast fast >"$tmp/fast.txt"
fast fast --writer >"$tmp/writer.txt"
fast baseline --lookups 300000 >"$tmp/baseline.txt"

python3 - "$out" "$vnics" "$created" "${batch_runs[*]}" "$per_line" "$db_bytes" "$tmp/fast.txt" "$tmp/writer.txt" "$tmp/baseline.txt" <<'PY'
import json, os, platform, statistics, sys
out, vnics, created, runs, per_line, db_bytes, fast, writer, baseline = sys.argv[1:]
def kv(path):
    d = {}
    for line in open(path):
        k, _, v = line.strip().partition(" ")
        try: d[k] = float(v) if "." in v else int(v)
        except ValueError: d[k] = v
    return d
f, w, b = kv(fast), kv(writer), kv(baseline)
for d in (f, w, b):
    d["allocations_per_operation"] = d.get("allocations", 0) / d["counted_operations"]
runs = [float(x) for x in runs.split()]
res = {
  "benchmark": "configuration database: vnicadm batch, fast-path lookups",
  "machine": {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
              "cpu": next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
  "vnicadm_batch": {"vnics": int(vnics), "created": int(created), "one_transaction_s": {"median": statistics.median(runs), "runs": runs},
                    "per_line_s": float(per_line), "database_bytes": int(db_bytes), "target_s": 10},
  "fast_path": {k: f[k] for k in ("lookup_ns", "burst_ns", "per_packet_ns", "lookups", "bursts", "allocations", "allocations_per_operation")},
  "fast_path_with_writer": {k: w[k] for k in ("lookup_ns", "burst_ns", "per_packet_ns", "writer_commits", "allocations", "allocations_per_operation")},
  "slow_path_baseline": {k: b[k] for k in ("lookup_ns", "counted_operations", "allocations", "allocations_per_operation")},
}
res["slow_to_fast_lookup_ratio"] = round(b["lookup_ns"] / f["lookup_ns"], 1)
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(res, open(out, "w"), indent=2)
vb = res["vnicadm_batch"]
print(f"vnicadm batch, {vnics} create-vnic lines: one transaction median {vb['one_transaction_s']['median']} s "
      f"(runs {runs}), --per-line {vb['per_line_s']} s; {created} VNICs, database {int(db_bytes) // 1024} KiB")
print(f"{'fast path':<26}{'lookup ns':>10}{'burst ns':>10}{'ns/packet':>10}{'allocs/op':>11}")
for name, d in (("alone", f), ("with a writer", w)):
    print(f"{name:<26}{d['lookup_ns']:>10.1f}{d['burst_ns']:>10.1f}{d['per_packet_ns']:>10.2f}{d['allocations_per_operation']:>11.3f}")
print(f"{'slow path (VNICRecord)':<26}{b['lookup_ns']:>10.1f}{'':>10}{'':>10}{b['allocations_per_operation']:>11.3f}")
print(f"slow / fast lookup: {res['slow_to_fast_lookup_ratio']}x; writer commits during the writer run: {w.get('writer_commits')}")
print(f"written: {out}")
PY
