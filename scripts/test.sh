#!/usr/bin/env bash
# Runs every test (XCTest, in parallel processes) and closes with one line
# "tests: N passed, N failed, N skipped" read from the xUnit reports. The
# isolation tests (one VM flooding, another measured) and the QEMU guests'
# (TCG keeps a core busy for a minute) run afterwards on their own: beside
# other labs on 2 cores they would measure, or disturb, the other tests.
#   scripts/test.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: scripts/test.sh BIN_DIR}
serial='FloodTests|QEMUGuestTests|QEMUGuestLabTests|ScaleTests'
report=build/tests.xml report2=build/tests-serial.xml
mkdir -p build
rm -f "$report" "$report2"
VNIC_BIN_DIR="$bin" swift test --parallel --num-workers 2 --disable-swift-testing --skip "$serial" --xunit-output "$report"
rc=$?
VNIC_BIN_DIR="$bin" swift test --skip-build --parallel --num-workers 1 --disable-swift-testing --filter "$serial" --xunit-output "$report2"
rc2=$?
python3 - "$report" "$((rc | rc2))" "$report2" <<'PY'
import sys, xml.etree.ElementTree as ET
report, rc, report2 = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cases = []
for r in (report, report2):
    try:
        cases += list(ET.parse(r).getroot().iter("testcase"))
    except Exception as e:
        print(f"no test report {r} ({e})"); sys.exit(rc or 1)
passed = failed = skipped = 0
for c in cases:
    if c.find("failure") is not None or c.find("error") is not None:
        failed += 1; print("FAILED:", c.get("classname"), c.get("name"))
    elif c.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or rc else 0)
PY
