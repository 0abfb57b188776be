#!/usr/bin/env bash
# The unit tests under AddressSanitizer and ThreadSanitizer (debug builds,
# own scratch paths .build-asan and .build-tsan), and with --integration also
# integration tests against release binaries built with the same sanitizer
# (.build-asan-rel, .build-tsan-rel; root and a lab needed):
#   ASan: ConfigIntegrationTests, GuestProtocolTests, DataplaneTests
#   TSan: GuestProtocolTests, DataplaneTests
# Every sanitizer report from any process (the test runner, vnicd, vnicadm,
# vnic-guest, ...) goes to .build-{asan,tsan}/reports/; one line per pass:
#   sanitize asan-unit: 164 tests, 4 skipped, 0 failures, 0 reports (log ...)
# Exit 1 on a report, or on a failed test, except integration tests under TSan:
# its 5-15x slowdown breaks their timing bounds (frames lost, latency), so
# there only reports count and failures are listed.
# Leak checking is off: at exit XCTest still holds its test cases (and a child
# process of a test exits mid-test), which LeakSanitizer reports as leaks.
#   scripts/sanitize.sh [--integration] [--only asan|tsan]
set -uo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH=/opt/swift/usr/bin:$PATH

integration=0
only=(asan tsan)
while [ $# -gt 0 ]; do
    case "$1" in
        --integration) integration=1; shift ;;
        --only) only=("${2:?--only asan|tsan}"); shift 2 ;;
        *) echo "usage: scripts/sanitize.sh [--integration] [--only asan|tsan]" >&2; exit 2 ;;
    esac
done

unit='^(VnicCoreTests|VnicPlatformTests|VnicConfigTests|VnicCLITests|VnicControlTests|VnicDataplaneTests|VnicGuestTests|VnicMetricsTests)\.'
[ -f build/vnic.bpf.o ] || make bpf >/dev/null || exit 2      # ClassifierTests load it

quiet() { grep -v "Cannot export local symbol"; }             # ld.gold, once per sanitizer helper symbol

# run NAME SAN SCRATCH FILTER STRICT [VNIC_BIN_DIR]
failed=0
run() {
    local name=$1 san=$2 scratch=$3 filter=$4 strict=$5 bins=${6:-}
    local reports=$scratch/reports/$name log=$scratch/reports/$name.log
    rm -rf "$reports"; mkdir -p "$reports"
    local opts="log_path=$PWD/$reports/report"
    [ "$san" = address ] && opts="$opts:detect_leaks=0"
    ASAN_OPTIONS=$opts TSAN_OPTIONS=$opts VNIC_BIN_DIR=$bins \
        swift test --skip-build --sanitize="$san" --scratch-path "$scratch" --disable-swift-testing \
        --filter "$filter" >"$log" 2>&1
    local rc=$?
    local tests skipped failures nreports
    tests=$(grep -o 'Executed [0-9]* tests\?' "$log" | tail -1 | grep -o '[0-9]*')
    skipped=$(grep -c '^Test Case .* skipped' "$log")
    failures=$(grep -c '^Test Case .* failed' "$log")
    nreports=$(cat "$reports"/report.* 2>/dev/null | grep -c -E '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer)')
    echo "sanitize $name: ${tests:-0} tests, $skipped skipped, $failures failures, $nreports reports (log $log)"
    if [ "$nreports" -ne 0 ]; then
        failed=1
        cat "$reports"/report.* | grep -E '^SUMMARY' | sort | uniq -c | sort -rn | head -20 >&2
        echo "  full reports: $reports/" >&2
    fi
    if [ "$failures" -ne 0 ] || { [ "$rc" -ne 0 ] && [ -z "$tests" ]; }; then
        grep -E '^Test Case .* failed|error:' "$log" | head -20 >&2
        [ "$strict" = 1 ] && failed=1
    fi
}

for s in "${only[@]}"; do
    san=$([ "$s" = asan ] && echo address || echo thread)
    bins=
    if [ "$integration" = 1 ]; then
        swift build -c release --sanitize="$san" --scratch-path ".build-$s-rel" 2>&1 | quiet | tail -1
        [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "sanitize $s: release build failed" >&2; exit 2; }
        bins=$PWD/.build-$s-rel/release
        cp build/vnic.bpf.o "$bins/"
    fi
    swift build --build-tests --sanitize="$san" --scratch-path ".build-$s" 2>&1 | quiet | tail -1
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "sanitize $s: build failed" >&2; exit 2; }
    run "$s-unit" "$san" ".build-$s" "$unit" 1 "$bins"
    if [ "$integration" = 1 ]; then
        if [ "$s" = asan ]; then
            run "$s-integration" "$san" ".build-$s" 'IntegrationTests\.(ConfigIntegrationTests|GuestProtocolTests|DataplaneTests)\.' 1 "$bins"
        else
            run "$s-integration" "$san" ".build-$s" 'IntegrationTests\.(GuestProtocolTests|DataplaneTests)\.' 0 "$bins"
        fi
    fi
done
exit $failed
