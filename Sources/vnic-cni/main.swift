// vnic-cni: see CNIPlugin.swift. Exit status: 0 success; 1 a runtime failure, 2 a
// bad environment or network config (the spec's error JSON on stdout either way,
// one line on stderr).
import Foundation
import VnicCore

let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("--help") || arguments.contains("-h") {
    print("""
        OVERVIEW: A CNI 1.0.0 plugin that attaches a container to vnicd as a VNIC.

        USAGE: CNI_COMMAND=ADD|DEL|CHECK|VERSION CNI_CONTAINERID=ID CNI_NETNS=PATH CNI_IFNAME=NAME \\
               CNI_PATH=DIRS vnic-cni < NETWORK-CONFIG

        Run by a container runtime (or by hand as above) in the network namespace where vnicd
        runs. The network config is CNI's (cniVersion, name, type "vnic-cni", ipam: a plugin in
        CNI_PATH such as host-local) with these keys: uplink (the uplink vnicd serves,
        required), db (the database; default $VNIC_DB, else /var/lib/vnic/vnic.db),
        protection, maxbw, policy (an object PARAM -> VALUES, as vnicadm set-policy -p).
        ADD makes a veth pair (vc<hash> here, CNI_IFNAME in CNI_NETNS), the VNIC cni-<hash>
        with the IPAM address, and waits until vnicd reports it up ($VNIC_CNI_TIMEOUT s,
        default 10). DEL removes them and is idempotent; CHECK compares them with prevResult.
        Results and errors are the spec's JSON on stdout.
        """)
    exit(0)
}
if let extra = arguments.first {
    printError("vnic-cni: unexpected argument '\(extra)' (the plugin reads CNI_* variables and stdin; see --help)")
    exit(2)
}
let input = FileHandle.standardInput.readDataToEndOfFile()
exit(CNIPlugin(env: ProcessInfo.processInfo.environment, stdin: input).run())
