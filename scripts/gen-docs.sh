#!/usr/bin/env bash
# Man pages and shell completions for the vnic executables, generated from their
# argument parsers (swift-argument-parser): nothing here is written by hand.
#
#   scripts/gen-docs.sh BIN_DIR OUT_DIR
#
# Writes, for vnicd, vnicadm, vnic-guest, vnic-pktgen and vnic-lab:
#   OUT_DIR/man8/TOOL.8            from `TOOL --experimental-dump-help` (scripts/gen-man.py)
#   OUT_DIR/bash/TOOL              `TOOL --generate-completion-script bash`
#   OUT_DIR/zsh/_TOOL              `TOOL --generate-completion-script zsh`
#   OUT_DIR/fish/TOOL.fish         `TOOL --generate-completion-script fish`
# Section 8 for all five: each needs root or network capabilities (XDP, AF_XDP,
# namespaces, the guest's stack), like ip(8), ethtool(8) and trafgen(8).
# The argument parser's GenerateManual plugin is not used: it rebuilds the whole
# package through SwiftPM, while this works from any built or installed binaries.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BIN_DIR OUT_DIR" >&2
    exit 2
fi
bin=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
tools=(vnicd vnicadm vnic-guest vnic-pktgen vnic-lab)
section=8

for t in "${tools[@]}"; do
    [[ -x "$bin/$t" ]] || { echo "gen-docs.sh: $bin/$t not found (build first: make build)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "gen-docs.sh: python3 not found (needed for the man pages)" >&2; exit 1; }

mkdir -p "$out/man$section" "$out/bash" "$out/zsh" "$out/fish"
for t in "${tools[@]}"; do
    python3 "$here/gen-man.py" "$bin/$t" "$section" "$out/man$section/$t.$section"
    "$bin/$t" --generate-completion-script bash > "$out/bash/$t"
    "$bin/$t" --generate-completion-script zsh > "$out/zsh/_$t"
    "$bin/$t" --generate-completion-script fish > "$out/fish/$t.fish"
    for f in "$out/man$section/$t.$section" "$out/bash/$t" "$out/zsh/_$t" "$out/fish/$t.fish"; do
        [[ -s "$f" ]] || { echo "gen-docs.sh: $f is empty" >&2; exit 1; }
    done
done
echo "gen-docs.sh: man pages and bash/zsh/fish completions for ${tools[*]} in $out"
