// FuzzEntry: the frame checks a worker runs on every frame a VM sends, exposed
// in one public place for the fuzzers (Sources/vnic-fuzz-frames) and nothing
// else: `classify` is the worker's own function (Classify), so a fuzzer runs
// the same calls in the same order with the same preconditions as the worker.
import VnicCore
import VnicDataplane

public enum FrameChecks {
    /// What the worker does with `len` bytes at `f` from a VNIC with policy `p`.
    public static func classify(_ f: UnsafeRawPointer, len: Int, _ p: SpoofPolicy) -> FrameAction {
        Classify.classify(f, len: len, p)
    }

    /// A MAC as `SpoofPolicy.mac` takes it (`MACKey`, internal to the hot path).
    public static func macKey(_ mac: MACAddress) -> UInt64 { MACKey.from(mac) }
}
