# bench/args.sh: the command line every benchmark script takes, parsed once.
#
#   source "$(dirname "$0")/args.sh"
#   bench_args NAME[:RESULT] [VAR=DEFAULT ...] -- "$@"
#
# takes BIN_DIR (the first argument: where the built executables are) and
# then `--var VALUE` for each VAR named (a dash in the option for each
# underscore in VAR) and `--out FILE`; anything else is a one-line error
# and exit 2. Sets bin, each VAR (its default unless given), here (bench/),
# root (the repository), host (this machine's short name) and out (FILE, or
# bench/results/DATE-HOST-RESULT.json, RESULT being NAME unless given).
bench_args() {
    local name=${1%%:*} result=${1#*:} spec usage var arg ok
    local -a vars=(out)
    shift
    out=
    usage="usage: bench/$name.sh BIN_DIR"
    while [[ ${1:?bench_args: -- missing} != -- ]]; do
        spec=$1; shift
        var=${spec%%=*}
        vars+=("$var")
        printf -v "$var" '%s' "${spec#*=}"
        usage+=" [--${var//_/-} ${var^^}]"
    done
    shift
    usage+=" [--out FILE]"
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    root=$(cd "$here/.." && pwd)
    host=$(hostname -s)
    if (($# == 0)) || [[ $1 == -* ]]; then echo "$usage" >&2; exit 2; fi
    bin=$1; shift
    while (($#)); do
        arg=$1 ok=
        for var in "${vars[@]}"; do
            if [[ $arg == "--${var//_/-}" ]]; then
                (($# >= 2)) || { echo "$name.sh: $arg needs a value" >&2; exit 2; }
                printf -v "$var" '%s' "$2"
                ok=1
            fi
        done
        [[ $ok ]] || { echo "$name.sh: unknown argument '$arg'" >&2; echo "$usage" >&2; exit 2; }
        shift 2
    done
    out=${out:-"$root/bench/results/$(date -u +%Y-%m-%d)-$host-$result.json"}
}
