// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// linewatch --mirror's tc program (cls_bpf, direct-action), one filter on each direction of
// the mirrored interface. Per packet:
//   1. a flow hash that is the same for both directions of a flow (below);
//   2. skb->queue_mapping = hash % queues + 1: the kernel reads a written value as "rx queue
//      + 1" (skb_tx_hash in net/core/dev.c), so the clone goes out of the mirror veth on tx
//      queue hash % queues, and veth_xmit hands it to the same rx queue of the capture end,
//      whose AF_XDP socket (one per queue, one worker each) sees both directions of the flow;
//   3. bpf_clone_redirect to the mirror veth's egress: the clone has no socket (__skb_clone
//      clears skb->sk), so no socket's cached tx queue overrides the mapping, and linewatch
//      keeps XPS off on the mirror veth;
//   4. the original's queue_mapping is restored (on egress the real device picks its tx queue
//      after this hook) and the packet goes on untouched: TC_ACT_OK, whatever happened.
//
// The hash: TCP over IPv4 or IPv6 (after Ethernet and up to two VLAN tags, the IPv6 hop-by-hop,
// routing and destination option headers, as linewatch.bpf.c reads them) hashes the address
// pair and the port pair, each pair put in a fixed order first (the lower address, with its
// port, first), so that both directions give the same value. An IP fragment (IPv4 MF or
// offset, an IPv6 fragment header), and anything not TCP, hashes the address pair alone:
// later fragments carry no ports, and every fragment of a datagram must meet. Trade-off,
// chosen: a TCP segment that was itself IP-fragmented lands on its address pair's queue, which
// may not be its connection's (TCP sends with DF set and an MSS that fits, so this is rare);
// hashing the address pair alone for everything would keep even those together, but would put
// every connection between two hosts (a load balancer and its backend, a benchmark client and
// its server) on one worker. Non-IP frames go to queue 0.
//
// Configured at load: linewatch writes `struct steer_config` into the object's .rodata before
// handing it to tc (the bytes after STEER_MAGIC: u32 ifindex of the mirror veth, u32 queues,
// native byte order); the program only reads it.
//
// Self-contained on purpose, like linewatch.bpf.c: no kernel or libbpf headers.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define ALWAYS_INLINE inline __attribute__((always_inline))

// From <linux/bpf.h> and <linux/pkt_cls.h>; the values are kernel ABI.
#define TC_ACT_OK 0

// The first fields of struct __sk_buff (kernel ABI); the program reads nothing after them.
struct __sk_buff {
    __u32 len;
    __u32 pkt_type;
    __u32 mark;
    __u32 queue_mapping;
};

static long (*bpf_clone_redirect)(struct __sk_buff *skb, __u32 ifindex, __u64 flags) = (void *)13;
static long (*bpf_skb_load_bytes)(const struct __sk_buff *skb, __u32 off, void *to, __u32 len) =
    (void *)26;

// Marks the configuration in the object file, so that the loader finds it (exactly once).
#define STEER_MAGIC 0x72656574536d774cULL // "LwmSteer" in little-endian bytes

static const volatile struct steer_config {
    __u64 magic;
    __u32 ifindex;
    __u32 queues;
} steer_config = {STEER_MAGIC, 0, 1};
_Static_assert(sizeof(struct steer_config) == 16, "steer_config layout is ABI with the loader");

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define IPV4_MF_OR_OFFSET 0x3FFF
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 4

static ALWAYS_INLINE __u16 be16(const __u8 *p) { return (__u16)((p[0] << 8) | p[1]); }
static ALWAYS_INLINE __u32 be32(const __u8 *p) {
    return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
}

// murmur3's finalizer: every input bit reaches every output bit.
static ALWAYS_INLINE __u32 fmix(__u32 h) {
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

// The symmetric hash of addresses a and b (each folded to 32 bits) with ports pa and pb (0 and
// 0 when there are none): the pair is ordered first, so (a, b, pa, pb) and (b, a, pb, pa) agree.
static ALWAYS_INLINE __u32 flow_hash(__u32 a, __u32 b, __u16 pa, __u16 pb) {
    if (a > b || (a == b && pa > pb)) {
        __u32 t = a;
        a = b;
        b = t;
        __u16 tp = pa;
        pa = pb;
        pb = tp;
    }
    __u32 ports = ((__u32)pa << 16) | pb;
    return fmix(a ^ fmix(b ^ fmix(ports ^ 0x9e3779b9)));
}

// The flow hash of the packet, 0 for what is not IP (or cannot be read).
static ALWAYS_INLINE __u32 packet_hash(struct __sk_buff *skb) {
    __u8 b[40];
    __u32 off = ETH_HLEN;
    if (bpf_skb_load_bytes(skb, 12, b, 2) < 0)
        return 0;
    __u16 proto = be16(b);
#pragma unroll
    for (int i = 0; i < MAX_VLAN_TAGS; i++) {
        if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
            break;
        if (bpf_skb_load_bytes(skb, off + 2, b, 2) < 0)
            return 0;
        proto = be16(b);
        off += 4;
    }
    __u32 a, c;
    __u8 next;
    int fragment;
    if (proto == ETH_P_IP) {
        if (bpf_skb_load_bytes(skb, off, b, 20) < 0 || (b[0] >> 4) != 4)
            return 0;
        a = be32(b + 12);
        c = be32(b + 16);
        next = b[9];
        fragment = (be16(b + 6) & IPV4_MF_OR_OFFSET) != 0;
        off += (__u32)(b[0] & 0x0F) * 4;
    } else if (proto == ETH_P_IPV6) {
        if (bpf_skb_load_bytes(skb, off, b, 40) < 0 || (b[0] >> 4) != 6)
            return 0;
        a = be32(b + 8) ^ be32(b + 12) ^ be32(b + 16) ^ be32(b + 20);
        c = be32(b + 24) ^ be32(b + 28) ^ be32(b + 32) ^ be32(b + 36);
        next = b[6];
        fragment = 0;
        off += 40;
#pragma unroll
        for (int i = 0; i < MAX_IPV6_EXT; i++) {
            if (next == IPPROTO_FRAGMENT) {
                fragment = 1;
                break;
            }
            if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
                break;
            if (bpf_skb_load_bytes(skb, off, b, 2) < 0)
                return flow_hash(a, c, 0, 0);
            next = b[0];
            off += ((__u32)b[1] + 1) * 8;
        }
    } else {
        return 0;
    }
    if (fragment || next != IPPROTO_TCP || off > 0xFFFF)
        return flow_hash(a, c, 0, 0);
    if (bpf_skb_load_bytes(skb, off, b, 4) < 0)
        return flow_hash(a, c, 0, 0);
    return flow_hash(a, c, be16(b), be16(b + 2));
}

// The value for skb->queue_mapping, held in a register whose 64 bits are all clear above bit
// 15. The kernel rewrites a store to skb->queue_mapping as "skip unless the *64-bit* source
// register is below NO_QUEUE_MAPPING (0xffff), then store 16 bits" (bpf_convert_ctx_access in
// net/core/filter.c), while clang, computing a u32 with 64-bit instructions, may leave bits
// above 31 set: the store is then silently skipped and the clone goes out on a queue of the
// kernel's choosing (measured: half the connections split with 2 queues). The AND, in inline
// assembly so that clang cannot drop it as redundant for a u32, clears them in the register.
static ALWAYS_INLINE __u32 queue_mapping_value(__u32 q) {
    asm volatile("%0 &= 0xffff" : "+r"(q));
    return q;
}

SEC("tc")
int linewatch_steer(struct __sk_buff *skb) {
    __u32 queues = steer_config.queues;
    __u32 ifindex = steer_config.ifindex;
    if (queues == 0 || ifindex == 0)
        return TC_ACT_OK;
    __u32 saved = skb->queue_mapping;
    skb->queue_mapping = queue_mapping_value(packet_hash(skb) % queues + 1);
    bpf_clone_redirect(skb, ifindex, 0);
    skb->queue_mapping = queue_mapping_value(saved);
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
