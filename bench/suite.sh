#!/usr/bin/env bash
# The benchmark suite: every system forwards the same frames from the same
# generator core, in one run, between the same veths of one lab (bench/lab.sh):
#   vnicd                    every feature on: classifier (2 VNICs), anti-spoof with all
#                            four protections, VSQ with maxbw 40G, policy set, record per burst
#   bridge+clean-traffic     Linux bridge, libvirt's clean-traffic in ebtables (ebtables-nft)
#   bridge+clean-traffic+tbf the same with a tbf qdisc (40 Gbit/s: it runs, it does not limit)
#   xdp-redirect             kernel XDP redirect (devmap) uplink0 -> vm1p: the in-kernel ceiling
#   ovs-afxdp                Open vSwitch userspace datapath, type=afxdp ports, private daemons
#   c-afxdp                  plain C AF_XDP forwarder (bench/c-forwarder/xsk_fwd.c): no checks
# Matrix: wire -> VM1 at 64, 512 and 1500 bytes with an uplink of 1 and 2 queues;
# VM1 -> wire (the anti-spoof direction) at 64 bytes, 1 queue. Each figure: the
# packets/s VM1's interface (or wire0) received, median of --runs rounds (systems
# interleaved per round), min and max, with each CPU's time split (/proc/stat).
# Also: vnic-pktgen against trafgen on one core (the generator is the faster of
# the two), one-way latency CDF per system (bench/c-forwarder/latency_probe.c),
# instructions per packet under callgrind for vnicd's pipeline and the plain C
# loop (vnic-pipeline-bench). Generator and its threads: CPU 0; dataplane
# workers: core 1 (1 queue) or cores 0,1 (2 queues).
#
#   bench/suite.sh BIN_DIR [--smoke] [--runs R] [--seconds S] [--sizes "64 .."] [--queues "1 2"]
#                  [--nice N] [--out FILE] [--charts DIR]
# --nice N: every thread of the userspace dataplanes (vnicd, ovs-vswitchd,
# xsk_fwd) at that nice value, so that other load on a shared machine takes less
# of their cores (the kernel systems run in softirq, ahead of any task anyway).
#
# Results: bench/results/DATE-HOST-suite.json and DATE-HOST-suite-{pps,latency}.png;
# --smoke (one size, one queue count, one short run per system, under 2 minutes):
# build/bench-smoke-suite.json and its charts in build/. Installs what it needs
# when missing (openvswitch-switch with its services kept from starting).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${1:?usage: bench/suite.sh BIN_DIR [--smoke] [--runs R] [--seconds S] [--sizes LIST] [--queues LIST] [--out FILE] [--charts DIR]}; shift
bin=$(cd "$bin" && pwd)
smoke=0 runs= seconds= out= charts= opt_sizes= opt_queues= nice=0
while (($#)); do
    case $1 in
        --smoke) smoke=1; shift ;;
        --sizes) opt_sizes=$2; shift 2 ;;
        --queues) opt_queues=$2; shift 2 ;;
        --nice) nice=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --charts) charts=$2; shift 2 ;;
        *) echo "suite.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
host=$(hostname -s) day=$(date -u +%Y-%m-%d)
if ((smoke)); then
    sizes=(64) queue_counts=(1) runs=${runs:-1} seconds=${seconds:-1} warm=0.4 lat_count=300
    out=${out:-$root/build/bench-smoke-suite.json}; charts=${charts:-$root/build}
    cg_packets=(100000 200000)
else
    sizes=(64 512 1500) queue_counts=(1 2) runs=${runs:-3} seconds=${seconds:-2} warm=0.6 lat_count=2000
    out=${out:-$root/bench/results/$day-$host-suite.json}; charts=${charts:-$root/bench/results}
    cg_packets=(200000 600000)
fi
lat_interval=1000
if [[ -n $opt_sizes ]]; then read -ra sizes <<<"$opt_sizes"; fi
if [[ -n $opt_queues ]]; then read -ra queue_counts <<<"$opt_queues"; fi
chart_prefix=$(basename "${out%.json}")
started=$(date +%s.%N)
export PATH=$PATH:/usr/sbin:/sbin
# Debian's python3 (python3-matplotlib), not whatever python3 comes first in PATH.
py=python3; [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3

# --- What the suite needs. openvswitch-switch is installed with a policy-rc.d
# that refuses every service start (and checked afterwards): its daemons only
# ever run privately inside the lab.
suite_deps() {
    local need=() p
    command -v trafgen >/dev/null || need+=(netsniff-ng)
    command -v ebtables-nft >/dev/null || need+=(iptables)
    command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
    command -v valgrind >/dev/null || need+=(valgrind)
    "$py" -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
    for p in libxdp-dev libbpf-dev gcc; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    ((${#need[@]})) || return 0
    echo "suite.sh: installing ${need[*]}"
    local policy=/usr/sbin/policy-rc.d made=0 ovs_before
    ovs_before=$(pgrep -x ovs-vswitchd || true)
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; made=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    ((made)) && rm -f "$policy"
    if [[ -z $ovs_before ]] && { pgrep -x ovs-vswitchd || pgrep -x ovsdb-server; } >/dev/null; then
        echo "suite.sh: the package install started a system OVS: stopping it" >&2
        /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
    fi
    # Installed here: keep its services from starting at the next boot as well.
    if [[ " ${need[*]} " == *" openvswitch-switch "* ]] && command -v systemctl >/dev/null; then
        systemctl disable openvswitch-switch ovs-vswitchd ovsdb-server >/dev/null 2>&1 || true
    fi
}
suite_deps

# --- The C baselines, the latency probe and their BPF object, built here.
tools=$root/build/bench
mkdir -p "$tools"
clang=$(command -v clang || echo /opt/swift/usr/bin/clang)
arch_inc=/usr/include/$(gcc -dumpmachine)
"$clang" -O2 -g -Wall -target bpf -I"$arch_inc" -c "$here/c-forwarder/xdp_bench.bpf.c" -o "$tools/xdp_bench.bpf.o"
gcc -O2 -Wall -o "$tools/xsk_fwd" "$here/c-forwarder/xsk_fwd.c" -lxdp -lbpf
gcc -O2 -Wall -o "$tools/latency_probe" "$here/c-forwarder/latency_probe.c"
# valgrind 3.19 cannot read the Swift toolchain's debug info: a copy without it.
objcopy --strip-debug "$bin/vnic-pipeline-bench" "$tools/vnic-pipeline-bench.nodebug"

source "$here/lab.sh"
raw=$(mktemp)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
emit() { echo "$1" >>"$raw"; }
json_str() { "$py" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# --- One measurement: the generator on CPU 0 for warm+seconds, counted at the
# receiving interface over the last $seconds (after $warm).
#   measure SYSTEM DIRECTION SIZE QUEUES ROUND
trafgen_cfg() {  # SIZE DSTMAC SRCMAC SRCIP DSTIP -> a trafgen config on stdout
    "$py" - "$@" <<'PY'
import sys, struct
size, dmac, smac, sip, dip = int(sys.argv[1]), *sys.argv[2:]
mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
l3 = size - 4 - 14
ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, l3, 0, 0x4000, 64, 17, 0,
                           bytes(map(int, sip.split("."))), bytes(map(int, dip.split(".")))))
s = sum(struct.unpack("!10H", ip)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
ip[10:12] = struct.pack("!H", ~s & 0xffff)
udp = struct.pack("!HHHH", 1024, 9, l3 - 20, 0)
f = mac(dmac) + mac(smac) + b"\x08\x00" + bytes(ip) + udp
f += bytes(size - 4 - len(f))
print("{ " + ",".join(f"0x{b:02x}" for b in f) + " }")
PY
}
measure() {
    local sys=$1 dir=$2 size=$3 q=$4 round=$5 gns dev dmac smac sip dip rx_pid rx_dev tx_pid s
    if [[ $dir == wire-vm ]]; then
        gns=wire dev=wire0 dmac=02:00:00:00:01:01 smac=02:00:00:00:00:01 sip=10.77.0.1 dip=10.77.0.11
        rx_pid=$park_vm1 rx_dev=vnic0 tx_pid=$park_wire
    else
        gns=vm1 dev=vnic0 dmac=02:00:00:00:00:01 smac=02:00:00:00:01:01 sip=10.77.0.11 dip=10.77.0.1
        rx_pid=$park_wire rx_dev=wire0 tx_pid=$park_vm1
    fi
    generate "$gns" "$dev" "$size" "$q" "$dmac" "$smac" "$sip" "$dip"
    s=$("$py" "$here/suite_report.py" sample "$rx_pid" "$rx_dev" "$tx_pid" "$dev" "$warm" "$seconds")
    generate_stop
    emit "{\"kind\":\"fwd\",\"system\":\"$sys\",\"direction\":\"$dir\",\"size\":$size,\"queues\":$q,\"round\":$round,${s#\{}"
    printf '  %-26s %-8s %5s B q%s round %s: %s\n' "$sys" "$dir" "$size" "$q" "$round" \
        "$("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["pps"], "pps, offered", r["offered"])' "$s")"
}
# The generator in namespace $p-NS on DEV until generate_stop, pinned to CPU 0
# (every thread of it): vnic-pktgen with one transmit queue per uplink queue, or
# trafgen -P 1 (which pins itself to CPU 0 and loads queue 0 only).
#   generate NS DEV SIZE QUEUES DSTMAC SRCMAC SRCIP DSTIP
generate() {
    if [[ ${generator:-vnic-pktgen} == vnic-pktgen ]]; then
        nsenter --net="/run/netns/$p-$1" -- taskset -c 0 "$bin/vnic-pktgen" -i "$2" --dst-mac "$5" --src-mac "$6" \
            --src-ip "$7" --dst-ip "$8" --size "$3" --queues "$4" --duration 120 >/dev/null 2>"$tmp/gen.err" &
    else
        trafgen_cfg "$3" "$5" "$6" "$7" "$8" >"$tmp/frame.cfg"
        nsenter --net="/run/netns/$p-$1" -- timeout 120 trafgen -o "$2" -c "$tmp/frame.cfg" -P 1 -C \
            >/dev/null 2>"$tmp/gen.err" &
    fi
    gen_pid=$!
}
# SIGTERM: background jobs of a script ignore SIGINT.
generate_stop() { kill -TERM "$gen_pid" 2>/dev/null || true; wait "$gen_pid" 2>/dev/null || true; }

# --- The systems: up SYSTEM DIRECTION, down SYSTEM. DIRECTION both: one setup
# serves both directions; c-afxdp and xdp-redirect are set up per direction.
declare -A failed=()
fwd_pid=
xsk_start() {  # ARGS of xsk_fwd; waits for "ready"
    bench_bg nsenter --net="/run/netns/$p-host" -- "$tools/xsk_fwd" "$@" >"$tmp/xsk_fwd.out" 2>"$tmp/xsk_fwd.err"
    fwd_pid=$REPLY
    for _ in $(seq 100); do
        grep -q ready "$tmp/xsk_fwd.err" && return 0
        kill -0 "$fwd_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "xsk_fwd did not start: $(cat "$tmp/xsk_fwd.err")" >&2
    return 1
}
xsk_stop() { if [[ -n $fwd_pid ]]; then kill "$fwd_pid" 2>/dev/null; wait "$fwd_pid" 2>/dev/null || true; fwd_pid=; fi; }
setups() {  # the setups a system needs for the directions measured at this queue count
    case $1 in
        c-afxdp|xdp-redirect) echo "${dirs[*]}" ;;
        *) echo both ;;
    esac
}
sys_up() {
    local sys=$1 dir=$2 q=$3 in=uplink0 out=vm1p pns=vm1 pdev=vnic0
    if [[ $dir == vm-wire ]]; then in=vm1p out=uplink0 pns=wire pdev=wire0; fi
    case $sys in
        vnicd) start_vnicd --cores "$cores" ;;
        bridge+clean-traffic) (set -e; bench_bridge_up 1) ;;
        bridge+clean-traffic+tbf) (set -e; bench_bridge_up 1 40gbit) ;;
        xdp-redirect) xsk_start redirect --bpf "$tools/xdp_bench.bpf.o" --in "$in" --out "$out" \
                          --pass-netns "/run/netns/$p-$pns" --pass-dev "$pdev" ;;
        ovs-afxdp) (set -e; bench_ovs_up "$q" "$ovs_mask") >"$tmp/ovs-up.log" 2>&1 \
                       || { cat "$tmp/ovs-up.log" >&2; tail -5 "$tmp/ovs/ovs-vswitchd.log" >&2 2>/dev/null; return 1; } ;;
        c-afxdp) xsk_start fwd --bpf "$tools/xdp_bench.bpf.o" --in "$in" --out "$out" --queues "$q" --cores "$cores" ;;
    esac
}
renice_dataplane() {  # SYSTEM: every thread of its process to $nice
    local pid= t
    case $1 in
        vnicd) pid=$vnicd_pid ;;
        c-afxdp) pid=$fwd_pid ;;
        ovs-afxdp) pid=$(cat "$tmp/ovs/ovs-vswitchd.pid" 2>/dev/null || true) ;;
    esac
    [[ -n $pid && $nice != 0 ]] || return 0
    for t in /proc/"$pid"/task/*; do renice -n "$nice" -p "${t##*/}" >/dev/null 2>&1 || true; done
}
sys_down() {
    case $1 in
        vnicd) stop_vnicd ;;
        bridge+*) bench_bridge_down ;;
        xdp-redirect|c-afxdp) xsk_stop ;;
        ovs-afxdp) bench_ovs_down ;;
    esac
}
systems=(vnicd bridge+clean-traffic bridge+clean-traffic+tbf xdp-redirect ovs-afxdp c-afxdp)
# SUITE_SYSTEMS="a b": only those (while developing).
if [[ -n ${SUITE_SYSTEMS:-} ]]; then read -ra systems <<<"$SUITE_SYSTEMS"; fi
sys_note() {
    case $1 in
        vnicd) echo "vnicd, AF_XDP copy mode, one worker per queue pinned (cores $cores_note); VNICs with protection=mac-nospoof,ip-nospoof,dhcp-nospoof,restricted, maxbw=40G (VSQ limiter on), a policy (mtu, ip), the record read per burst" ;;
        bridge+clean-traffic) echo "Linux bridge (no br_netfilter, static FDB), libvirt clean-traffic in ebtables-nft on both VM ports" ;;
        bridge+clean-traffic+tbf) echo "as bridge+clean-traffic, plus tbf rate 40gbit on the egress of uplink0 and the VM ports" ;;
        xdp-redirect) echo "XDP redirect through a devmap on the receiving veth, xdp_pass on the far end (veth native redirect): no userspace" ;;
        ovs-afxdp) echo "Open vSwitch $(ovs-vswitchd --version 2>/dev/null | sed -n '1s/.* //p') userspace datapath (netdev), type=afxdp ports (xdp-mode=native, copy), PMD threads on cores $cores_note, OpenFlow dst/src MAC -> port" ;;
        c-afxdp) echo "plain C AF_XDP forwarder (bench/c-forwarder/xsk_fwd.c), libxdp, copy mode, shared UMEM, bursts of 64, no checks, one thread per queue pinned (cores $cores_note)" ;;
    esac
}

generator=
cores_note="1 for 1 queue, 0,1 for 2 queues"
for q in "${queue_counts[@]}"; do
    if ((q == 1)); then cores=1 ovs_mask=0x2 dirs=(wire-vm vm-wire); else cores=0,1 ovs_mask=0x3 dirs=(wire-vm); fi
    bench_lab z "$q"
    trap 'bench_cleanup; rm -f "$raw"' EXIT
    for i in 1 2; do
        "$bin/vnicadm" set-linkprop --db "$db" -p protection=mac-nospoof,ip-nospoof,dhcp-nospoof,restricted \
            -p maxbw=40G "vnic$i" >/dev/null
        "$bin/vnicadm" set-policy --db "$db" -p mtu=1280-9000 -p "ip=10.77.0.1$i" "vnic$i" >/dev/null
    done
    bench_park vm1; park_vm1=$REPLY
    bench_park wire; park_wire=$REPLY
    bench_park host; park_host=$REPLY

    if [[ -z $generator ]]; then
        # vnic-pktgen against trafgen: one core each (CPU 0), 64-byte frames into
        # uplink0 with nothing attached, counted where they arrive.
        echo "generators, one core, 64 B into a veth:"
        for r in $(seq "$runs"); do
            for g in trafgen vnic-pktgen; do
                generator=$g
                generate wire wire0 64 1 02:00:00:00:01:01 02:00:00:00:00:01 10.77.0.1 10.77.0.11
                s=$("$py" "$here/suite_report.py" sample "$park_host" uplink0 "$park_wire" wire0 "$warm" "$seconds")
                generate_stop
                emit "{\"kind\":\"gen\",\"generator\":\"$g\",\"round\":$r,${s#\{}"
                echo "  $g round $r: $("$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["pps"], "pps received,", r["offered"], "sent")' "$s")"
            done
        done
        generator=$("$py" - "$raw" <<'PY'
import json, statistics, sys
g = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["kind"] == "gen": g.setdefault(r["generator"], []).append(r["pps"])
print("vnic-pktgen" if statistics.median(g["vnic-pktgen"]) >= statistics.median(g["trafgen"]) else "trafgen")
PY
)
        echo "generator: $generator"
    fi

    for r in $(seq "$runs"); do
        for sys in "${systems[@]}"; do
            [[ -n ${failed[$sys]:-} ]] && continue
            for setup in $(setups "$sys"); do
                set +e; sys_up "$sys" "$setup" "$q" 2>"$tmp/up.err"; rc=$?; set -e
                if ((rc)); then
                    failed[$sys]="setup failed with $q queue(s): $(tail -c 600 "$tmp/up.err" | tr '\n' ' ')"
                    echo "  $sys: ${failed[$sys]}" >&2
                    sys_down "$sys" >/dev/null 2>&1 || true
                    break
                fi
                renice_dataplane "$sys"
                for dir in "${dirs[@]}"; do
                    [[ $setup == both || $setup == "$dir" ]] || continue
                    if [[ $dir == wire-vm ]]; then ds=("${sizes[@]}"); else ds=(64); fi
                    for size in "${ds[@]}"; do measure "$sys" "$dir" "$size" "$q" "$r"; done
                    if ((q == 1 && r == 1)) && [[ $dir == wire-vm ]]; then
                        l=$("$tools/latency_probe" --tx-netns "/run/netns/$p-wire" --tx-dev wire0 \
                            --rx-netns "/run/netns/$p-vm1" --rx-dev vnic0 --dst-mac 02:00:00:00:01:01 \
                            --src-mac 02:00:00:00:00:01 --src-ip 10.77.0.1 --dst-ip 10.77.0.11 \
                            --count "$lat_count" --interval-us "$lat_interval")
                        emit "{\"kind\":\"latency\",\"system\":\"$sys\",${l#\{}"
                        echo "  $sys latency: $("$py" -c 'import json,sys; s=json.loads(sys.argv[1])["samples_ns"]; print(f"p50 {s[len(s)//2]/1000:.1f} us, lost", json.loads(sys.argv[1])["lost"]) if s else print("none received")' "$l")"
                    fi
                done
                sys_down "$sys"
            done
        done
    done
    bench_cleanup
    trap 'rm -f "$raw"' EXIT
done

# --- Instructions per packet (callgrind): vnicd's in-memory pipeline and the plain C loop.
# VM -> wire and the plain loop each run alone (VNIC_BENCH_ONLY: the pipeline
# bench runs wire -> VM too by default), their figures joined.
cgdir=$(mktemp -d)
for n in "${cg_packets[@]}"; do
    for only in to-wire plain; do
        (cd "$cgdir" && VNIC_BENCH_ONLY=$only valgrind --tool=callgrind --callgrind-out-file="$cgdir/cg.$only.$n" \
            "$tools/vnic-pipeline-bench.nodebug" "$n" 1 >/dev/null 2>"$cgdir/vg.$n.log") \
            || { echo "callgrind failed: $(tail -3 "$cgdir/vg.$n.log")" >&2; }
    done
done
cg_pair() { "$py" "$here/suite_report.py" callgrind "$cgdir/cg.$1.${cg_packets[0]}" "$cgdir/cg.$1.${cg_packets[1]}" \
                "${cg_packets[0]}" "${cg_packets[1]}"; }
if cg=$("$py" -c 'import json, sys; a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]); a["instructions_per_packet"].update(b["instructions_per_packet"]); print(json.dumps(a))' \
        "$(cg_pair to-wire 2>"$cgdir/err")" "$(cg_pair plain 2>>"$cgdir/err")" 2>>"$cgdir/err"); then
    emit "{\"kind\":\"callgrind\",\"what\":\"valgrind --tool=callgrind, vnic-pipeline-bench (in-memory rings, 64 B, VM -> wire): inclusive instructions per packet; *_loop: the whole loop with the simulated kernel driver, *_step: the forwarding step alone (Worker.loopOnce with every check vs vnic_plain_forward)\",${cg#\{}"
else
    emit "{\"kind\":\"callgrind\",\"error\":$(json_str "$(cat "$cgdir/err")")}"
fi
rm -rf "$cgdir"

# --- Metadata, systems, results file, table and charts.
for sys in "${systems[@]}"; do
    if [[ -n ${failed[$sys]:-} ]]; then
        emit "{\"kind\":\"system\",\"name\":\"$sys\",\"status\":\"failed\",\"reason\":$(json_str "${failed[$sys]}"),\"setup\":$(json_str "$(sys_note "$sys")")}"
    else
        emit "{\"kind\":\"system\",\"name\":\"$sys\",\"status\":\"ok\",\"setup\":$(json_str "$(sys_note "$sys")")}"
    fi
done
emit "$("$py" - "$smoke" "$runs" "$seconds" "$warm" "$generator" "$lat_interval" "${sizes[*]}" "${queue_counts[*]}" "$load_start" "$day" "$nice" <<'PY'
import json, sys
smoke, runs, seconds, warm, gen, li, sizes, qs, load, day, nice = sys.argv[1:]
print(json.dumps({"kind": "meta", "date": day, "smoke": smoke == "1", "runs": int(runs), "seconds_per_run": float(seconds),
  "warm_up_seconds": float(warm), "generator": gen, "latency_interval_us": int(li),
  "sizes": [int(x) for x in sizes.split()], "queue_counts": [int(x) for x in qs.split()],
  "layout": "generator (all its threads) on CPU 0; dataplane workers/PMDs on core 1 (1 queue) or cores 0,1 (2 queues); "
            "kernel systems run in the softirq of whichever CPU receives",
  "directions": {"wire-vm": "wire0 -> uplink0 -> (system) -> vm1p -> vnic0 of VM1, counted at vnic0",
                 "vm-wire": "vnic0 of VM1 -> vm1p -> (system) -> uplink0 -> wire0, counted at wire0 (the anti-spoof checks' direction)"},
  "frame": "IPv4/UDP to port 9, size includes the FCS", "load_average_before": load,
  "userspace_dataplane_nice": int(nice)}))
PY
)"
emit "{\"kind\":\"end\",\"date\":\"$(date -u +%FT%TZ)\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"wall_seconds\":$("$py" -c "import time; print(round(time.time() - $started))")}"
"$py" "$here/suite_report.py" report "$raw" "$out" "$charts" "$chart_prefix"
