// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// linewatch --mirror's tc program (cls_bpf, direct-action), one filter on each direction of
// the mirrored interface. Per packet:
//   1. a hash that is the same for both directions of a flow (below);
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
// The hash: the packet's address pair, IPv4 or IPv6 (after Ethernet and up to two VLAN tags,
// as linewatch.bpf.c reads them), put in a fixed order first (the lower address first) so that
// both directions give the same value. Ports are left out on purpose: a later IP fragment
// carries none, and a TCP segment that was fragmented must reach the worker that holds its
// connection, in whatever order its fragments come (the evasion lab sends the last first). A
// stateless hash can only do that on the addresses. The price: every connection between the
// same two addresses goes to one worker, so the mirror spreads a server's clients over the
// queues, but not the connections of one busy client (a load balancer in front of a backend).
// Non-IP frames go to queue 0.
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
#define MAX_VLAN_TAGS 2

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

// The symmetric hash of addresses a and b (each folded to 32 bits): (a, b) and (b, a) agree.
static ALWAYS_INLINE __u32 pair_hash(__u32 a, __u32 b) {
    __u32 lo = a < b ? a : b;
    __u32 hi = a < b ? b : a;
    return fmix(lo ^ fmix(hi ^ 0x9e3779b9));
}

// The address-pair hash of the packet, 0 for what is not IP (or cannot be read).
static ALWAYS_INLINE __u32 packet_hash(struct __sk_buff *skb) {
    __u8 b[32];
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
    if (proto == ETH_P_IP) {
        // Version, then the source and destination addresses at 12 and 16.
        if (bpf_skb_load_bytes(skb, off, b, 20) < 0 || (b[0] >> 4) != 4)
            return 0;
        return pair_hash(be32(b + 12), be32(b + 16));
    }
    if (proto == ETH_P_IPV6) {
        // The source and destination addresses at 8 and 24, each folded to 32 bits.
        if (bpf_skb_load_bytes(skb, off + 8, b, 32) < 0)
            return 0;
        return pair_hash(be32(b) ^ be32(b + 4) ^ be32(b + 8) ^ be32(b + 12),
                         be32(b + 16) ^ be32(b + 20) ^ be32(b + 24) ^ be32(b + 28));
    }
    return 0;
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
