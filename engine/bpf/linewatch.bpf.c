// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// linewatch's XDP programs: one object, three programs, each attached on its own.
//
// linewatch_xdp (capture), per frame, in this order:
//   1. count the frame (SEEN) and read config_map;
//   2. decode it down to the TCP header (below);
//   3. only when options.block is set: a pure SYN (SYN set, ACK clear) whose source address is
//      in block_v4 / block_v6 is dropped (XDP_DROP), counted in BLOCKED and in the entry's
//      value. Nothing else is ever dropped for being blocked: the source's established
//      connections, RSTs, ACKs, UDP and ICMP go on as before;
//   4. a TCP segment to or from a monitored port goes to the AF_XDP socket of the frame's rx
//      queue (both directions, so responses are seen as well as requests); so does a pure
//      SYN to any port when options.all_syns is set (linewatch's mirror veth, so the workers see
//      every new connection for port-scan detection);
//   5. everything else, and a wanted segment on a queue without a socket, goes on to the
//      kernel (XDP_PASS), or is dropped when config.drop_others is set (the mirror veth, where
//      every frame is a copy).
// linewatch_block (blocking alone, on the real NIC while capture runs on the mirror
//   veth): counts SEEN, runs step 3 whatever the options, passes everything else. It never
//   redirects and never drops anything but a blocked source's pure SYNs.
// linewatch_drop (the bench rig's XDP_DROP ceiling): counts SEEN and drops the frame.
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
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_XSKMAP 17
#define XDP_DROP 1
#define XDP_PASS 2
#define BPF_F_NO_PREALLOC 1

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

// Which TCP ports are monitored. The layout is explicit (two u32 flags, then the port bits:
// 8 + 8192 bytes, no padding) because linewatch writes it as bytes (XdpProgram::load).
// - any: redirect every TCP segment.
// - drop_others: drop what is not redirected instead of passing it: set on linewatch's own
//   mirror veth, where every frame is a copy and the kernel has nothing to do with it.
struct config {
    __u32 any;
    __u32 drop_others;
    __u8 ports[65536 / 8];
};
_Static_assert(sizeof(struct config) == 8 + 65536 / 8, "config layout is ABI with the loader");

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
    BLOCKED = 4,    // pure SYNs dropped because their source is in the blocklist
    COUNTERS = 5,
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, COUNTERS);
    __type(key, __u32);
    __type(value, __u64);
} counters_map SEC(".maps");

// The blocklist: source addresses whose new connections (pure SYNs) are dropped. Keys are the
// address bytes as on the wire (an IPv4 key is the u32 in network byte order); the value counts
// the SYNs dropped from that source. Written by linewatch (Blocklist), read here. Not
// preallocated: an instance that never blocks costs no memory for them.
struct v6_addr {
    __u8 bytes[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, __u64);
} block_v4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct v6_addr);
    __type(value, __u64);
} block_v6 SEC(".maps");

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
#define TCP_SYN 0x02
#define TCP_ACK 0x10

static ALWAYS_INLINE __u16 load_be16(const __u8 *p) { return (__u16)((p[0] << 8) | p[1]); }

// Skips the Ethernet header and up to two VLAN tags, as tcp_offset does: returns the offset of
// the network header and sets `proto` to its EtherType, or returns -1 when the frame is cut
// short. (tcp_offset keeps its own copy of these lines: built on this helper, clang laid out
// its EtherType comparisons differently, and that path is the one every frame takes.)
static ALWAYS_INLINE int l3_offset(const __u8 *data, const __u8 *end, __u16 *proto) {
    __u32 off = 14;
    if (data + off > end)
        return -1;
    __u16 type = load_be16(data + 12);
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (type != ETH_P_8021Q && type != ETH_P_8021AD)
            break;
        if (data + off + 4 > end)
            return -1;
        type = load_be16(data + off + 2);
        off += 4;
    }
    *proto = type;
    return (int)off;
}

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

// A pure SYN: SYN set, ACK clear (a new connection; not a SYN-ACK). `tcp` + 4 is readable.
static ALWAYS_INLINE int pure_syn(const __u8 *tcp, const __u8 *end) {
    return tcp + 14 <= end && (tcp[13] & (TCP_SYN | TCP_ACK)) == TCP_SYN;
}

// The blocklist check: a pure SYN whose source address is in block_v4 / block_v6 is counted
// (the entry's value and BLOCKED) and 1 is returned: the caller drops it. Anything else returns
// 0 and is untouched. It decodes the frame itself, from `ctx` alone: it runs before anything
// else in the capture program and on its own in linewatch_block.
static ALWAYS_INLINE int blocked_syn(struct xdp_md *ctx) {
    const __u8 *data = (const __u8 *)(long)ctx->data;
    const __u8 *end = (const __u8 *)(long)ctx->data_end;
    int off = tcp_offset(data, end);
    if (off < 0 || off > 1600)
        return 0;
    if (data + off + 4 > end || !pure_syn(data + off, end))
        return 0;
    __u16 proto = 0;
    int l3 = l3_offset(data, end, &proto);
    if (l3 < 0 || l3 > 64)
        return 0;
    const __u8 *ip = data + l3;
    __u64 *hits;
    if (proto == ETH_P_IPV6) {
        if (ip + 40 > end)
            return 0;
        hits = bpf_map_lookup_elem(&block_v6, ip + 8);
    } else {
        if (ip + 20 > end)
            return 0;
        hits = bpf_map_lookup_elem(&block_v4, ip + 12);
    }
    if (!hits)
        return 0;
    __sync_fetch_and_add(hits, 1);
    count(BLOCKED);
    return 1;
}

// The capture program's two optional steps, fixed when the program is loaded. They live in
// .rodata, which linewatch fills before loading (XdpProgram::load writes the 8 bytes: u32 block,
// u32 all_syns) and libbpf then freezes: the verifier reads a frozen map's values as constants,
// so a step whose flag is 0 is removed from the program altogether and costs the common path
// nothing. (As two more fields of config_map they were a load and a branch on every frame,
// measured at +0.5 to +1 ns of a 14 ns run on a 150-byte frame.)
// - block: run the blocklist check (step 3 above); when 0 no lookup happens.
// - all_syns: also redirect a pure SYN to any port (the mirror veth: port-scan detection).
static const volatile struct options {
    __u32 block;
    __u32 all_syns;
} options = {0, 0};
_Static_assert(sizeof(struct options) == 8, "options layout is ABI with the loader");

static ALWAYS_INLINE int monitored(const struct config *cfg, __u16 port) {
    return (cfg->ports[(port >> 3) & 0x1FFF] >> (port & 7)) & 1;
}

SEC("xdp")
int linewatch_xdp(struct xdp_md *ctx) {
    __u32 zero = 0;

    count(SEEN);
    struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
    if (!cfg) {
        count(OTHER);
        return XDP_PASS;
    }
    if (options.block && blocked_syn(ctx))
        return XDP_DROP;
    const __u8 *data = (const __u8 *)(long)ctx->data;
    const __u8 *end = (const __u8 *)(long)ctx->data_end;
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
    if (!cfg->any && !monitored(cfg, load_be16(tcp)) && !monitored(cfg, load_be16(tcp + 2)) &&
        !(options.all_syns && pure_syn(tcp, end))) {
        count(OTHER);
        return other;
    }
    // The low bits of the flags are the action when the queue has no socket.
    long action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, other);
    count(action == other ? NO_SOCKET : REDIRECTED);
    return (int)action;
}

// Blocking alone, on a NIC that linewatch does not capture on (--mirror with
// --block-scanners): drops a blocked source's pure SYNs, passes everything else. Never
// redirects; config_map is not read.
SEC("xdp")
int linewatch_block(struct xdp_md *ctx) {
    count(SEEN);
    if (blocked_syn(ctx))
        return XDP_DROP;
    return XDP_PASS;
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
