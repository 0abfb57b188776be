/* A plain C AF_XDP forwarder's inner loop (see the header). */
#include <xdp/xsk.h>
#include "vnic_plain_forward.h"

#define BURST 64

uint32_t vnic_plain_forward(void *rxp, void *txp, void *fillp, void *compp, uint64_t *pool, uint32_t *pool_count)
{
	struct xsk_ring_cons *rx = rxp, *comp = compp;
	struct xsk_ring_prod *tx = txp, *fill = fillp;
	uint32_t idx, n, i, count = *pool_count;

	n = xsk_ring_cons__peek(comp, 1024, &idx);
	for (i = 0; i < n; i++)
		pool[count++] = *xsk_ring_cons__comp_addr(comp, idx + i);
	if (n)
		xsk_ring_cons__release(comp, n);

	n = xsk_prod_nb_free(fill, count);
	if (n > count)
		n = count;
	if (n >= BURST && xsk_ring_prod__reserve(fill, n, &idx) == n) {
		for (i = 0; i < n; i++)
			*xsk_ring_prod__fill_addr(fill, idx + i) = pool[--count];
		xsk_ring_prod__submit(fill, n);
	}

	uint32_t tidx;
	n = xsk_ring_cons__peek(rx, BURST, &idx);
	if (n && xsk_ring_prod__reserve(tx, n, &tidx) == n) {
		for (i = 0; i < n; i++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(rx, idx + i);
			struct xdp_desc *t = xsk_ring_prod__tx_desc(tx, tidx + i);
			t->addr = d->addr;
			t->len = d->len;
			t->options = 0;
		}
		xsk_ring_prod__submit(tx, n);
		xsk_ring_cons__release(rx, n);
	} else if (n) {
		xsk_ring_cons__cancel(rx, n);
		n = 0;
	}
	*pool_count = count;
	return n;
}
