#!/usr/bin/env bash
# Runs every test (XCTest, in parallel processes) and closes with one line
# "tests: N passed, N failed, N skipped" read from the xUnit report.
#   scripts/test.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: scripts/test.sh BIN_DIR}
report=build/tests.xml
mkdir -p build
rm -f "$report"
VNIC_BIN_DIR="$bin" swift test --parallel --num-workers 2 --disable-swift-testing --xunit-output "$report"
rc=$?
python3 - "$report" "$rc" <<'PY'
import sys, xml.etree.ElementTree as ET
report, rc = sys.argv[1], int(sys.argv[2])
try:
    root = ET.parse(report).getroot()
except Exception as e:
    print(f"no test report ({e})"); sys.exit(rc or 1)
cases = root.iter("testcase")
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
