// PortMonitor: what the kernel says of vnicd's ports, through rtnetlink
// (libnl-route-3). One socket listens to link notifications (a tap that QEMU or
// libvirt creates at each guest start, removed when the guest stops; a carrier
// that comes and goes with the guest), another dumps every link of vnicd's
// network namespace at once: name, ifindex, carrier, kind, allocated queues and
// the device's own transmit drops. The control thread uses it; the workers never.
import CLibNL
import Glibc
import VnicCore

/// One link as the last dump saw it.
public struct PortFacts: Equatable, Sendable {
    public var ifindex: UInt32
    /// IFF_LOWER_UP: a tap has a guest attached, a veth's peer is up.
    public var carrier: Bool
    /// IFF_UP: administratively up.
    public var up: Bool = true
    /// rtnetlink's kind ("tun" for a tap, "veth", ...), "" when none.
    public var kind: String
    /// Queues the device was made with (a multi-queue tap: up to 256; how many
    /// a guest attached: `PortMonitor.receiveQueues`).
    public var allocatedRXQueues: UInt32
    /// Frames the device itself dropped on transmit (towards the guest): no
    /// guest attached, a detached queue, a guest that does not read.
    public var txDropped: UInt64
}

public final class PortMonitor {
    private let events: OpaquePointer
    private let query: OpaquePointer
    /// The netdev generic netlink family (Linux 6.8+ lists a device's queues), or nil.
    private let genl: OpaquePointer?
    private var netdevFamily: Int32 = -1
    /// Readable when link notifications wait (poll it, then `drain`).
    public let fd: Int32

    public init() throws(VnicError) {
        guard let e = nl_socket_alloc(), let q = nl_socket_alloc() else { throw VnicError("rtnetlink: out of memory") }
        events = e; query = q
        var rc = nl_connect(e, NETLINK_ROUTE)
        if rc == 0 { rc = nl_connect(q, NETLINK_ROUTE) }
        if rc == 0 {
            nl_socket_disable_seq_check(e)
            rc = nl_socket_add_membership(e, Int32(RTNLGRP_LINK.rawValue))
        }
        if rc == 0 { rc = nl_socket_set_nonblocking(e) }
        guard rc == 0 else {
            let message = String(cString: nl_geterror(rc))
            nl_socket_free(e); nl_socket_free(q)
            throw VnicError("rtnetlink: \(message)")
        }
        fd = nl_socket_get_fd(e)
        if let g = nl_socket_alloc(), genl_connect(g) == 0 {
            netdevFamily = genl_ctrl_resolve(g, "netdev")
            genl = g
        } else {
            genl = nil
        }
    }

    deinit {
        nl_socket_free(events)
        nl_socket_free(query)
        if let genl { nl_socket_free(genl) }
    }

    /// Receive queues each device has now (its real count: a tap's are the ones
    /// its guest attached, which changes as QEMU attaches and detaches them), by
    /// ifindex, from one dump of the netdev family's queues; nil where the kernel
    /// cannot say (before 6.8). Devices that are down list none.
    public func receiveQueues() -> [UInt32: Int]? {
        guard let genl, netdevFamily > 0, let msg = nlmsg_alloc() else { return nil }
        defer { nlmsg_free(msg) }
        // NETDEV_CMD_QUEUE_GET = 10, dumped (linux/netdev.h, 6.8+).
        guard genlmsg_put(msg, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), netdevFamily, 0, NLM_F_DUMP, 10, 1) != nil,
              nl_send_auto(genl, msg) >= 0 else { return nil }
        final class Box { var counts: [UInt32: Int] = [:] }
        let box = Box()
        let callback: nl_recvmsg_msg_cb_t = { msg, arg in
            // NETDEV_A_QUEUE_ID = 1, _IFINDEX = 2, _TYPE = 3 (0: rx)
            var attrs = [UnsafeMutablePointer<nlattr>?](repeating: nil, count: 5)
            guard let msg, genlmsg_parse(nlmsg_hdr(msg), 0, &attrs, 4, nil) == 0,
                  let ifindex = attrs[2], let type = attrs[3], let id = attrs[1] else { return Int32(NL_OK.rawValue) }
            guard nla_get_u32(type) == 0 else { return Int32(NL_OK.rawValue) }
            let b = Unmanaged<Box>.fromOpaque(arg!).takeUnretainedValue()
            let i = nla_get_u32(ifindex)
            b.counts[i] = max(b.counts[i] ?? 0, Int(nla_get_u32(id)) + 1)
            return Int32(NL_OK.rawValue)
        }
        let ctx = Unmanaged.passUnretained(box).toOpaque()
        guard nl_socket_modify_cb(genl, NL_CB_VALID, NL_CB_CUSTOM, callback, ctx) == 0 else { return nil }
        let rc = withExtendedLifetime(box) { nl_recvmsgs_default(genl) }
        return rc >= 0 ? box.counts : nil
    }

    /// Reads every pending notification; true when there was one.
    public func drain() -> Bool {
        var any = false
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if n <= 0 { break }
            any = true
        }
        return any
    }

    /// Sets link `name` administratively up (IFF_UP), as libvirt and QEMU's
    /// ifup script do for a tap they make: QEMU with `script=no` leaves it down.
    public func setUp(_ name: String) throws(VnicError) {
        var orig: OpaquePointer?
        var rc = rtnl_link_get_kernel(query, 0, name, &orig)
        guard rc == 0, let orig else { throw VnicError("rtnetlink: read link \(name): \(String(cString: nl_geterror(rc)))") }
        defer { rtnl_link_put(orig) }
        guard let change = rtnl_link_alloc() else { throw VnicError("rtnetlink: out of memory") }
        defer { rtnl_link_put(change) }
        rtnl_link_set_flags(change, UInt32(IFF_UP))
        rc = rtnl_link_change(query, orig, change, 0)
        guard rc == 0 else { throw VnicError("rtnetlink: set \(name) up: \(String(cString: nl_geterror(rc)))") }
    }

    /// Every link of the namespace, by name (one dump).
    public func links() throws(VnicError) -> [String: PortFacts] {
        var cache: OpaquePointer?
        let rc = rtnl_link_alloc_cache(query, AF_UNSPEC, &cache)
        guard rc == 0, let cache else { throw VnicError("rtnetlink link dump: \(String(cString: nl_geterror(rc)))") }
        defer { nl_cache_free(cache) }
        var out: [String: PortFacts] = [:]
        var object = nl_cache_get_first(cache)
        while let o = object {
            let link = o   // a struct rtnl_link, as every object of a link cache
            if let name = rtnl_link_get_name(link) {
                let kind = rtnl_link_get_type(link).map { String(cString: $0) } ?? ""
                out[String(cString: name)] = PortFacts(
                    ifindex: UInt32(bitPattern: rtnl_link_get_ifindex(link)),
                    carrier: rtnl_link_get_flags(link) & 0x10000 /* IFF_LOWER_UP (linux/if.h) */ != 0,
                    up: rtnl_link_get_flags(link) & UInt32(IFF_UP) != 0,
                    kind: kind, allocatedRXQueues: rtnl_link_get_num_rx_queues(link),
                    txDropped: rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED))
            }
            object = nl_cache_get_next(o)
        }
        return out
    }
}
