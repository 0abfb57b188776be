/* The plain C AF_XDP forwarding step: receive ring -> transmit ring, no checks.
 * The floor of userspace cost the Swift pipeline is measured against. Rings are
 * libxdp's struct xsk_ring_cons/xsk_ring_prod, passed untyped so this header
 * does not bring a second copy of <xdp/xsk.h> into Swift. */
#ifndef VNIC_PLAIN_FORWARD_H
#define VNIC_PLAIN_FORWARD_H
#include <stdint.h>

/* One loop: reap completions into the pool, refill the fill ring from the pool,
 * move up to 64 received descriptors to the transmit ring. Returns frames moved. */
uint32_t vnic_plain_forward(void *rx, void *tx, void *fill, void *comp, uint64_t *pool, uint32_t *pool_count);

#endif
