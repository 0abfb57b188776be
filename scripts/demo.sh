#!/usr/bin/env bash
# make demo: a lab with two VMs on a 2-queue uplink, vnicd serving them, traffic
# through it, a spoof attempt, and what vnicd counted; then everything is removed
# (also when interrupted).
#
#   scripts/demo.sh BIN_DIR
set -euo pipefail
bin=${1:?usage: scripts/demo.sh BIN_DIR}
p=demo
tmp=$(mktemp -d)
db=$tmp/vnic.db
vnicd_pid=
listen=
cleanup() {
    [[ -n $listen ]] && kill -9 "$listen" 2>/dev/null || true
    [[ -n $vnicd_pid ]] && kill "$vnicd_pid" 2>/dev/null && wait "$vnicd_pid" 2>/dev/null || true
    "$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$p-$ns" -- "$@"; }
field() { python3 -c "import json,sys; d=json.load(open('$db-status.json')); print(eval(sys.argv[1]))" "$1"; }

step "1. Lab: namespaces $p-host (uplink0 + ports), $p-wire (the outside), $p-vm1, $p-vm2"
"$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true
"$bin/vnic-lab" up --prefix "$p" --vms 2 --queues 2
"$bin/vnic-lab" status --prefix "$p"

step "2. VNICs in the configuration database ($db)"
for i in 1 2; do
    "$bin/vnicadm" create-vnic --db "$db" -l uplink0 -m "02:00:00:00:01:0$i" --port "vm${i}p" -i "10.77.0.1$i/24" "vnic$i"
done
"$bin/vnicadm" show-vnic --db "$db"

step "3. vnicd: XDP classifier on uplink0, one pinned worker per queue"
nsenter --net="/run/netns/$p-host" -- "$bin/vnicd" --db "$db" 2>"$tmp/vnicd.log" &
vnicd_pid=$!
for _ in $(seq 100); do grep -q "vnic vnic2 up" "$tmp/vnicd.log" 2>/dev/null && [[ -f $db-status.json ]] && break; sleep 0.1; done
cat "$tmp/vnicd.log"
"$bin/vnicadm" show-vnic --db "$db"

step "4. Ping through vnicd (ARP included)"
for pair in "wire 10.77.0.11" "wire 10.77.0.12" "vm1 10.77.0.1" "vm1 10.77.0.12"; do
    set -- $pair
    if in_ns "$1" ping -c 1 -W 2 "$2" >/dev/null; then echo "$1 -> $2: ok"; else echo "$1 -> $2: FAILED"; fi
done

step "5. 100,000 frames of 64 B from the wire to VM1's MAC (vnic-pktgen, 2 queues)"
in_ns vm1 "$bin/vnic-pktgen" --sink -i vnic0 --duration 8 --idle 1 >"$tmp/sink1" 2>/dev/null &
sink1=$!
in_ns vm2 "$bin/vnic-pktgen" --sink -i vnic0 --duration 8 --idle 1 >"$tmp/sink2" 2>/dev/null &
sink2=$!
sleep 0.5
in_ns wire "$bin/vnic-pktgen" -i wire0 --dst-mac 02:00:00:00:01:01 --count 100000 --rate 100000 --queues 2 --flows 8
wait $sink1 $sink2 || true
echo "VM1 received: $(cat "$tmp/sink1")"
echo "VM2 received: $(cat "$tmp/sink2")"

step "6. 1,000 frames to a MAC no VNIC owns: dropped in XDP and counted"
in_ns wire "$bin/vnic-pktgen" -i wire0 --dst-mac 02:00:00:00:0e:ee --count 1000 --rate 100000
sleep 0.4
echo "classifier unknown-dst counter: $(field 'd["classifier"]["unknown-dst"]')"

step "7. A spoof attempt: VM1 sends 500 frames with a forged source MAC"
in_ns vm1 "$bin/vnic-pktgen" -i vnic0 --dst-mac 02:00:00:00:00:01 --src-mac 02:00:00:00:01:99 \
    --src-ip 10.77.0.11 --dst-ip 10.77.0.1 --count 500 --rate 50000
sleep 0.4
echo "vnic1 drops: $(field 'd["vnics"]["vnic1"]["drops"]')"

step "8. VM1 asks for a new address in-band (policy: ip=10.77.0.20-10.77.0.29)"
"$bin/vnicadm" set-policy --db "$db" -p ip=10.77.0.20-10.77.0.29 vnic1
if in_ns vm1 "$bin/vnic-guest" request ip=10.77.0.21; then echo "request ip=10.77.0.21: accepted"; fi
if ! in_ns vm1 "$bin/vnic-guest" request ip=10.77.0.99 --timeout 1 2>/dev/null; then echo "request ip=10.77.0.99: denied (no answer, exit 3)"; fi
echo "VM1's interface: $(in_ns vm1 ip -br -4 addr show dev vnic0)"
if in_ns wire ping -c 1 -W 2 10.77.0.21 >/dev/null; then echo "wire -> 10.77.0.21: ok"; fi
"$bin/vnicadm" show-events --db "$db" vnic1 | tail -3

step "9. The host changes VM1's MTU; the guest agent applies it"
nsenter --net="/run/netns/$p-vm1" -- "$bin/vnic-guest" listen >"$tmp/listen" 2>&1 &   # $!: the agent itself
listen=$!
sleep 0.3
"$bin/vnicadm" set --db "$db" vnic1 mtu=1400
echo "VM1's interface MTU: $(in_ns vm1 ip -o link show vnic0 | sed 's/.* mtu \([0-9]*\).*/\1/')"
kill "$listen" 2>/dev/null || true; wait "$listen" 2>/dev/null || true; listen=

step "10. Counters per queue and per VNIC"
python3 - "$db-status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for q in d["queues"]:
    print(f"queue {q['queue']} (worker on core {q['core']}): from uplink {q['rxPackets']}, to uplink {q['txPackets']}")
for name, v in sorted(d["vnics"].items()):
    print(f"{name}: {v['state']}, to VM {v['rxPackets']} pkts, from VM {v['txPackets']} pkts, drops {v['drops'] or 'none'}")
PY

step "11. Stop vnicd (SIGTERM) and remove the lab"
kill -TERM "$vnicd_pid"; wait "$vnicd_pid" || true; vnicd_pid=
tail -n +4 "$tmp/vnicd.log" | grep -v "up on port" || true
if ip -n "$p-host" -d link show | grep -q prog/xdp; then echo "XDP still attached!"; else echo "no XDP program left attached"; fi
"$bin/vnic-lab" down --prefix "$p"
