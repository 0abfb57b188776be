#!/usr/bin/env bash
# make demo: a lab with two VMs (namespaces) and a real QEMU guest (a Debian
# kernel, QEMU's default virtio-net, on a tap QEMU makes) on a 2-queue uplink,
# vnicd serving them, traffic
# through it (pps), a spoof attempt blocked, a VM's requests accepted and
# denied (the audit log), a host-initiated change applied inside the guest,
# the Prometheus metrics, and what vnicd counted; then everything is removed
# (also when interrupted). The lines starting with "RESULT" are the story.
#
#   scripts/demo.sh BIN_DIR        (DEMO_PREFIX: the lab's namespace prefix, default demo)
set -euo pipefail
bin=${1:?usage: scripts/demo.sh BIN_DIR}
p=${DEMO_PREFIX:-demo}
metrics_port=9464
tmp=$(mktemp -d)
db=$tmp/vnic.db
vnicd_pid=
listen=
cleanup() {
    kill $(jobs -p) 2>/dev/null || true   # sinks and agents still running in the lab
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

guests=0
command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1 && guests=1
step "1. Lab: namespaces $p-host (uplink0 + ports), $p-wire (the outside), $p-vm1, $p-vm2$( ((guests)) && echo ", and vm3: a QEMU guest on tap vm3t")"
"$bin/vnic-lab" down --prefix "$p" >/dev/null 2>&1 || true
if ((guests)); then
    "$bin/vnic-lab" up --prefix "$p" --vms 3 --queues 2 --qemu 1
else
    echo "(no QEMU or no /boot/vmlinuz-*: the demo runs without a real guest; make deps installs them)"
    "$bin/vnic-lab" up --prefix "$p" --vms 2 --queues 2
fi
"$bin/vnic-lab" status --prefix "$p"

step "2. VNICs in the configuration database ($db)"
for i in 1 2; do
    "$bin/vnicadm" create-vnic --db "$db" -l uplink0 -m "02:00:00:00:01:0$i" --port "vm${i}p" -i "10.77.0.1$i/24" "vnic$i"
done
if ((guests)); then   # the guest gets its address by DHCP from vnicd
    "$bin/vnicadm" create-vnic --db "$db" -l uplink0 -m 02:00:00:00:01:03 --port vm3t -i 10.77.0.13/24 -p gateway=10.77.0.1 vnic3
    "$bin/vnicadm" set-linkprop --db "$db" -p dhcp=on,protection=mac-nospoof,ip-nospoof vnic3
fi
"$bin/vnicadm" show-vnic --db "$db"

step "3. vnicd: XDP classifier on uplink0, one pinned worker per queue"
nsenter --net="/run/netns/$p-host" -- "$bin/vnicd" --db "$db" --metrics "$metrics_port" 2>"$tmp/vnicd.log" &
vnicd_pid=$!
for _ in $(seq 100); do grep -q "vnic vnic$((2 + guests)) up" "$tmp/vnicd.log" 2>/dev/null && [[ -f $db-status.json ]] && break; sleep 0.1; done
cat "$tmp/vnicd.log"
"$bin/vnicadm" show-vnic --db "$db"

step "4. Ping through vnicd (ARP included)"
for pair in "wire 10.77.0.11" "wire 10.77.0.12" "vm1 10.77.0.1" "vm1 10.77.0.12"; do
    set -- $pair
    if in_ns "$1" ping -c 1 -W 2 "$2" >/dev/null; then echo "$1 -> $2: ok"; else echo "$1 -> $2: FAILED"; fi
done

if ((guests)); then
    step "4b. The QEMU guest (1 vCPU, single-queue tap vm3t on a 2-queue uplink, QEMU's default offloads)"
    g() { "$bin/vnic-lab" guest exec --prefix "$p" --timeout 60 3 -- "$@"; }
    g "ip addr flush dev eth0; udhcpc -i eth0 -n -q -t 5 -T 2 >/dev/null 2>&1; ip -br -4 addr show dev eth0" || true
    g "ethtool -k eth0 | grep -E '^(tx-checksumming|tcp-segmentation-offload):'" || true
    in_ns wire python3 -c 'import socket,hashlib; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("0.0.0.0",9000)); s.listen(1); c,_=s.accept(); h=hashlib.sha256(); n=0
while True:
    b=c.recv(65536)
    if not b: break
    h.update(b); n+=len(b)
print(n, h.hexdigest())' >"$tmp/tcp" 2>&1 &
    sink=$!
    sleep 0.5
    mine=$(g "dd if=/dev/urandom of=/tmp/out bs=1024 count=2048 2>/dev/null; nc -w 20 10.77.0.1 9000 < /tmp/out; sha256sum /tmp/out" | awk '{print $1}' | tail -n 1 || true)
    wait $sink || true
    errors=$(in_ns wire nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ {print $2}')
    echo "the wire received: $(cat "$tmp/tcp"); the guest sent sha256 $mine; TcpInCsumErrors on the wire: ${errors:-?}"
    if [[ $(cut -d' ' -f2 "$tmp/tcp") == "$mine" && -n $mine ]]; then
        echo "RESULT real guest: a QEMU guest on a single-queue tap got its address by DHCP from vnicd and sent 2 MiB over TCP with its default offloads (partial checksums, TSO), arriving whole (checksum errors: ${errors:-?})"
    else
        echo "RESULT real guest: the TCP transfer from the QEMU guest FAILED"
    fi
fi

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
read -r got pps < <(sed -n 's/^received \([0-9]*\) frames.* at \([0-9]*\) pps.*/\1 \2/p' "$tmp/sink1")
echo "RESULT traffic: VM1 received ${got:-0} of 100000 frames through vnicd at ${pps:-0} pps"

step "6. 1,000 frames to a MAC no VNIC owns: dropped in XDP and counted"
in_ns wire "$bin/vnic-pktgen" -i wire0 --dst-mac 02:00:00:00:0e:ee --count 1000 --rate 100000
sleep 0.4
echo "classifier unknown-dst counter: $(field 'd["classifier"]["unknown-dst"]')"

step "7. A spoof attempt: VM1 sends 500 frames with a forged source MAC"
in_ns vm1 "$bin/vnic-pktgen" -i vnic0 --dst-mac 02:00:00:00:00:01 --src-mac 02:00:00:00:01:99 \
    --src-ip 10.77.0.11 --dst-ip 10.77.0.1 --count 500 --rate 5000
sleep 0.6
echo "vnic1 drops: $(field 'd["vnics"]["vnic1"]["drops"]')"
spoofed=$(field 'd["vnics"]["vnic1"]["drops"].get("spoof-mac", 0)')
echo "RESULT spoof blocked: $spoofed of 500 frames with a forged source MAC dropped (counter spoof-mac)"

step "8. VM1 asks for a new address in-band (policy: ip=10.77.0.20-10.77.0.29)"
"$bin/vnicadm" set-policy --db "$db" -p ip=10.77.0.20-10.77.0.29 vnic1
if in_ns vm1 "$bin/vnic-guest" request ip=10.77.0.21; then echo "RESULT request accepted: VM1 asked for ip=10.77.0.21 and got it"; fi
if ! in_ns vm1 "$bin/vnic-guest" request ip=10.77.0.99 --timeout 1 2>/dev/null; then
    echo "RESULT request denied: VM1 asked for ip=10.77.0.99, outside its policy: no answer (exit 3), nothing changed"
fi
echo "VM1's interface: $(in_ns vm1 ip -br -4 addr show dev vnic0)"
if in_ns wire ping -c 1 -W 2 10.77.0.21 >/dev/null; then echo "wire -> 10.77.0.21: ok"; fi
echo "the audit log (vnicadm show-events vnic1):"
"$bin/vnicadm" show-events --db "$db" vnic1 | grep -E "VERDICT|accepted|denied" | grep -v "frame" | tail -3

step "9. The host changes VM1's MTU; the guest agent applies it"
nsenter --net="/run/netns/$p-vm1" -- "$bin/vnic-guest" listen >"$tmp/listen" 2>&1 &   # $!: the agent itself
listen=$!
sleep 0.3
ack=$("$bin/vnicadm" set --db "$db" vnic1 mtu=1400 2>&1 || true)
echo "$ack"
mtu=$(in_ns vm1 ip -o link show vnic0 | sed 's/.* mtu \([0-9]*\).*/\1/')
echo "RESULT change applied in the guest: vnicadm set vnic1 mtu=1400, VM1's interface MTU is now $mtu"
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

step "11. Prometheus metrics (vnicd --metrics $metrics_port, in $p-host)"
in_ns host bash -c "exec 3<>/dev/tcp/127.0.0.1/$metrics_port; printf 'GET /metrics HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n' >&3; cat <&3" \
    | grep -E '^vnic_(rx_packets_total|drops_total|worker_busy_ratio|requests_total|config_generation)' | sort | head -14

step "12. Stop vnicd (SIGTERM) and remove the lab"
kill -TERM "$vnicd_pid"; wait "$vnicd_pid" || true; vnicd_pid=
tail -n +4 "$tmp/vnicd.log" | grep -v "up on port" || true
if ip -n "$p-host" -d link show | grep -q prog/xdp; then echo "XDP still attached!"; else echo "no XDP program left attached"; fi
"$bin/vnic-lab" down --prefix "$p"
if ip netns list | grep -q "^$p-"; then echo "RESULT cleanup: namespaces $p-* still there!"; else echo "RESULT cleanup: lab removed, nothing left behind"; fi
