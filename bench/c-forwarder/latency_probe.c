/*
 * latency_probe: one-way forwarding latency through whatever connects two
 * interfaces (bench/suite.sh: wire0 in P-wire -> vnic0 in P-vm1), at a low rate.
 * One process with an AF_PACKET socket in each namespace (same CLOCK_MONOTONIC):
 * it sends one 64-byte UDP frame carrying a sequence number, waits until that
 * frame arrives on the other side (or 20 ms pass: lost), records the time, and
 * sends the next one after --interval-us.
 *
 *   latency_probe --tx-netns PATH --tx-dev IF --rx-netns PATH --rx-dev IF
 *                 --dst-mac MAC --src-mac MAC --src-ip IP --dst-ip IP
 *                 [--count N] [--interval-us U]
 *
 * Prints one JSON line: {"sent":N,"received":R,"lost":L,"samples_ns":[sorted]}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x76b3c0deu

static void die(const char *what)
{
	fprintf(stderr, "latency_probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static int packet_socket(const char *netns, const char *dev, int *ifindex)
{
	int self = open("/proc/self/ns/net", O_RDONLY), other = open(netns, O_RDONLY);
	if (self < 0 || other < 0)
		die(netns);
	if (setns(other, CLONE_NEWNET))
		die("setns");
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0)
		die("AF_PACKET socket");
	*ifindex = if_nametoindex(dev);
	if (!*ifindex)
		die(dev);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = *ifindex };
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll))
		die("bind");
	if (setns(self, CLONE_NEWNET))
		die("setns back");
	close(self);
	close(other);
	return fd;
}

static void parse_mac(const char *s, uint8_t *m)
{
	if (sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
		fprintf(stderr, "latency_probe: '%s' is not a MAC address\n", s);
		exit(2);
	}
}

static uint16_t csum(const uint8_t *p, int n)
{
	uint32_t s = 0;
	for (int i = 0; i < n; i += 2)
		s += (p[i] << 8) | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *txns = 0, *txdev = 0, *rxns = 0, *rxdev = 0, *dmac = 0, *smac = 0, *sip = 0, *dip = 0;
	int count = 2000, interval = 1000;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "--tx-netns")) txns = v;
		else if (!strcmp(a, "--tx-dev")) txdev = v;
		else if (!strcmp(a, "--rx-netns")) rxns = v;
		else if (!strcmp(a, "--rx-dev")) rxdev = v;
		else if (!strcmp(a, "--dst-mac")) dmac = v;
		else if (!strcmp(a, "--src-mac")) smac = v;
		else if (!strcmp(a, "--src-ip")) sip = v;
		else if (!strcmp(a, "--dst-ip")) dip = v;
		else if (!strcmp(a, "--count")) count = atoi(v);
		else if (!strcmp(a, "--interval-us")) interval = atoi(v);
		else { fprintf(stderr, "latency_probe: unknown argument '%s'\n", a); return 2; }
	}
	if (!txns || !txdev || !rxns || !rxdev || !dmac || !smac || !sip || !dip || count < 1) {
		fprintf(stderr, "usage: latency_probe --tx-netns PATH --tx-dev IF --rx-netns PATH --rx-dev IF "
				"--dst-mac MAC --src-mac MAC --src-ip IP --dst-ip IP [--count N] [--interval-us U]\n");
		return 2;
	}
	int txif, rxif;
	int tx = packet_socket(txns, txdev, &txif), rx = packet_socket(rxns, rxdev, &rxif);

	/* 60 bytes (64 with the FCS): Ethernet, IPv4, UDP to port 9, magic and sequence. */
	uint8_t f[60] = { 0 };
	parse_mac(dmac, f);
	parse_mac(smac, f + 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14;
	ip[0] = 0x45; ip[3] = 46; ip[6] = 0x40; ip[8] = 64; ip[9] = 17;
	if (inet_pton(AF_INET, sip, ip + 12) != 1 || inet_pton(AF_INET, dip, ip + 16) != 1) {
		fprintf(stderr, "latency_probe: bad IPv4 address\n");
		return 2;
	}
	uint16_t c = csum(ip, 20);
	ip[10] = c >> 8; ip[11] = c & 0xff;
	uint8_t *udp = ip + 20;
	udp[0] = 0x04; udp[1] = 0x01; udp[3] = 9; udp[5] = 26;
	uint8_t *pl = udp + 8;
	uint32_t magic = htonl(MAGIC);
	memcpy(pl, &magic, 4);

	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = txif, .sll_halen = 6 };
	memcpy(to.sll_addr, f, 6);
	uint64_t *samples = calloc(count, sizeof *samples);
	int got = 0;
	uint8_t buf[2048];
	for (int i = 0; i < count; i++) {
		uint32_t seq = htonl(i + 1);
		memcpy(pl + 4, &seq, 4);
		uint64_t t0 = now_ns();
		if (sendto(tx, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to) < 0)
			die("sendto");
		uint64_t deadline = t0 + 20000000;
		for (;;) {
			uint64_t t = now_ns();
			if (t >= deadline)
				break;
			struct pollfd p = { .fd = rx, .events = POLLIN };
			if (poll(&p, 1, (int)((deadline - t) / 1000000) + 1) <= 0)
				continue;
			struct sockaddr_ll from;
			socklen_t fl = sizeof from;
			ssize_t n = recvfrom(rx, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
			uint64_t at = now_ns();
			if (n < 50 || from.sll_pkttype == PACKET_OUTGOING)
				continue;
			if (!memcmp(buf + 42, &magic, 4) && !memcmp(buf + 46, &seq, 4)) {
				samples[got++] = at - t0;
				break;
			}
		}
		uint64_t next = t0 + (uint64_t)interval * 1000, t = now_ns();
		if (next > t)
			usleep((next - t) / 1000);
	}
	qsort(samples, got, sizeof *samples, cmp);
	printf("{\"sent\":%d,\"received\":%d,\"lost\":%d,\"samples_ns\":[", count, got, count - got);
	for (int i = 0; i < got; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)samples[i]);
	printf("]}\n");
	return 0;
}
