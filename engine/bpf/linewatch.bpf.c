// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// linewatch's XDP program. For every frame on the interface it decides: a TCP segment to or
// from a monitored port goes to the AF_XDP socket of the frame's rx queue (both directions,
// so responses are seen as well as requests); everything else, and a monitored segment on a
// queue without a socket, goes on to the kernel (XDP_PASS).
//
// Decoded: Ethernet, up to two VLAN tags (802.1Q, 802.1ad), IPv4 (options skipped, later
// fragments passed: they carry no TCP header), IPv6 with hop-by-hop, routing and destination
// option headers (a fragment header passes the frame on). Anything it cannot read is passed,
// never dropped: attaching linewatch to a NIC must not cut traffic it does not monitor.
//
// Self-contained on purpose: no kernel or libbpf headers, so `clang -target bpf` needs nothing
// but clang. Maps are BTF-defined (needs `-g`), as libbpf expects.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define ALWAYS_INLINE inline __attribute__((always_inline))

// From <linux/bpf.h>; the values are kernel ABI.
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_XSKMAP 17
#define XDP_DROP 1
#define XDP_PASS 2

struct xdp_md {
    __u32 data;
    __u32 data_end;
    __u32 data_meta;
    __u32 ingress_ifindex;
    __u32 rx_queue_index;
    __u32 egress_ifindex;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

// Sockets by rx queue; libbpf's xsk_socket__create inserts each socket at its queue index.
struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u32);
} xsks_map SEC(".maps");

// Which TCP ports are monitored. `any` redirects every TCP segment. `drop_others` drops what
// is not monitored instead of passing it: set on linewatch's own mirror veth, where every
// frame is a copy and the kernel has nothing to do with it.
struct config {
    __u32 any;
    __u32 drop_others;
    __u8 ports[65536 / 8];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct config);
} config_map SEC(".maps");

// Per-CPU counters, indexed by enum counter; summed by linewatch.
enum counter {
    SEEN = 0,       // frames the program ran on
    REDIRECTED = 1, // monitored TCP, handed to a socket
    OTHER = 2,      // not monitored: to the kernel (dropped on a mirror veth)
    NO_SOCKET = 3,  // monitored, but no socket on this rx queue: as OTHER
    COUNTERS = 4,
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, COUNTERS);
    __type(key, __u32);
    __type(value, __u64);
} counters_map SEC(".maps");

static ALWAYS_INLINE void count(__u32 which) {
    __u64 *v = bpf_map_lookup_elem(&counters_map, &which);
    if (v)
        *v += 1;
}

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_ROUTING 43
#define IPPROTO_DSTOPTS 60

static ALWAYS_INLINE __u16 load_be16(const __u8 *p) { return (__u16)((p[0] << 8) | p[1]); }

// Returns the offset of the TCP header, or -1 when the frame is not a TCP segment we can read.
static ALWAYS_INLINE int tcp_offset(const __u8 *data, const __u8 *end) {
    __u32 off = 14;
    if (data + off > end)
        return -1;
    __u16 proto = load_be16(data + 12);
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
            break;
        if (data + off + 4 > end)
            return -1;
        proto = load_be16(data + off + 2);
        off += 4;
    }
    if (proto == ETH_P_IP) {
        const __u8 *ip = data + off;
        if (ip + 20 > end)
            return -1;
        if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP)
            return -1;
        // A later fragment has no TCP header.
        if ((load_be16(ip + 6) & 0x1FFF) != 0)
            return -1;
        __u32 ihl = (ip[0] & 0x0F) * 4;
        if (ihl < 20)
            return -1;
        return (int)(off + ihl);
    }
    if (proto == ETH_P_IPV6) {
        const __u8 *ip = data + off;
        if (ip + 40 > end)
            return -1;
        __u8 next = ip[6];
        off += 40;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
                break;
            const __u8 *ext = data + off;
            if (ext + 2 > end)
                return -1;
            next = ext[0];
            off += ((__u32)ext[1] + 1) * 8;
            if (off > 1500)
                return -1;
        }
        if (next != IPPROTO_TCP)
            return -1;
        return (int)off;
    }
    return -1;
}

static ALWAYS_INLINE int monitored(const struct config *cfg, __u16 port) {
    return (cfg->ports[(port >> 3) & 0x1FFF] >> (port & 7)) & 1;
}

SEC("xdp")
int linewatch_xdp(struct xdp_md *ctx) {
    const __u8 *data = (const __u8 *)(long)ctx->data;
    const __u8 *end = (const __u8 *)(long)ctx->data_end;
    __u32 zero = 0;

    count(SEEN);
    struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
    if (!cfg) {
        count(OTHER);
        return XDP_PASS;
    }
    int other = cfg->drop_others ? XDP_DROP : XDP_PASS;
    int off = tcp_offset(data, end);
    if (off < 0 || off > 1600) {
        count(OTHER);
        return other;
    }
    const __u8 *tcp = data + off;
    if (tcp + 4 > end) {
        count(OTHER);
        return other;
    }
    if (!cfg->any && !monitored(cfg, load_be16(tcp)) && !monitored(cfg, load_be16(tcp + 2))) {
        count(OTHER);
        return other;
    }
    // The low bits of the flags are the action when the queue has no socket.
    long action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, other);
    count(action == other ? NO_SOCKET : REDIRECTED);
    return (int)action;
}

// The bench rig's ceiling: counts the frame as seen and drops it. The least an XDP program can
// do per frame, so received frames per second here bound every capture path on the interface.
SEC("xdp")
int linewatch_drop(struct xdp_md *ctx) {
    (void)ctx;
    count(SEEN);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
