#!/usr/bin/env bash
# The QEMU guest image of `vnic-lab up --qemu K`: a kernel and a gzip'd newc
# initramfs with busybox, iproute2's ip, vnic-guest (with the Swift runtime),
# iperf3 and ethtool when installed, and the virtio-net modules. Nothing is
# written outside OUTDIR.
#
#   scripts/guest-image.sh [OUTDIR]     (default .build/guest)
#
# OUTDIR/vmlinuz     the newest /boot/vmlinuz-* (its modules: /lib/modules/VERSION)
# OUTDIR/initrd.img  the initramfs; /init is described below (see "init")
# OUTDIR/stamp       the hash of every input: unchanged inputs, no work
#
# vnic-guest comes from $VNIC_BIN_DIR, else from `swift build -c release --show-bin-path`.
# A missing prerequisite fails with one line naming it (and its Debian package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root_dir=$(cd "$here/.." && pwd)
out=${1:-$root_dir/.build/guest}
self="$here/$(basename "$0")"

die() { echo "guest-image.sh: $*" >&2; exit 1; }
need() {  # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || die "$1 not found (install the Debian package $2)"
}

# What the image holds, in order: busybox-static (its applets linked, /bin/sh is
# dash), iproute2's ip, vnic-guest, iperf3 and ethtool if installed, each with its
# shared libraries (ldd) and the loader, a udhcpc lease script, and these modules.
# The virtio-net stack of Debian's kernel, in the order /init loads it.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net"

need cpio cpio
need gzip gzip
need ldd libc-bin
need ldconfig libc-bin
need sha256sum coreutils
need flock util-linux
busybox=/bin/busybox
[[ -x $busybox ]] && "$busybox" --list-full >/dev/null 2>&1 \
    || die "$busybox (static) not found (install the Debian package busybox-static)"
ldd "$busybox" 2>/dev/null | grep -q '=>' \
    && die "$busybox is dynamically linked (install the Debian package busybox-static)"
# /bin/sh is dash, not busybox's ash: this busybox prefers its applets to PATH
# ("ip" in an ash script is busybox's ip, which has no -j); dash finds iproute2's.
dash_bin=$(command -v dash || true)
[[ -n $dash_bin ]] || die "dash not found (install the Debian package dash)"
dash_bin=$(readlink -f "$dash_bin")
ip_bin=$(command -v ip || true)
[[ -z $ip_bin && -x /usr/sbin/ip ]] && ip_bin=/usr/sbin/ip
[[ -n $ip_bin && -x $ip_bin ]] || die "ip not found (install the Debian package iproute2)"
ip_bin=$(readlink -f "$ip_bin")
# Optional: iperf3 and ethtool, when the host has them.
iperf_bin=$(command -v iperf3 || true)
[[ -n $iperf_bin ]] && iperf_bin=$(readlink -f "$iperf_bin")
ethtool_bin=$(command -v ethtool || true)
[[ -z $ethtool_bin && -x /usr/sbin/ethtool ]] && ethtool_bin=/usr/sbin/ethtool
[[ -n $ethtool_bin ]] && ethtool_bin=$(readlink -f "$ethtool_bin")

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
[[ -n $kernel && -r $kernel ]] || die "no readable /boot/vmlinuz-* (install the Debian package linux-image-amd64)"
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
[[ -d $moddir ]] || die "$moddir not found for $kernel (install the Debian package linux-image-$kver)"
module_files=()
for m in $modules; do
    if grep -qE "/$m\.ko$" "$moddir/modules.builtin" 2>/dev/null; then continue; fi  # built in: nothing to load
    f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" | head -n 1)
    [[ -n $f ]] || die "module $m not found under $moddir (install the Debian package linux-image-$kver)"
    case $f in *.xz) need xz xz-utils ;; *.zst) need zstd zstd ;; esac
    module_files+=("$m=$f")
done

bin_dir=${VNIC_BIN_DIR:-}
if [[ -z $bin_dir ]]; then
    swift=$(command -v swift || echo /opt/swift/usr/bin/swift)
    [[ -x $swift ]] || die "swift not found and VNIC_BIN_DIR not set (where vnic-guest was built)"
    bin_dir=$(cd "$root_dir" && "$swift" build -c release --show-bin-path)
fi
guest_bin=$bin_dir/vnic-guest
[[ -x $guest_bin ]] || die "$guest_bin not found (build it: swift build -c release --product vnic-guest, or set VNIC_BIN_DIR)"

# Every shared library a program needs, with the dynamic loader (ldd's absolute paths).
libs_of() {
    ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\/[^ ]*ld-linux/{print $1}' || true
}
programs=("$ip_bin" "$guest_bin" "$dash_bin")
[[ -n $iperf_bin ]] && programs+=("$iperf_bin")
[[ -n $ethtool_bin ]] && programs+=("$ethtool_bin")
libs=$(for p in "${programs[@]}"; do libs_of "$p"; done | sort -u)
[[ -n $libs ]] || die "ldd found no libraries for $ip_bin (install the Debian package libc-bin)"
for l in $libs; do [[ -r $l ]] || die "library $l (needed by the guest programs) is not readable"; done

# The stamp: this script, and the content of every input.
stamp=$( { sha256sum "$self"; echo "kernel $kernel"
           for f in "$kernel" "$busybox" "${programs[@]}" $libs; do sha256sum "$(readlink -f "$f")"; echo "$f"; done
           for mf in "${module_files[@]}"; do sha256sum "${mf#*=}"; done
         } | sha256sum | cut -d' ' -f1)

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9   # two labs coming up at once build the image once
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" && -s $out/initrd.img && -s $out/vmlinuz ]]; then
    echo "guest image up to date: $out ($(du -h "$out/initrd.img" | cut -f1) initrd.img)"
    exit 0
fi

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,var/run,lib/modules/vnic,usr/share/udhcpc}
chmod 1777 "$r/tmp"

# busybox with its applet links. `busybox --list-full` names busybox itself: a link
# from bin/busybox to itself would replace the binary, and the kernel panics at /init.
cp "$busybox" "$r/bin/busybox"
"$busybox" --list-full | while read -r path; do
    name=${path##*/}
    case $name in busybox|sh|ip|iperf3|ethtool|"") continue ;; esac
    mkdir -p "$r/$(dirname "$path")"
    [[ -e $r/$path ]] || ln -s /bin/busybox "$r/$path"
done

# Programs and their libraries, at the paths ldd resolved them to (the Swift
# runtime under /opt/swift, which vnic-guest's RUNPATH names), plus a loader cache.
cp "$dash_bin" "$r/bin/dash"
ln -s dash "$r/bin/sh"
cp "$ip_bin" "$r/usr/sbin/ip"
ln -s /usr/sbin/ip "$r/sbin/ip"
cp "$guest_bin" "$r/usr/bin/vnic-guest"
[[ -n $iperf_bin ]] && cp "$iperf_bin" "$r/usr/bin/iperf3"
[[ -n $ethtool_bin ]] && cp "$ethtool_bin" "$r/usr/sbin/ethtool"
for l in $libs; do
    mkdir -p "$r$(dirname "$l")"
    cp -L "$l" "$r$l"
done
dirname $libs | sort -u > "$r/etc/ld.so.conf"
ldconfig -r "$r" 2>/dev/null || die "ldconfig -r failed for the guest's libraries"
[[ -d /etc/iproute2 ]] && cp -r /etc/iproute2 "$r/etc/"

for mf in "${module_files[@]}"; do
    m=${mf%%=*} f=${mf#*=}
    case $f in
        *.xz) xz -dc "$f" > "$r/lib/modules/vnic/$m.ko" ;;
        *.zst) zstd -qdc "$f" > "$r/lib/modules/vnic/$m.ko" ;;
        *.gz) gzip -dc "$f" > "$r/lib/modules/vnic/$m.ko" ;;
        *) cp "$f" "$r/lib/modules/vnic/$m.ko" ;;
    esac
done
echo "$modules" > "$r/etc/vnic-modules"

printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
printf 'root:x:0:\n' > "$r/etc/group"
printf '127.0.0.1 localhost\n' > "$r/etc/hosts"
mknod "$r/dev/console" c 5 1 2>/dev/null || true

# udhcpc's lease script (Debian's busybox runs /etc/udhcpc/default.script, others
# /usr/share/udhcpc/default.script: both are there): address
# and prefix, default route, MTU (option 26: `udhcpc -i eth0 -O mtu`), DNS.
cat > "$r/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc lease script: applies the lease to $interface with ip (iproute2, else busybox's).
[ -n "$interface" ] || exit 1
IP=/usr/sbin/ip; [ -x $IP ] || IP="busybox ip"
prefix_of() {  # dotted netmask -> prefix length
    n=0; for o in $(echo "$1" | tr . ' '); do
        case $o in 255) n=$((n+8));; 254) n=$((n+7));; 252) n=$((n+6));; 248) n=$((n+5));;
                   240) n=$((n+4));; 224) n=$((n+3));; 192) n=$((n+2));; 128) n=$((n+1));; esac
    done; echo $n
}
case $1 in
deconfig)
    $IP -4 addr flush dev "$interface"
    $IP link set dev "$interface" up
    ;;
bound|renew)
    p=${mask:-$(prefix_of "${subnet:-255.255.255.0}")}
    [ "$1" = bound ] && $IP -4 addr flush dev "$interface"
    $IP addr replace "$ip/$p" dev "$interface"
    [ -n "$mtu" ] && $IP link set dev "$interface" mtu "$mtu"
    if [ -n "$router" ]; then
        $IP route del default dev "$interface" 2>/dev/null
        for r in $router; do $IP route add default via "$r" dev "$interface" && break; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
EOF
chmod 755 "$r/usr/share/udhcpc/default.script"
mkdir -p "$r/etc/udhcpc"
ln -s /usr/share/udhcpc/default.script "$r/etc/udhcpc/default.script"

# init: mounts, the modules, lo and eth0 up with the kernel command line's
# vnic.ip=ADDR/PREFIX and vnic.gw=ADDR (none given: no address), vnic.name=NAME
# (hostname); then the ready line on the console and the shell. vnic.probe: the
# ready line and power off at once (no network needed).
cat > "$r/init" <<'EOF'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
dmesg -n 1   # kernel messages off the console: it is the control channel
addr= gw= name=vm probe=
for w in $(cat /proc/cmdline); do
    case $w in
        vnic.ip=*) addr=${w#vnic.ip=} ;;
        vnic.gw=*) gw=${w#vnic.gw=} ;;
        vnic.name=*) name=${w#vnic.name=} ;;
        vnic.probe) probe=1 ;;
    esac
done
# vnic-lab's accelerator probe: booting this far is the answer.
if [ -n "$probe" ]; then echo VNIC-GUEST-READY; poweroff -f; fi
for m in $(cat /etc/vnic-modules); do
    [ -f /lib/modules/vnic/$m.ko ] || continue
    insmod /lib/modules/vnic/$m.ko || echo "vnic-init: insmod $m failed"
done
hostname "$name"
ip link set dev lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || echo "vnic-init: no eth0"
ip link set dev eth0 up
[ -n "$addr" ] && ip addr add "$addr" dev eth0
[ -n "$gw" ] && ip route add default via "$gw" dev eth0
stty -echo 2>/dev/null   # the console (ttyS0) is a control channel: no echo
echo VNIC-GUEST-READY
# The root shell on the console (ttyS0, its controlling terminal): no echo, an
# empty prompt, respawned when it exits. /bin/sh by path: busybox applets that run
# a program (setsid, timeout, env) prefer their own ash to PATH.
export PS1= PS2=
while :; do
    stty -echo </dev/ttyS0 2>/dev/null
    setsid -c /bin/sh -i </dev/ttyS0 >/dev/ttyS0 2>&1
done
EOF
chmod 755 "$r/init"

(cd "$r" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --reproducible --quiet) \
    | gzip -6 -n > "$work/initrd.img"
cp "$kernel" "$work/vmlinuz"
mv -f "$work/initrd.img" "$out/initrd.img"
mv -f "$work/vmlinuz" "$out/vmlinuz"
echo "$stamp" > "$out/stamp"
echo "guest image built: $out ($(du -h "$out/initrd.img" | cut -f1) initrd.img, kernel $kver)"
