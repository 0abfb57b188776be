/* XDP programs of the benchmark's baselines (bench/suite.sh), loaded by xsk_fwd:
 *   xdp_xsk     every frame into the AF_XDP socket of its receive queue (the
 *               plain C forwarder's steering: no classification, no checks)
 *   xdp_devmap  every frame to the device in devmap slot 0 (the kernel XDP
 *               redirect ceiling: no userspace at all)
 *   xdp_pass    XDP_PASS; attached on the far end of a veth so that the veth
 *               accepts XDP_REDIRECTed frames in native mode
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} devs SEC(".maps");

SEC("xdp")
int xdp_xsk(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xdp_devmap(struct xdp_md *ctx)
{
	return bpf_redirect_map(&devs, 0, XDP_PASS);
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
