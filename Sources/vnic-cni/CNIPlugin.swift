// vnic-cni: a CNI 1.0.0 plugin that attaches a container to vnicd as a VNIC.
//
// Driven as a runtime drives any plugin: CNI_COMMAND (ADD, DEL, CHECK,
// VERSION), CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH in the
// environment, the network config on stdin; the result or the error as the
// spec's JSON on stdout. It runs in the network namespace where vnicd runs.
//
// ADD: IPAM (the config's `ipam` plugin from CNI_PATH, e.g. host-local) gives
// the address; a veth pair is made with its host end `vc<hash>` here and its
// other end CNI_IFNAME in CNI_NETNS (Linux's default offloads left as they are:
// vnicd completes partial checksums), the address and routes are set there;
// the VNIC `cni-<hash>` (MAC, address, gateway, the config's protection, maxbw,
// policy) goes into the database, and the plugin waits until vnicd reports it
// up. Anything that fails is undone. DEL removes the VNIC, the veth and the
// IPAM lease, each only if there, so a second DEL succeeds. CHECK compares the
// VNIC, both interfaces and the addresses with prevResult.
//
// Names come from a hash of the container ID and the interface name, so DEL
// and CHECK need nothing stored besides what they remove or compare.
import Foundation
import VnicConfig
import VnicCore

/// An error as the CNI spec writes it (code, msg, details).
struct CNIError: Error {
    var code: Int
    var msg: String
    var details: String = ""
    /// Spec codes: 1 incompatible version, 3 container unknown, 4 invalid environment,
    /// 5 I/O failure, 6 failed to decode content, 7 invalid network config, 11 try again later;
    /// 100 and up: this plugin's (CHECK drift, a command that failed).
    static let incompatibleVersion = 1, unknownContainer = 3, invalidEnvironment = 4, io = 5, decode = 6,
               invalidConfig = 7, tryAgain = 11, drift = 100, failed = 101
}

struct CNIPlugin {
    static let supportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

    let env: [String: String]
    let stdin: Data

    // MARK: configuration

    struct Config {
        var raw: [String: Any]
        var cniVersion: String
        var name: String
        var uplink: String
        var db: String
        var ipam: [String: Any]
        var protection: String?
        var maxbw: String?
        var policy: [String: String]
        var prevResult: [String: Any]?
    }

    func config() throws(CNIError) -> Config {
        guard let object = try? JSONSerialization.jsonObject(with: stdin), let raw = object as? [String: Any] else {
            throw CNIError(code: CNIError.decode, msg: "the network config on stdin is not a JSON object")
        }
        let version = raw["cniVersion"] as? String ?? "1.0.0"
        guard Self.supportedVersions.contains(version) else {
            throw CNIError(code: CNIError.incompatibleVersion, msg: "cniVersion \(version) is not supported",
                           details: "supported: \(Self.supportedVersions.joined(separator: ", "))")
        }
        func string(_ key: String, required: Bool = false) throws(CNIError) -> String? {
            guard let v = raw[key] else {
                if required { throw CNIError(code: CNIError.invalidConfig, msg: "network config: '\(key)' is missing") }
                return nil
            }
            if let s = v as? String { return s }
            if let n = v as? NSNumber { return n.stringValue }
            throw CNIError(code: CNIError.invalidConfig, msg: "network config: '\(key)' is not a string")
        }
        guard let ipam = raw["ipam"] as? [String: Any], ipam["type"] is String else {
            throw CNIError(code: CNIError.invalidConfig, msg: "network config: 'ipam' with a 'type' is required (e.g. host-local)")
        }
        var policy: [String: String] = [:]
        if let p = raw["policy"] {
            guard let p = p as? [String: Any] else {
                throw CNIError(code: CNIError.invalidConfig, msg: "network config: 'policy' is not an object PARAM -> VALUES")
            }
            for (k, v) in p { policy[k] = (v as? String) ?? "\(v)" }
        }
        let db = ConfigStore.databasePath(option: try string("db"), environment: env)
        return Config(raw: raw, cniVersion: version, name: try string("name", required: true)!,
                      uplink: try string("uplink", required: true)!, db: db, ipam: ipam,
                      protection: try string("protection"), maxbw: try string("maxbw"), policy: policy,
                      prevResult: raw["prevResult"] as? [String: Any])
    }

    func variable(_ name: String) throws(CNIError) -> String {
        guard let v = env[name], !v.isEmpty else {
            throw CNIError(code: CNIError.invalidEnvironment, msg: "\(name) is not set")
        }
        return v
    }

    // MARK: names

    /// FNV-1a of the container ID and interface name: the same names for ADD, CHECK and DEL.
    static func hash(_ containerID: String, _ ifname: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (containerID + "/" + ifname).utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
    struct Names { var host: String; var vnic: String; var mac: MACAddress }
    static func names(_ containerID: String, _ ifname: String) -> Names {
        let h = hash(containerID, ifname)
        let hex = String(h, radix: 16).leftPadded(to: 16)
        // Locally administered unicast: 02:xx:xx:xx:xx:xx from the hash's low 40 bits.
        return Names(host: "vc" + hex.prefix(11), vnic: "cni-" + hex.prefix(12),
                     mac: MACAddress(rawValue: 0x02_00_0000_0000 | (h & 0xFF_FFFF_FFFF)))
    }

    // MARK: commands

    func run() -> Int32 {
        let command = env["CNI_COMMAND"] ?? ""
        do throws(CNIError) {
            switch command {
            case "VERSION":
                print(json(["cniVersion": "1.0.0", "supportedVersions": Self.supportedVersions]))
            case "ADD":
                print(json(try add()))
            case "DEL":
                try del()
            case "CHECK":
                try check()
            default:
                throw CNIError(code: CNIError.invalidEnvironment,
                               msg: command.isEmpty ? "CNI_COMMAND is not set" : "CNI_COMMAND '\(command)' is not ADD, DEL, CHECK or VERSION")
            }
            return 0
        } catch {
            let version = (try? config().cniVersion) ?? "1.0.0"
            print(json(["cniVersion": version, "code": error.code, "msg": error.msg, "details": error.details]))
            printError("vnic-cni: \(error.msg)\(error.details.isEmpty ? "" : " (\(error.details))")")
            return [CNIError.invalidEnvironment, CNIError.decode, CNIError.invalidConfig].contains(error.code) ? 2 : 1
        }
    }

    func add() throws(CNIError) -> [String: Any] {
        let c = try config()
        let id = try variable("CNI_CONTAINERID"), netns = try variable("CNI_NETNS"), ifname = try variable("CNI_IFNAME")
        guard FileManager.default.fileExists(atPath: netns) else {
            throw CNIError(code: CNIError.unknownContainer, msg: "CNI_NETNS \(netns) does not exist")
        }
        let n = Self.names(id, ifname)
        var undo: [() -> Void] = []
        func rollback() { for u in undo.reversed() { u() } }
        do throws(CNIError) {
            // IPAM first: the address.
            let ipam = try delegate("ADD", c)
            undo.append { _ = try? self.delegate("DEL", c) }
            guard let ips = ipam["ips"] as? [[String: Any]], let first = ips.first,
                  let cidr = first["address"] as? String, let address = IPv4Interface(cidr) else {
                throw CNIError(code: CNIError.failed, msg: "IPAM plugin \(c.ipam["type"]!) gave no IPv4 address", details: json(ipam))
            }
            let gateway = (first["gateway"] as? String).flatMap(IPv4Address.init)
            // The veth pair: our end here, theirs in the container with the VNIC's MAC.
            try ip(["link", "add", n.host, "type", "veth", "peer", "name", ifname, "address", "\(n.mac)", "netns", netns])
            undo.append { _ = try? self.ip(["link", "del", n.host]) }
            try ip(["link", "set", n.host, "up"])
            try ip(["addr", "add", cidr, "dev", ifname], in: netns)
            try ip(["link", "set", ifname, "up"], in: netns)
            var routes = ipam["routes"] as? [[String: Any]] ?? []
            if routes.isEmpty, let gateway { routes = [["dst": "0.0.0.0/0", "gw": "\(gateway)"]] }
            for r in routes {
                guard let dst = r["dst"] as? String else { continue }
                let via = (r["gw"] as? String) ?? gateway.map { "\($0)" }
                try ip(["route", "add", dst == "0.0.0.0/0" ? "default" : dst] + (via.map { ["via", $0] } ?? []) + ["dev", ifname], in: netns)
            }
            // The VNIC.
            var record = VNICRecord(name: n.vnic, link: c.uplink, mac: n.mac)
            do throws(VnicError) {
                try VNICParameter.port.parse(n.host, into: &record)
                try VNICParameter.ip.parse(cidr, into: &record)
                if let gateway { try VNICParameter.gateway.parse("\(gateway)", into: &record) }
                if let p = c.protection { try VNICParameter.protection.parse(p, into: &record) }
                if let m = c.maxbw { try VNICParameter.maxbw.parse(m, into: &record) }
                for (key, values) in c.policy.sorted(by: { $0.key < $1.key }) {
                    guard let p = VNICParameter(rawValue: key) else { throw VnicError("policy: '\(key)' is not a parameter") }
                    record.policy[p] = try p.parsePolicy(values)
                }
                try record.validate()
            } catch {
                throw CNIError(code: CNIError.invalidConfig, msg: "network config: \(error.message)")
            }
            let store = try open(c, create: true)
            do { try store.update { (tx: inout ConfigTransaction) throws(VnicError) in _ = try tx.create(record, reason: "vnic-cni ADD \(id)") } } catch {
                throw CNIError(code: CNIError.io, msg: "create VNIC \(n.vnic) in \(c.db): \(error.message)")
            }
            undo.append { _ = try? store.delete(name: n.vnic) }
            try waitUntilUp(n.vnic, db: c.db)
            return [
                "cniVersion": c.cniVersion,
                "interfaces": [["name": n.host, "mac": "\(macOf(n.host) ?? "")"],
                               ["name": ifname, "mac": "\(n.mac)", "sandbox": netns]],
                "ips": [["address": cidr, "interface": 1] .merging(gateway.map { ["gateway": "\($0)"] } ?? [:]) { a, _ in a }],
                "routes": routes,
                "dns": ipam["dns"] ?? [String: Any](),
            ]
        } catch {
            rollback()
            throw error
        }
    }

    func del() throws(CNIError) {
        let c = try config()
        let id = try variable("CNI_CONTAINERID"), ifname = try variable("CNI_IFNAME")
        let n = Self.names(id, ifname)
        if FileManager.default.fileExists(atPath: c.db) {
            let store = try open(c, create: false)
            if (try? store.vnic(named: n.vnic)) ?? nil != nil {
                do { _ = try store.delete(name: n.vnic) } catch {
                    throw CNIError(code: CNIError.io, msg: "delete VNIC \(n.vnic): \(error.message)")
                }
            }
        }
        if if_nametoindex(n.host) != 0 { try ip(["link", "del", n.host]) }   // the container's end goes with it
        _ = try delegate("DEL", c)
    }

    func check() throws(CNIError) {
        let c = try config()
        let id = try variable("CNI_CONTAINERID"), netns = try variable("CNI_NETNS"), ifname = try variable("CNI_IFNAME")
        guard let prev = c.prevResult, let ips = prev["ips"] as? [[String: Any]], let cidr = ips.first?["address"] as? String else {
            throw CNIError(code: CNIError.invalidConfig, msg: "CHECK needs prevResult with the address ADD gave")
        }
        let n = Self.names(id, ifname)
        let store = try open(c, create: false)
        guard let record = (try? store.vnic(named: n.vnic)) ?? nil else {
            throw CNIError(code: CNIError.drift, msg: "VNIC \(n.vnic) is not in \(c.db)")
        }
        guard record.mac == n.mac, record.port == n.host, record.ips.map(\.description).contains(cidr) else {
            throw CNIError(code: CNIError.drift, msg: "VNIC \(n.vnic) has changed",
                           details: "mac \(record.mac), port \(record.port ?? "-"), ip \(record.ips.map(\.description).joined(separator: ",")); expected \(n.mac), \(n.host), \(cidr)")
        }
        guard if_nametoindex(n.host) != 0 else { throw CNIError(code: CNIError.drift, msg: "the host end \(n.host) is gone") }
        let inside = try ipOutput(["-j", "addr", "show", "dev", ifname], in: netns)
        guard inside.contains("\"\(n.mac)\""), inside.contains("\"\(cidr.split(separator: "/")[0])\"") else {
            throw CNIError(code: CNIError.drift, msg: "\(ifname) in \(netns) does not have \(n.mac) and \(cidr)")
        }
        if let s = RuntimeStatus.readLive(database: c.db), let state = s.vnics[n.vnic]?.state, state != "up" {
            throw CNIError(code: CNIError.drift, msg: "vnicd reports VNIC \(n.vnic) \(state)")
        }
        _ = try delegate("CHECK", c)
    }

    // MARK: helpers

    func open(_ c: Config, create: Bool) throws(CNIError) -> ConfigStore {
        do { return try ConfigStore.open(path: c.db, create: create) } catch {
            throw CNIError(code: CNIError.io, msg: "open \(c.db): \(error.message)")
        }
    }

    /// Waits until vnicd reports the VNIC up (it polls the database every 5 ms).
    func waitUntilUp(_ vnic: String, db: String) throws(CNIError) {
        let deadline = Date().addingTimeInterval(Double(env["VNIC_CNI_TIMEOUT"] ?? "") ?? 10)
        var last = "no vnicd publishes \(db)-status.json"
        while Date() < deadline {
            if let s = RuntimeStatus.readLive(database: db) {
                let state = s.vnics[vnic]?.state
                if state == "up" { return }
                last = state.map { "vnicd reports it \($0)" } ?? "vnicd has not taken it yet"
            }
            usleep(20_000)
        }
        throw CNIError(code: CNIError.tryAgain, msg: "VNIC \(vnic) is not up: \(last)", details: "is vnicd running for this uplink?")
    }

    /// Runs the IPAM plugin `ipam.type` from CNI_PATH with CNI_COMMAND `command`; its result.
    func delegate(_ command: String, _ c: Config) throws(CNIError) -> [String: Any] {
        let type = c.ipam["type"] as! String
        let dirs = (env["CNI_PATH"] ?? "").split(separator: ":").map(String.init)
        guard !type.contains("/"), let plugin = dirs.map({ $0 + "/" + type }).first(where: { access($0, X_OK) == 0 }) else {
            throw CNIError(code: CNIError.invalidEnvironment, msg: "IPAM plugin '\(type)' not found in CNI_PATH (\(env["CNI_PATH"] ?? "unset"))")
        }
        var childEnv = env
        childEnv["CNI_COMMAND"] = command
        let r = runProcess(plugin, [], environment: childEnv, input: stdin)
        if r.status != 0 {
            if let e = (try? JSONSerialization.jsonObject(with: r.stdout)) as? [String: Any], let code = e["code"] as? Int {
                throw CNIError(code: code, msg: "IPAM \(type) \(command): \(e["msg"] as? String ?? "failed")", details: e["details"] as? String ?? "")
            }
            throw CNIError(code: CNIError.failed, msg: "IPAM \(type) \(command) exited \(r.status)", details: r.stderr.oneLine)
        }
        guard command == "ADD" else { return [:] }
        guard let result = (try? JSONSerialization.jsonObject(with: r.stdout)) as? [String: Any] else {
            throw CNIError(code: CNIError.decode, msg: "IPAM \(type) ADD printed no JSON result")
        }
        return result
    }

    /// `ip ARGS` here, or in the network namespace at path `netns`.
    func ip(_ args: [String], in netns: String? = nil) throws(CNIError) { _ = try ipOutput(args, in: netns) }

    func ipOutput(_ args: [String], in netns: String? = nil) throws(CNIError) -> String {
        let argv = netns.map { ["nsenter", "--net=\($0)", "ip"] } ?? ["ip"]
        let r = runProcess("/usr/bin/env", argv + args, environment: nil, input: nil)
        guard r.status == 0 else {
            throw CNIError(code: CNIError.failed, msg: "\((argv + args).joined(separator: " ")): \(r.stderr.oneLine)")
        }
        return String(decoding: r.stdout, as: UTF8.self)
    }

    /// A link's MAC in this namespace (`ip -j`: /sys may show another namespace's links).
    func macOf(_ ifname: String) -> String? {
        guard let out = try? ipOutput(["-j", "link", "show", "dev", ifname]),
              let links = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]] else { return nil }
        return links.first?["address"] as? String
    }
}

struct ProcessResult { var status: Int32; var stdout: Data; var stderr: String }

func runProcess(_ path: String, _ args: [String], environment: [String: String]?, input: Data?) -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out; p.standardError = err; p.standardInput = inp
    do { try p.run() } catch { return ProcessResult(status: 127, stdout: Data(), stderr: "\(path): \(error)") }
    if let input { inp.fileHandleForWriting.write(input) }
    try? inp.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: o, stderr: String(decoding: e, as: UTF8.self))
}

func json(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
