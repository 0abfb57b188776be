# bench/lab.sh: what the benchmark scripts share, sourced after `bin` is set:
# a lab with a unique prefix and two VNICs in a fresh database, removed on exit
# (vnicd included, also when interrupted).
#
#   bench_lab LETTER QUEUES    sets p (prefix), tmp, db; brings the lab up
#   in_ns NS CMD...            runs CMD in namespace $p-NS
#   start_vnicd [ARGS...]      starts vnicd on $db, waits until both VNICs are up
#   bench_request_lab LETTER VNIC
#                              bench_lab with one queue, VNIC's VM allowed
#                              mtu=1280-9000, vnic1 under mac- and ip-nospoof,
#                              then start_vnicd (protocol.sh, soak.sh)
# and, for bench/suite.sh, the baselines' up/down pairs (below): bench_bridge_up,
# bench_clean_traffic, bench_ovs_up, with bench_park and bench_bg.
bench_lab() {
    p=$1$(printf %05d $((RANDOM % 100000)))
    tmp=$(mktemp -d)
    db=$tmp/vnic.db
    vnicd_pid=
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    "$bin/vnic-lab" up --prefix "$p" --vms 2 --queues "$2" >/dev/null
    for i in 1 2; do
        "$bin/vnicadm" create-vnic --db "$db" -l uplink0 -m "02:00:00:00:01:0$i" --port "vm${i}p" \
            -i "10.77.0.1$i/24" "vnic$i" >/dev/null
    done
}

bench_request_lab() {
    bench_lab "$1" 1
    "$bin/vnicadm" set-policy --db "$db" -p mtu=1280-9000 "$2"
    "$bin/vnicadm" set-linkprop --db "$db" -p protection=mac-nospoof,ip-nospoof vnic1
    VNICD_ENV=()
    start_vnicd
}

bench_cleanup() {
    if [[ -n ${vnicd_pid:-} ]]; then stop_vnicd; fi
    # What bench/suite.sh started: parked and background processes, private OVS daemons.
    local pid
    for pid in ${bench_parked[@]+"${bench_parked[@]}"}; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    bench_parked=()
    if [[ -d ${tmp:-}/ovs ]]; then bench_ovs_down >/dev/null 2>&1 || true; fi
    "$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true
    rm -rf "$tmp" ${extra_tmp:+"$extra_tmp"}
}

stop_vnicd() {
    kill "$vnicd_pid" 2>/dev/null && wait "$vnicd_pid" 2>/dev/null || true
    vnicd_pid=
}

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$p-$ns" -- "$@"; }

start_vnicd() {
    # nsenter itself in the background (not a function): $! is vnicd's pid.
    nsenter --net="/run/netns/$p-host" -- "${VNICD_ENV[@]}" "$bin/vnicd" --db "$db" "$@" 2>"$tmp/vnicd.log" &
    vnicd_pid=$!
    for _ in $(seq 100); do grep -q "vnic vnic2 up" "$tmp/vnicd.log" 2>/dev/null && return; sleep 0.1; done
    echo "vnicd did not start: $(cat "$tmp/vnicd.log")" >&2; exit 1
}

# --- Systems of bench/suite.sh, each an up/down pair in the lab's P-host (the
# root namespace is never touched). Call bench_lab first.

# A process parked in namespace $p-NS: /proc/PID/net/dev then reads that
# namespace's counters without entering it. Sets REPLY to its pid; bench_cleanup
# ends it (and whatever else bench_bg started: CMD in the background, REPLY = pid).
bench_parked=()
bench_park() { bench_bg nsenter --net="/run/netns/$p-$1" -- sleep infinity; }
bench_bg() {
    "$@" &
    REPLY=$!
    bench_parked+=("$REPLY")
}

# libvirt's clean-traffic filter for one VM port, in ebtables (ebtables-nft),
# as libvirt's nwfilter writes it into the nat table: frames from the VM
# (PREROUTING -i PORT): no-mac-spoofing, no-ip-spoofing (DHCP's 0.0.0.0 allowed),
# IPv4 accepted, no-arp-spoofing (sender MAC and IP, request/reply only), ARP
# accepted, no-other-l2-traffic; frames to the VM (POSTROUTING -o PORT):
# allow-incoming-ipv4, ARP accepted, everything else dropped.
#   bench_clean_traffic PORT MAC IP
bench_clean_traffic() {
    local port=$1 mac=$2 ip=$3 i=I-$1 o=O-$1
    eb() { in_ns host ebtables -t nat "$@"; }
    # A user chain's policy is ACCEPT unless told: the checks' chains return.
    eb -N "$i" -P DROP; eb -N "$i-mac" -P RETURN; eb -N "$i-ip" -P RETURN; eb -N "$i-arp" -P RETURN
    eb -N "$o" -P DROP
    eb -A "$i-mac" -s ! "$mac" -j DROP
    eb -A "$i-ip" -p IPv4 --ip-src 0.0.0.0 --ip-proto udp -j RETURN
    eb -A "$i-ip" -p IPv4 --ip-src "$ip" -j RETURN
    eb -A "$i-ip" -j DROP
    eb -A "$i-arp" -p ARP --arp-mac-src ! "$mac" -j DROP
    eb -A "$i-arp" -p ARP --arp-ip-src ! "$ip" -j DROP
    eb -A "$i-arp" -p ARP --arp-op Request -j RETURN
    eb -A "$i-arp" -p ARP --arp-op Reply -j RETURN
    eb -A "$i-arp" -j DROP
    eb -A "$i" -j "$i-mac"
    eb -A "$i" -p IPv4 -j "$i-ip"
    eb -A "$i" -p IPv4 -j ACCEPT
    eb -A "$i" -p ARP -j "$i-arp"
    eb -A "$i" -p ARP -j ACCEPT
    eb -A "$i" -j DROP
    eb -A "$o" -p IPv4 -j ACCEPT
    eb -A "$o" -p ARP -j ACCEPT
    eb -A "$o" -j DROP
    eb -A PREROUTING -i "$port" -j "$i"
    eb -A POSTROUTING -o "$port" -j "$o"
}

# The Linux bridge between uplink0 and the ports (bench/bridge-baseline.sh),
# without br_netfilter, with static FDB entries (no flooding, no learning
# effects); FILTER=1: clean-traffic on every VM port; TBF=RATE: a tbf qdisc of
# that rate on the egress of uplink0 and every VM port.
#   bench_bridge_up [FILTER] [TBF]        bench_bridge_down
bench_bridge_up() {
    local filter=${1:-0} tbf=${2:-} i
    bash "$(dirname "${BASH_SOURCE[0]}")/bridge-baseline.sh" --prefix "$p" >/dev/null
    in_ns host sysctl -q -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
        net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
    ip -n "$p-host" link set dev br0 type bridge ageing_time 30000 2>/dev/null || true
    bridge -n "$p-host" fdb replace 02:00:00:00:00:01 dev uplink0 master static
    for i in 1 2; do
        bridge -n "$p-host" fdb replace "02:00:00:00:01:0$i" dev "vm${i}p" master static
        if ((filter)); then bench_clean_traffic "vm${i}p" "02:00:00:00:01:0$i" "10.77.0.1$i"; fi
    done
    if [[ -n $tbf ]]; then
        for i in uplink0 vm1p vm2p; do
            ip netns exec "$p-host" tc qdisc replace dev "$i" root tbf rate "$tbf" burst 4mb latency 50ms
        done
    fi
}
bench_bridge_down() {
    local i
    for i in uplink0 vm1p vm2p; do ip netns exec "$p-host" tc qdisc del dev "$i" root 2>/dev/null || true; done
    if in_ns host ebtables -t nat -L >/dev/null 2>&1; then
        in_ns host ebtables -t nat -F; in_ns host ebtables -t nat -X
    fi
    bash "$(dirname "${BASH_SOURCE[0]}")/bridge-baseline.sh" --prefix "$p" --down
}

# Open vSwitch's userspace datapath (netdev) with AF_XDP ports (type=afxdp,
# native XDP, copy mode) for uplink0 and vm1p, its daemons run privately in
# P-host: their own database, sockets, pid and log files under $tmp/ovs (no
# system OVS is touched). OpenFlow: frames to VM1's MAC from uplink0 to vm1p,
# frames from VM1's MAC on vm1p to uplink0, nothing else.
#   bench_ovs_up QUEUES PMD_CPU_MASK      bench_ovs_down
bench_ovs() { ovs-vsctl --db="unix:$tmp/ovs/db.sock" --timeout=20 "$@"; }
bench_ovs_up() {
    local q=$1 mask=$2 d=$tmp/ovs i
    mkdir -p "$d"
    export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
    rm -f "$d/conf.db"
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    nsenter --net="/run/netns/$p-host" -- ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
        --pidfile="$d/ovsdb-server.pid" --unixctl="$d/ovsdb-server.ctl" --log-file="$d/ovsdb-server.log" \
        --detach --no-chdir
    bench_ovs --no-wait init
    bench_ovs --no-wait set Open_vSwitch . other_config:pmd-cpu-mask="$mask"
    nsenter --net="/run/netns/$p-host" -- ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/ovs-vswitchd.pid" \
        --unixctl="$d/ovs-vswitchd.ctl" --log-file="$d/ovs-vswitchd.log" --detach --no-chdir
    bench_ovs add-br br0 -- set bridge br0 datapath_type=netdev
    for i in uplink0 vm1p; do
        bench_ovs add-port br0 "$i" -- set interface "$i" type=afxdp options:xdp-mode=native options:n_rxq="$q"
        local err
        err=$(bench_ovs get interface "$i" error 2>/dev/null || true)
        [[ -z $err || $err == '[]' ]] || { echo "ovs: interface $i: $err" >&2; return 1; }
    done
    bench_ovs get interface vm1p ofport >/dev/null
    ovs-ofctl del-flows "unix:$d/br0.mgmt"
    ovs-ofctl add-flow "unix:$d/br0.mgmt" "priority=10,in_port=uplink0,dl_dst=02:00:00:00:01:01,actions=output:vm1p"
    ovs-ofctl add-flow "unix:$d/br0.mgmt" "priority=10,in_port=vm1p,dl_src=02:00:00:00:01:01,actions=output:uplink0"
    ovs-ofctl add-flow "unix:$d/br0.mgmt" "priority=0,actions=drop"
}
bench_ovs_down() {
    local d=$tmp/ovs f pid i
    for f in ovs-vswitchd ovsdb-server; do
        [[ -f $d/$f.pid ]] || continue
        pid=$(cat "$d/$f.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do   # gone, or a zombie (detached daemons are not our children)
            [[ $(ps -o stat= -p "$pid" 2>/dev/null) == [^Z]* ]] || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$d/$f.pid"
    done
    # ovs-vswitchd attaches XDP through libxdp (not a bpf_link): it stays after a kill.
    for i in uplink0 vm1p; do ip -n "$p-host" link set dev "$i" xdp off 2>/dev/null || true; done
    for i in br0 ovs-netdev; do ip -n "$p-host" link del dev "$i" 2>/dev/null || true; done
    unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
}
