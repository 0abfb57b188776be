// vnicadm batch [-f FILE|-] [--per-line] [-v]: many write subcommands, one per line.
//
// Lines are vnicadm write subcommands without `vnicadm` (it may be given) and
// without --db (the batch's applies): create-vnic, delete-vnic, set,
// set-linkprop, reset-linkprop, set-policy. Words split at blanks; '...' and
// "..." quote, \ escapes; a word starting with # begins a comment. Every line is
// parsed and its values checked before the database is opened, so a syntax or
// value error on any line changes nothing (errors that need the database, like
// an unknown VNIC, show when the line is applied).
// By default all lines are one write transaction: all of them are committed or
// (on any error, or if the process dies) none; one fsync for the whole batch.
// With --per-line each line is its own transaction, stopping at the first
// failure with the lines before it committed.
import ArgumentParser
import Foundation
import VnicConfig
import VnicCore

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Run many write subcommands, one per line, in one transaction (all or nothing).",
        discussion: """
            Each line is a subcommand as on the command line, without 'vnicadm' and --db: \
            create-vnic, delete-vnic, set, set-linkprop, reset-linkprop, set-policy. Blank lines and \
            '# comments' are skipped; quotes ('..', "..") and \\ work as in a shell. Every line is parsed \
            before anything is written. By default all lines commit together or not at all (an error, or \
            the process being killed, leaves the database as it was); --per-line commits each line on its \
            own and stops at the first failure. Errors name the line: "line 17: maxbw: '10Q' is not a \
            bandwidth". Example: vnicadm batch -f vnics.txt, with lines like \
            "create-vnic -l uplink0 -m 02:00:00:00:01:01 --port vm1p -i 10.77.0.11/24 -p maxbw=100M vnic1".
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(name: [.customShort("f"), .customLong("file")],
            help: ArgumentHelp("Read the lines from FILE ('-' or none: standard input).", valueName: "file"))
    var file: String?

    @Flag(name: .customLong("per-line"), help: "Commit each line on its own (default: all lines in one transaction).")
    var perLine = false

    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Report progress on standard error.")
    var verbose = false

    func run() throws {
        let source = file == nil || file == "-" ? "standard input" : file!
        let text: String
        if file == nil || file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: file!) else {
                throw VnicError("batch: cannot read \(file!): \(String(cString: strerror(errno)))")
            }
            text = String(decoding: data, as: UTF8.self)
        }

        var commands: [(line: Int, command: any WriteCommand)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = i + 1
            let words: [String]
            do { words = try Self.words(line) } catch { throw VnicError.usage("batch: line \(number): \(error.message)") }
            guard !words.isEmpty else { continue }
            commands.append((number, try Self.command(words, line: number)))
        }
        if verbose { printError("vnicadm batch: \(commands.count) command(s) read from \(source)") }
        guard !commands.isEmpty else { return }

        let store = try database.open(create: commands.contains { type(of: $0.command).createsDatabase })
        if perLine {
            var done = 0
            for (number, command) in commands {
                do {
                    try store.update { (tx) throws(VnicError) in try command.apply(&tx) }
                    try FleetMode.commit()
                } catch {
                    let e = error
                    throw VnicError("batch: line \(number): \(e.message); \(done) line(s) before it were committed",
                                    exitCode: e.exitCode)
                }
                done += 1
                if verbose && (done % 1000 == 0 || done == commands.count) {
                    printError("vnicadm batch: \(done) of \(commands.count) committed")
                }
            }
            return
        }
        if verbose { printError("vnicadm batch: applying \(commands.count) command(s) in one transaction") }
        var current = 0
        do {
            try store.update { (tx) throws(VnicError) in
                for (number, command) in commands {
                    current = number
                    try command.apply(&tx)
                }
                current = 0
                if verbose { printError("vnicadm batch: committing") }
            }
            try FleetMode.commit()   // with --etcd: the whole batch in one etcd transaction
        } catch {
            let e = error
            let message = e.message.hasSuffix("nothing was changed") ? e.message : e.message + "; nothing was committed"
            throw VnicError(current > 0 ? "batch: line \(current): \(message)" : "batch: \(message)", exitCode: e.exitCode)
        }
        if verbose { printError("vnicadm batch: committed \(commands.count) command(s), generation \(try store.generation())") }
    }

    /// Parses one line's words into a write subcommand; usage errors name the line.
    static func command(_ words: [String], line: Int) throws(VnicError) -> any WriteCommand {
        var args = words
        if args.first == "vnicadm" { args.removeFirst() }
        let parsed: any ParsableCommand
        do {
            parsed = try VnicAdm.parseAsRoot(args)
        } catch {
            var message = VnicAdm.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if message.hasPrefix("Error: ") { message.removeFirst(7) }
            if message.isEmpty || VnicAdm.exitCode(for: error) == .success { message = "'\(args.joined(separator: " "))' is not a write subcommand" }
            throw .usage("batch: line \(line): \(message)")
        }
        guard let command = parsed as? any WriteCommand else {
            let name = type(of: parsed).configuration.commandName ?? "vnicadm"
            throw .usage("batch: line \(line): \(name) is not a write subcommand (create-vnic, delete-vnic, set, set-linkprop, reset-linkprop, set-policy)")
        }
        if command.database.db != nil {
            throw .usage("batch: line \(line): --db is not allowed in a batch line (give it to vnicadm batch)")
        }
        do { try command.check() } catch { throw VnicError("batch: line \(line): \(error.message)", exitCode: error.exitCode) }
        return command
    }

    /// Splits a line into words like a shell: blanks separate, '...' and "..."
    /// quote, \ escapes the next character, a word starting with # ends the line.
    static func words(_ line: Substring) throws(VnicError) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for c in line {
            if escaped { word.append(c); escaped = false; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { escaped = true } else { word.append(c) }
                continue
            }
            switch c {
            case " ", "\t", "\r":
                if inWord { words.append(word); word = ""; inWord = false }
            case "#" where !inWord:
                return words
            case "'", "\"":
                quote = c; inWord = true
            case "\\":
                escaped = true
            default:
                word.append(c); inWord = true
            }
        }
        if quote != nil { throw .usage("unterminated \(quote!) quote") }
        if escaped { throw .usage("a \\ at the end of the line") }
        if inWord { words.append(word) }
        return words
    }
}
