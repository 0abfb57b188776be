// VNICSpec: a VNIC as the dataplane takes it from the control plane.

/// What the dataplane needs of a VNIC to give it sockets and a place in the
/// forwarding map. Its policy (protection, sources, maxbw, dhcp, ipv6-ra, MTU)
/// is not here: the workers read it from the VNIC's record in the database,
/// once per loop, so a change applies at the next loop with no new table.
public struct VNICSpec: Equatable, Sendable {
    public var name: String
    public var index: UInt32
    public var mac: MACAddress
    public var port: String?
    /// The order in which the workers serve VNICs (high first).
    public var priority: Priority = .default
    public init(name: String, index: UInt32, mac: MACAddress, port: String?) {
        self.name = name; self.index = index; self.mac = mac; self.port = port
    }
}
