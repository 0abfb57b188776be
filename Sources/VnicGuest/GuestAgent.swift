// GuestAgent: the two modes of vnic-guest. `request` asks the appliance for a
// change and applies the accepted value; `listen` applies the appliance's
// notifications and acknowledges them. Frame matching is pure and tested.
import Glibc
import VnicCore

public enum FrameMatch {
    /// The reply to our request `id` sent from `port`: an IPv4/UDP frame from the
    /// service address and port to `port` carrying .accepted or .denied with the
    /// same id. Our own outgoing frames and anything else give nil.
    public static func reply(_ frame: [UInt8], outgoing: Bool, id: UInt32, port: UInt16) -> GuestMessage? {
        guard !outgoing, let u = FrameBuilder.udpPayload(frame),
              u.srcIP == GuestProtocol.serviceAddress, u.srcPort == GuestProtocol.servicePort, u.dstPort == port,
              case .success(let m) = GuestMessage.decode(u.payload),
              m.id == id, m.kind == .accepted || m.kind == .denied else { return nil }
        return m
    }

    /// The key that answers our hello `id`: an IPv4/UDP frame from the service
    /// address and port to the guest port carrying .key with the same id.
    public static func key(_ frame: [UInt8], outgoing: Bool, id: UInt32) -> [UInt8]? {
        guard !outgoing, let u = FrameBuilder.udpPayload(frame),
              u.srcIP == GuestProtocol.serviceAddress, u.srcPort == GuestProtocol.servicePort,
              u.dstPort == GuestProtocol.guestPort,
              case .success(let m) = GuestMessage.decode(u.payload), m.id == id else { return nil }
        return m.key
    }

    /// A notification: an IPv4/UDP frame from the service address and port to the
    /// guest port carrying .notify (signed or not: the caller checks it); with the
    /// frame's source MAC (where the ack goes).
    public static func notification(_ frame: [UInt8], outgoing: Bool) -> (message: GuestMessage, from: MACAddress)? {
        guard !outgoing, let u = FrameBuilder.udpPayload(frame),
              u.srcIP == GuestProtocol.serviceAddress, u.srcPort == GuestProtocol.servicePort,
              u.dstPort == GuestProtocol.guestPort,
              case .success(let m) = GuestMessage.decode(u.payload), m.kind == .notify else { return nil }
        let src = MACAddress(bytes: (frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]))
        return (m, src)
    }
}

public enum GuestAgent {
    static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)

    /// Sends the request until a reply or the timeout; applies an accepted value.
    /// Returns the line to print; exit 3 (a VnicError) for a denial or no answer.
    public static func request(_ assignment: GuestAssignment, interface: String?, timeout: Double) throws(VnicError) -> String {
        let facts = try InterfaceFacts.read(interface)
        let a = assignment.completed(current: facts.addresses, current6: facts.addresses6)
        let socket = try PacketSocket(ifindex: facts.index, ifname: facts.name)
        var id: UInt32 = 0
        while id == 0 { id = UInt32.random(in: 1...UInt32.max) }
        let port = UInt16(49152 + Int.random(in: 0..<16384))
        let frame = FrameBuilder.guestFrame(
            dst: broadcast, src: facts.mac, srcIP: facts.sourceAddress, dstIP: GuestProtocol.serviceAddress,
            srcPort: port, dstPort: GuestProtocol.servicePort,
            message: GuestMessage(kind: .request, id: id, parameter: a.parameter.rawValue, value: a.value))
        let start = monotonicMillis()
        let deadline = start + Int64(timeout * 1000)
        var nextSend = start
        while true {
            let now = monotonicMillis()
            if now >= deadline { break }
            if now >= nextSend {
                try socket.send(frame)
                nextSend = now + 200
            }
            guard let (f, outgoing) = socket.receive(timeoutMs: Int32(min(nextSend, deadline) - now)) else { continue }
            guard let reply = FrameMatch.reply(f, outgoing: outgoing, id: id, port: port) else { continue }
            if reply.kind == .denied { throw VnicError("denied: \(reply.value)", exitCode: 3) }
            let state = try facts.state()
            let steps = try StackApply.steps(a.parameter, reply.value, on: state)
            for w in try StackApply.run(steps) { printError("vnic-guest: warning: \(w)") }
            return "accepted: \(a.parameter.rawValue)=\(reply.value)"
        }
        throw VnicError("no answer from \(GuestProtocol.serviceAddress) within \(formatSeconds(timeout)) s (denied requests are dropped)",
                        exitCode: 3)
    }

    static func formatSeconds(_ s: Double) -> String {
        s == s.rounded() && abs(s) < 1e9 ? String(Int(s)) : String(s)
    }

    /// Applies notifications signed with this VNIC's key (GuestProtocol) and
    /// acknowledges them until the process is killed. `log` gets one line per
    /// applied notification; `warn` the failures and the notifications ignored.
    public static func listen(interface: String?, log: (String) -> Void, warn: (String) -> Void) throws(VnicError) -> Never {
        var facts = try InterfaceFacts.read(interface)
        let socket = try PacketSocket(ifindex: facts.index, ifname: facts.name)
        // Recently applied notifications: id -> (parameter, applied value), to ack
        // a retransmission again without applying it twice.
        var seen: [UInt32: (String, String)] = [:]
        var order: [UInt32] = []
        // The VNIC's notification key, asked for with a hello (again at most once a
        // second while there is none, or after a notification it does not sign).
        var key: [UInt8]? = nil
        var helloID: UInt32 = 0
        var lastHello = Int64.min / 2
        var ignored: Set<UInt32> = []
        func hello() {
            helloID = UInt32.random(in: 1...UInt32.max)
            lastHello = monotonicMillis()
            let frame = FrameBuilder.guestFrame(
                dst: broadcast, src: facts.mac, srcIP: facts.sourceAddress, dstIP: GuestProtocol.serviceAddress,
                srcPort: GuestProtocol.guestPort, dstPort: GuestProtocol.servicePort,
                message: GuestMessage(kind: .hello, id: helloID, parameter: GuestProtocol.keyParameter, value: ""))
            do throws(VnicError) { try socket.send(frame) } catch { warn("hello: \(error.message)") }
        }
        while true {
            if key == nil && monotonicMillis() - lastHello >= 1000 { hello() }
            guard let (f, outgoing) = socket.receive(timeoutMs: 200) else { continue }
            if let k = FrameMatch.key(f, outgoing: outgoing, id: helloID) { key = k; continue }
            guard let (m, from) = FrameMatch.notification(f, outgoing: outgoing) else { continue }
            guard let key, m.isSigned(by: key) else {
                if monotonicMillis() - lastHello >= 1000 { hello() }     // vnicd may have restarted with new keys
                if ignored.insert(m.id).inserted {
                    if ignored.count > 1024 { ignored.removeAll() }
                    warn("notification \(m.id) \(m.parameter)=\(m.value): not signed with this VNIC's key; ignored")
                }
                continue
            }
            var applied = seen[m.id]
            if applied == nil {
                guard let p = GuestParameter(rawValue: m.parameter) else {
                    warn("notification \(m.id): '\(m.parameter)' is not a parameter this agent knows; not acknowledged")
                    continue
                }
                do throws(VnicError) {
                    let steps = try StackApply.steps(p, m.value, on: try facts.state())
                    for w in try StackApply.run(steps) { warn("warning: \(w)") }
                } catch {
                    warn("notification \(m.id) \(m.parameter)=\(m.value): \(error.message); not acknowledged")
                    continue
                }
                log(logLine(p, m.value))
                applied = (m.parameter, m.value)
                seen[m.id] = applied
                order.append(m.id)
                if order.count > 1024 { seen[order.removeFirst()] = nil }
                if let f = try? InterfaceFacts.read(facts.name) { facts = f }
            }
            let ack = FrameBuilder.guestFrame(
                dst: from, src: facts.mac, srcIP: facts.sourceAddress, dstIP: GuestProtocol.serviceAddress,
                srcPort: GuestProtocol.guestPort, dstPort: GuestProtocol.servicePort,
                message: GuestMessage(kind: .ack, id: m.id, parameter: applied!.0, value: applied!.1))
            do throws(VnicError) { try socket.send(ack) } catch { warn("ack \(m.id): \(error.message)") }
        }
    }

    static func logLine(_ p: GuestParameter, _ value: String) -> String {
        switch p {
        case .tcpPorts, .transport: "applied \(p.rawValue)=\(value) (stored by the appliance; nothing to change in the guest)"
        default: "applied \(p.rawValue)=\(value)"
        }
    }
}
