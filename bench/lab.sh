# bench/lab.sh: what the benchmark scripts share, sourced after `bin` is set:
# a lab with a unique prefix and two VNICs in a fresh database, removed on exit
# (vnicd included, also when interrupted).
#
#   bench_lab LETTER QUEUES    sets p (prefix), tmp, db; brings the lab up
#   in_ns NS CMD...            runs CMD in namespace $p-NS
#   start_vnicd [ARGS...]      starts vnicd on $db, waits until both VNICs are up
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

bench_cleanup() {
    if [[ -n ${vnicd_pid:-} ]]; then kill "$vnicd_pid" 2>/dev/null && wait "$vnicd_pid" 2>/dev/null || true; fi
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
