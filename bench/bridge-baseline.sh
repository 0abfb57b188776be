#!/usr/bin/env bash
# Kernel-bridge baseline for the benchmark: in an existing lab (vnic-lab up),
# enslave uplink0 and vm1p..vmNp of P-host to a Linux bridge, so the same veths
# forward through the kernel instead of vnicd. Touches only the namespace P-host.
#
#   bench/bridge-baseline.sh [--prefix P] [--down]     (P defaults to vl)
#
# Up is idempotent; --down removes the bridge (the ports stay up, unenslaved) and
# exits 0 when there is none. Refuses while an XDP program is attached (vnicd runs).
set -euo pipefail

prefix=vl down=0 bridge=br0
while (($#)); do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
        --down) down=1; shift ;;
        -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "bridge-baseline.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $prefix =~ ^[a-z][a-z0-9-]{0,7}$ ]] || { echo "bridge-baseline.sh: --prefix: '$prefix' is not a lab prefix" >&2; exit 2; }
ns=$prefix-host
ip netns list | grep -qx "$ns\( .*\)\?" || { echo "bridge-baseline.sh: no namespace $ns (run: vnic-lab up --prefix $prefix)" >&2; exit 1; }
nip() { ip -n "$ns" "$@"; }

if ((down)); then
    if nip link show dev "$bridge" >/dev/null 2>&1; then nip link del dev "$bridge"; fi
    exit 0
fi

# uplink0 and every port vmIp of the lab, from the namespace itself.
ports=$(nip -o link show | sed -n 's/^[0-9]*: \(uplink0\|vm[0-9]*p\)[@:].*/\1/p')
[[ $ports == *uplink0* ]] || { echo "bridge-baseline.sh: no uplink0 in $ns" >&2; exit 1; }
for p in $ports; do
    if nip -d link show dev "$p" | grep -q 'prog/xdp'; then
        echo "bridge-baseline.sh: an XDP program is attached to $p in $ns (stop vnicd first)" >&2; exit 1
    fi
done

nip link show dev "$bridge" >/dev/null 2>&1 \
    || nip link add "$bridge" address 02:00:00:00:00:03 type bridge stp_state 0 mcast_snooping 0
for p in $ports; do nip link set dev "$p" master "$bridge" up; done
nip link set dev "$bridge" up
echo "bridge $bridge in $ns:" $ports
