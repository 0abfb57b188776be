// vnicadm's entry point. Kept to one call: code in main.swift is MainActor
// isolated in Swift 6; the commands live in their own (nonisolated) files.
import VnicCLI
CommandEntry.main(VnicAdm.self)
