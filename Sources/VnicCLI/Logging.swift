// The vnic programs' swift-log handler: one line per event on standard error,
// written with a single write(2) (safe from any thread).
//   info, notice:   "vnicd: vnic vnic1 up"
//   other levels:   "vnicd: warning: vnic vnic1 spoof-mac: 3 frames dropped"
// Metadata follows the message as key=value. Under systemd the journal adds
// the time; nothing is logged per packet.
import ArgumentParser
import Logging
import VnicCore

public struct VnicLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let program: String

    public init(program: String, level: Logger.Level) {
        self.program = program
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = program + ": "
        if event.level != .info && event.level != .notice { line += "\(event.level): " }
        line += event.message.description
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        printError(line.oneLine)
    }

    /// Makes every Logger of this process use this handler at `level`. Once per process.
    public static func bootstrap(program: String, level: Logger.Level = .info) {
        LoggingSystem.bootstrap { _ in VnicLogHandler(program: program, level: level) }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
