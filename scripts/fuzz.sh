#!/usr/bin/env bash
# Fuzzes the frame checks (vnic-fuzz-frames: AntiSpoof, the guest/DHCP
# intercept) and the request parsers (vnic-fuzz-requests: GuestMessage.decode,
# DHCPMessage.parse, FrameBuilder.udpPayload) with libFuzzer and ASan, one
# after the other, each from a scratch copy of its seed corpus in Tests/fuzz
# (Tests/ is never written). Prints one line per fuzzer:
#   fuzz frames: 1234567 executions in 60 s, 0 crashes
# and exits 1 if any fuzzer found a crash (its input is kept under
# .build-fuzz/fuzz/NAME/artifacts/: minimise it with `BIN -minimize_crash=1
# -runs=100000 FILE`, fix, and add it to Tests/fuzz/NAME/ as crash-<what>).
#   scripts/fuzz.sh [--seconds N | --runs N] [--only frames|requests]
# Default: --seconds 60 each. Needs the libFuzzer runtime of Swift's clang
# (lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH=/opt/swift/usr/bin:$PATH

limit=(-max_total_time=60)
only=(frames requests)
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) limit=(-max_total_time="${2:?--seconds N}"); shift 2 ;;
        --runs) limit=(-runs="${2:?--runs N}"); shift 2 ;;
        --only) only=("${2:?--only frames|requests}"); shift 2 ;;
        *) echo "usage: scripts/fuzz.sh [--seconds N | --runs N] [--only frames|requests]" >&2; exit 2 ;;
    esac
done

scratch=.build-fuzz
build=(-c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address -Xswiftc -DVNIC_FUZZ
       -Xswiftc -enable-experimental-feature -Xswiftc Extern)
for name in "${only[@]}"; do
    # ld.gold warns once per ASan helper symbol ("Cannot export local symbol"): noise.
    swift build "${build[@]}" --product "vnic-fuzz-$name" 2>&1 | grep -v "Cannot export local symbol"
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then echo "fuzz $name: build failed" >&2; exit 2; fi
done
bin=$(swift build "${build[@]}" --show-bin-path)

# Allocation stacks cost more than the parsers under test (most of the time
# went to unwinding on every malloc): two frames are enough to place a bug, and
# a crash input reruns with the defaults.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=2}
failed=0
for name in "${only[@]}"; do
    work=$scratch/fuzz/$name
    rm -rf "$work"; mkdir -p "$work/corpus" "$work/artifacts"
    cp Tests/fuzz/"$name"/* "$work/corpus/"
    start=$(date +%s)
    "$bin/vnic-fuzz-$name" -max_len=2048 -timeout=10 "${limit[@]}" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$work/log" | tail -1)
    [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$work/log" | tail -1 | tr -d '#')
    done_line=$(grep '^Done [0-9]* runs in' "$work/log" | tail -1)
    crashes=$(find "$work/artifacts" -type f | wc -l)
    echo "fuzz $name: ${runs:-0} executions in $(( $(date +%s) - start )) s, $crashes crashes${done_line:+ ($done_line)}"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "fuzz $name: exit $rc; the end of $work/log:" >&2
        grep -v '# Uses:' "$work/log" | tail -40 >&2
        find "$work/artifacts" -type f -exec echo "  input: {}" \; >&2
    fi
done
exit $failed
