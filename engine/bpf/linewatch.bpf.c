// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// linewatch's XDP programs: one object, three programs, each attached on its own.
//
// linewatch_xdp (capture), per frame, in this order:
//   1. count the frame (SEEN) and read config_map;
//   2. decode it down to the TCP header (below);
//   2a. only when options.dst is set (--dst): a TCP segment, or a fragment of a TCP datagram,
//      whose source and destination addresses are both outside dst_v4 / dst_v6 is not
//      monitored, whatever its ports: it goes on as in step 6 (a whole segment is tested once
//      step 4 wants it, so the tries are not looked up for other ports; a fragment before
//      the fragment policy);
//   3. only when options.block is set: a pure SYN (SYN set, ACK clear) whose source address is
//      in block_v4 / block_v6 is dropped (XDP_DROP), counted in BLOCKED and in the entry's
//      value; a SYN in a first IP fragment too. Nothing else is ever dropped for being
//      blocked: the source's established connections, RSTs, ACKs, UDP and ICMP go on as before;
//   4. a TCP segment to or from a monitored port goes to the AF_XDP socket of the frame's rx
//      queue (both directions, so responses are seen as well as requests); so does a pure
//      SYN to any port when options.all_syns is set (linewatch's mirror veth, so the workers see
//      every new connection for port-scan detection);
//   5. an IP fragment of a TCP datagram (IPv4 protocol 6 with MF set or an offset; IPv6 with a
//      Fragment header whose Next Header is 6) follows the fragment policy (below);
//   6. everything else, and a wanted segment on a queue without a socket, goes on to the
//      kernel (XDP_PASS), or is dropped when config.drop_others is set (the mirror veth, where
//      every frame is a copy).
// linewatch_block (blocking alone, on the real NIC while capture runs on the mirror
//   veth): counts SEEN, runs step 3 whatever the options, passes everything else. It never
//   redirects and never drops anything but a blocked source's pure SYNs.
// linewatch_drop (the bench rig's XDP_DROP ceiling): counts SEEN and drops the frame.
//
// The fragment policy. A later fragment has no TCP header, so no ports to match; the workers
// reassemble (engine/src/defrag.rs) whatever fragments they are given. Fragments of anything
// but TCP are never taken (step 6), in any mode. Every fragment carries its datagram's
// addresses, so step 2a is decided for each fragment alone, before the policy below: a
// datagram of an unwatched address goes on whole as in step 6 and leaves no frag_map entry.
// - config.any or config.drop_others (--port any; linewatch's mirror veth, where the kernel
//   only drops the copy): every TCP fragment is taken. No state.
// - Otherwise (--interface with a port list: the kernel may need the host's own fragments) a
//   datagram's fragments follow its first fragment, through frag_map, an LRU hash keyed like
//   the kernel's reassembly (addresses, identification, IP version): the first fragment
//   (offset 0) is taken when its ports are monitored, passed when not, and its decision
//   stored; a later fragment finds that decision and follows it. A decision older than 30 s
//   (the kernel's ipfrag_time) counts as none: the identification is another datagram's by
//   then. A later fragment that finds none (it came before its first fragment: reversed or
//   reordered fragments) is taken, counted FRAGMENTS_AHEAD, and the datagram marked AHEAD; its
//   other fragments then follow it, the first fragment too whatever its ports (counted
//   FRAGMENTS_UNWANTED when they are not monitored: that datagram went to linewatch, and the
//   kernel, which could not have completed it without the fragments taken, never saw it).
//   So a datagram reaches linewatch whole or the kernel whole, in any fragment order, unless
//   the LRU forgets it between its fragments (4096 newer fragmented datagrams in between). The
//   one cost is an unmonitored datagram whose fragments arrive out of order, on an interface
//   that also serves the host.
// A datagram's fragments reach one socket: the rx queue's. RSS hashes a fragment by its
// address pair only (no ports), so on a multi-queue NIC they share a queue, though not
// necessarily the flow's (see README, "fragments live").
//
// Decoded: Ethernet, up to two VLAN tags (802.1Q, 802.1ad), IPv4 (options skipped), IPv6 with
// hop-by-hop, routing and destination option headers, then a Fragment header (extension
// headers after it are not read: such a fragment is not taken). Anything it cannot read is
// passed, never dropped: attaching linewatch to a NIC must not cut traffic it does not
// monitor.
//
// Self-contained on purpose: no kernel or libbpf headers, so `clang -target bpf` needs nothing
// but clang. Maps are BTF-defined (needs `-g`), as libbpf expects.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define ALWAYS_INLINE inline __attribute__((always_inline))

// From <linux/bpf.h>; the values are kernel ABI.
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_LPM_TRIE 11
#define BPF_MAP_TYPE_XSKMAP 17
#define BPF_ANY 0
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
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
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
    FRAGMENTS = 5,  // fragments of TCP datagrams taken (also in REDIRECTED or NO_SOCKET)
    FRAGMENTS_AHEAD = 6,    // later fragments taken before their first fragment was seen
    FRAGMENTS_UNWANTED = 7, // first fragments of unmonitored ports taken after fragments ahead
    COUNTERS = 8,
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

// The watched networks (--dst, read only when options.dst is set): longest-prefix-match tries
// keyed by a prefix length (native byte order) and the address bytes as on the wire. An IPv4
// network is also in dst_v6 as its IPv4-mapped prefix (::ffff:a.b.c.d/96+len), as the workers
// count a mapped address as IPv4. Written once by linewatch before attaching
// (XdpProgram::load); the value is unused. An LPM trie must not be preallocated.
struct dst_v4_key {
    __u32 prefixlen;
    __u8 addr[4];
};

struct dst_v6_key {
    __u32 prefixlen;
    __u8 addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct dst_v4_key);
    __type(value, __u8);
} dst_v4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 2048);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct dst_v6_key);
    __type(value, __u8);
} dst_v6 SEC(".maps");

// The fragment policy's memory (--interface with a port list; see the header comment): what
// each datagram's fragments get, by the kernel's reassembly key. An IPv4 key holds its
// addresses in the first 4 bytes of src and dst (the rest zero) and its 16-bit identification.
// LRU: the least recently used datagram is forgotten first, and a forgotten datagram's later
// fragments are taken as AHEAD. 4096 datagrams in flight on one NIC are far more than
// fragmented TCP ever has (the workers reassemble 64 each); about half a MiB, preallocated.
struct frag_key {
    __u8 src[16];
    __u8 dst[16];
    __u32 id;
    __u32 version; // 4 or 6
};
_Static_assert(sizeof(struct frag_key) == 40, "no padding: the whole key is hashed");

enum frag_fate {
    FRAG_TAKE = 1, // first fragment monitored: the datagram goes to linewatch
    FRAG_PASS = 2, // first fragment not monitored: the datagram goes to the kernel
    FRAG_AHEAD = 3, // later fragments came first and were taken: the rest follow them
};

// A datagram's entry. An entry older than the kernel's reassembly timeout (ipfrag_time, 30 s)
// is read as absent: by then the kernel has given up on that datagram, and a fragment with its
// key belongs to a new datagram that reuses the identification.
struct frag_entry {
    __u64 since_ns; // bpf_ktime_get_ns() when the entry was written
    __u32 fate;     // enum frag_fate
    __u32 unused;
};

#define FRAG_TIMEOUT_NS 30000000000ULL

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, struct frag_key);
    __type(value, struct frag_entry);
} frag_map SEC(".maps");

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
#define IPPROTO_FRAGMENT 44
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

// Skips up to four IPv6 hop-by-hop, routing and destination options headers: `*next` names
// the header at `*off`; on return it names the first other header and `*off` is where that
// starts. Returns -1 when the frame is cut short or the chain runs past 1500 bytes.
static ALWAYS_INLINE int ipv6_skip_options(const __u8 *data, const __u8 *end, __u32 *off,
                                           __u8 *next) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (*next != IPPROTO_HOPOPTS && *next != IPPROTO_ROUTING && *next != IPPROTO_DSTOPTS)
            break;
        const __u8 *ext = data + *off;
        if (ext + 2 > end)
            return -1;
        *next = ext[0];
        *off += ((__u32)ext[1] + 1) * 8;
        if (*off > 1500)
            return -1;
    }
    return 0;
}

// tcp_offset's answer for an IP fragment of a TCP datagram (IPv4), or any frame with an IPv6
// Fragment header: frag_decode reads it.
#define FRAGMENT (-2)

// Returns the offset of the TCP header, FRAGMENT, or -1 when the frame is not a TCP segment we
// can read.
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
        // MF or an offset: the fragment path (a later fragment has no TCP header).
        if ((load_be16(ip + 6) & 0x3FFF) != 0)
            return FRAGMENT;
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
        if (ipv6_skip_options(data, end, &off, &next) < 0)
            return -1;
        if (next != IPPROTO_TCP)
            return next == IPPROTO_FRAGMENT ? FRAGMENT : -1;
        return (int)off;
    }
    return -1;
}

// A fragment of a TCP datagram, as frag_decode reads it.
struct frag {
    struct frag_key key;
    // Offset of the TCP header in a first fragment (offset 0), -1 in a later fragment.
    int tcp;
};

// Decodes a frame that tcp_offset called FRAGMENT: fills `f` and returns 0 for a fragment of a
// TCP datagram, returns -1 for anything else (a fragment of another protocol, an extension
// header after the Fragment header, a frame cut short). Off the common path: only fragments
// come here, and it decodes again from the start rather than widen tcp_offset.
static ALWAYS_INLINE int frag_decode(const __u8 *data, const __u8 *end, struct frag *f) {
    __u16 proto = 0;
    int l3 = l3_offset(data, end, &proto);
    if (l3 < 0 || l3 > 64)
        return -1;
    const __u8 *ip = data + l3;
    if (proto == ETH_P_IP) {
        if (ip + 20 > end)
            return -1;
        if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP)
            return -1;
        __u16 field = load_be16(ip + 6);
        if ((field & 0x3FFF) == 0)
            return -1;
        __u32 ihl = (ip[0] & 0x0F) * 4;
        if (ihl < 20)
            return -1;
        __builtin_memcpy(f->key.src, ip + 12, 4);
        __builtin_memcpy(f->key.dst, ip + 16, 4);
        f->key.id = load_be16(ip + 4);
        f->key.version = 4;
        f->tcp = (field & 0x1FFF) ? -1 : (int)(l3 + ihl);
        return 0;
    }
    if (proto == ETH_P_IPV6) {
        if (ip + 40 > end)
            return -1;
        __u8 next = ip[6];
        __u32 off = l3 + 40;
        if (ipv6_skip_options(data, end, &off, &next) < 0)
            return -1;
        if (next != IPPROTO_FRAGMENT)
            return -1;
        const __u8 *fh = data + off;
        if (fh + 8 > end || fh[0] != IPPROTO_TCP)
            return -1;
        __builtin_memcpy(f->key.src, ip + 8, 16);
        __builtin_memcpy(f->key.dst, ip + 24, 16);
        f->key.id = ((__u32)load_be16(fh + 4) << 16) | load_be16(fh + 6);
        f->key.version = 6;
        f->tcp = (load_be16(fh + 2) & 0xFFF8) ? -1 : (int)(off + 8);
        return 0;
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
    if (off == FRAGMENT) {
        // A SYN in a first fragment is still a SYN (the kernel reassembles it).
        struct frag f = {};
        off = frag_decode(data, end, &f) == 0 ? f.tcp : -1;
    }
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
// - dst: step 2a, the watched networks; when 0 no address is looked up.
static const volatile struct options {
    __u32 block;
    __u32 all_syns;
    __u32 dst;
} options = {0, 0, 0};
_Static_assert(sizeof(struct options) == 12, "options layout is ABI with the loader");

// Step 2a for one address pair, as on the wire (16 bytes each when `v6`, else 4): 1 when either
// is in a watched network.
static ALWAYS_INLINE int watched_pair(const __u8 *src, const __u8 *dst, int v6) {
    if (v6) {
        struct dst_v6_key key = {.prefixlen = 128};
        __builtin_memcpy(key.addr, src, 16);
        if (bpf_map_lookup_elem(&dst_v6, &key))
            return 1;
        __builtin_memcpy(key.addr, dst, 16);
        return bpf_map_lookup_elem(&dst_v6, &key) != 0;
    }
    struct dst_v4_key key = {.prefixlen = 32};
    __builtin_memcpy(key.addr, src, 4);
    if (bpf_map_lookup_elem(&dst_v4, &key))
        return 1;
    __builtin_memcpy(key.addr, dst, 4);
    return bpf_map_lookup_elem(&dst_v4, &key) != 0;
}

// Step 2a for a frame tcp_offset read as a TCP segment: decodes its IP header again (off the
// common path: only with --dst) and returns 1 when an end is watched. A frame it cannot read
// returns 0 (not watched).
static ALWAYS_INLINE int watched(const __u8 *data, const __u8 *end) {
    __u16 proto = 0;
    int l3 = l3_offset(data, end, &proto);
    if (l3 < 0 || l3 > 64)
        return 0;
    const __u8 *ip = data + l3;
    if (proto == ETH_P_IPV6) {
        if (ip + 40 > end)
            return 0;
        return watched_pair(ip + 8, ip + 24, 1);
    }
    if (ip + 20 > end)
        return 0;
    return watched_pair(ip + 12, ip + 16, 0);
}

static ALWAYS_INLINE int monitored(const struct config *cfg, __u16 port) {
    return (cfg->ports[(port >> 3) & 0x1FFF] >> (port & 7)) & 1;
}

// Hands the frame to the socket of its rx queue; `other` when the queue has none.
static ALWAYS_INLINE int take(struct xdp_md *ctx, int other) {
    // The low bits of the flags are the action when the queue has no socket.
    long action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, other);
    count(action == other ? NO_SOCKET : REDIRECTED);
    return (int)action;
}

// Step 5: a frame tcp_offset called FRAGMENT, by the fragment policy (header comment).
static ALWAYS_INLINE int fragment(struct xdp_md *ctx, const struct config *cfg, int other) {
    const __u8 *data = (const __u8 *)(long)ctx->data;
    const __u8 *end = (const __u8 *)(long)ctx->data_end;
    struct frag f = {};
    if (frag_decode(data, end, &f) != 0) {
        count(OTHER);
        return other;
    }
    if (options.dst && !watched_pair(f.key.src, f.key.dst, f.key.version == 6)) {
        count(OTHER);
        return other;
    }
    if (!cfg->any && !cfg->drop_others) {
        __u64 now = bpf_ktime_get_ns();
        struct frag_entry entry = {.since_ns = now};
        struct frag_entry *known = bpf_map_lookup_elem(&frag_map, &f.key);
        // Signed: an entry another CPU wrote a moment "later" by its clock is not expired.
        if (known && (__s64)(now - known->since_ns) > (__s64)FRAG_TIMEOUT_NS)
            known = 0;
        __u32 fate;
        if (f.tcp >= 0) {
            if (f.tcp > 1600 || data + f.tcp + 4 > end) {
                // Ports unreadable: the datagram goes to the kernel, and its later fragments
                // must follow it there (recorded, or they would be taken as ahead).
                entry.fate = FRAG_PASS;
                if (known)
                    entry.since_ns = known->since_ns;
                bpf_map_update_elem(&frag_map, &f.key, &entry, BPF_ANY);
                count(OTHER);
                return other;
            }
            const __u8 *tcp = data + f.tcp;
            int wanted = monitored(cfg, load_be16(tcp)) || monitored(cfg, load_be16(tcp + 2)) ||
                         (options.all_syns && pure_syn(tcp, end));
            if (known && known->fate == FRAG_AHEAD && !wanted) {
                count(FRAGMENTS_UNWANTED);
                wanted = 1;
            }
            fate = wanted ? FRAG_TAKE : FRAG_PASS;
            if (known)
                entry.since_ns = known->since_ns;
            entry.fate = fate;
            bpf_map_update_elem(&frag_map, &f.key, &entry, BPF_ANY);
        } else if (known) {
            fate = known->fate;
        } else {
            fate = FRAG_AHEAD;
            entry.fate = fate;
            bpf_map_update_elem(&frag_map, &f.key, &entry, BPF_ANY);
            count(FRAGMENTS_AHEAD);
        }
        if (fate == FRAG_PASS) {
            count(OTHER);
            return other;
        }
    }
    count(FRAGMENTS);
    return take(ctx, other);
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
    if (off == FRAGMENT)
        return fragment(ctx, cfg, other);
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
    // Step 2a after the ports: the tries are looked up only for a segment the ports want.
    if (options.dst && !watched(data, end)) {
        count(OTHER);
        return other;
    }
    return take(ctx, other);
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
