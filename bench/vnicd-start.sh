#!/usr/bin/env bash
# vnicd start time with many VNICs: a database of --vnics VNICs (vnicadm batch,
# one transaction), two of them on real ports of a lab, the rest on ports that
# do not exist (they come up `down`); the time from exec to vnicd's first
# status with every VNIC reconciled (median of --runs). Target: < 2 s for 10,000.
#
#   bench/vnicd-start.sh BIN_DIR [--vnics N] [--runs R]
set -euo pipefail
bin=${1:?usage: bench/vnicd-start.sh BIN_DIR [--vnics N] [--runs R]}; shift
vnics=10000 runs=3
while (($#)); do
    case $1 in
        --vnics) vnics=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "vnicd-start.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
p=s$(printf %05d $((RANDOM % 100000)))
tmp=$(mktemp -d)
cleanup() { pkill -f "vnicd --db $tmp/vnic.db" 2>/dev/null || true; "$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin/vnic-lab" up --prefix "$p" --vms 2 --queues 1 >/dev/null
{
    echo "create-vnic -l uplink0 -m 02:00:00:00:01:01 --port vm1p -i 10.77.0.11/24 vnic1"
    echo "create-vnic -l uplink0 -m 02:00:00:00:01:02 --port vm2p -i 10.77.0.12/24 vnic2"
    for i in $(seq 3 "$vnics"); do printf 'create-vnic -l uplink0 -m random --port nx%d v%d\n' "$i" "$i"; done
} >"$tmp/batch"
"$bin/vnicadm" batch --db "$tmp/vnic.db" -f "$tmp/batch"
times=()
for r in $(seq "$runs"); do
    rm -f "$tmp/vnic.db-status.json"
    t0=$(date +%s.%N)
    nsenter --net="/run/netns/$p-host" -- "$bin/vnicd" --db "$tmp/vnic.db" 2>"$tmp/log" &
    pid=$!
    until python3 -c "import json,sys; d=json.load(open('$tmp/vnic.db-status.json')); sys.exit(0 if len(d['vnics']) == $vnics else 1)" 2>/dev/null; do
        sleep 0.01
        kill -0 "$pid" 2>/dev/null || { echo "vnicd died: $(tail -2 "$tmp/log")" >&2; exit 1; }
    done
    t1=$(date +%s.%N)
    up=$(python3 -c "import json; d=json.load(open('$tmp/vnic.db-status.json')); print(sum(1 for v in d['vnics'].values() if v['state'] == 'up'))")
    kill -TERM "$pid"; wait "$pid" || true
    times+=("$(python3 -c "print(round($t1 - $t0, 3))")")
    echo "run $r: $vnics VNICs reconciled ($up up) in ${times[-1]} s"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median vnicd start: " a[int((NR+1)/2)] " s"}'
