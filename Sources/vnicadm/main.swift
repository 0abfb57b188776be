// vnicadm's entry point. Kept to one call: code in main.swift is MainActor
// isolated in Swift 6; the commands live in their own (nonisolated) files.
import Glibc
import VnicCLI
import VnicCore

do {
    CommandEntry.main(VnicAdm.self, arguments: try FleetMode.take(Array(CommandLine.arguments.dropFirst())))
} catch {
    printError("vnicadm: \(error.message)")
    exit(error.exitCode)
}
