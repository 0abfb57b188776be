// vnic-config-bench's entry point; the benchmark is in ConfigBench.swift
// (nonisolated: code in main.swift is MainActor-isolated in Swift 6).
ConfigBench.main()
