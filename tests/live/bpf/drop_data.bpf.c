// A lossy path for the lab (tests/lossy_path.rs): a tc clsact egress classifier in
// direct-action mode on the client's veth that silently drops DROP_PER_MILLE per mille of the
// IPv4 TCP segments carrying data (payload length > 0), chosen with bpf_get_prandom_u32, and
// counts in the array map `COUNTERS_NAME` the data segments it saw (key 0) and dropped (key 1).
// Everything else (SYN, pure ACK, FIN without data, ARP, IPv6) passes untouched.
//
// Compile-time parameters (clang -D): DROP_PER_MILLE (0..1000) and COUNTERS_NAME, the map's
// name, unique per lab so that the test finds its own map among the kernel's.
//
// A dropped segment is returned as TC_ACT_STOLEN, not TC_ACT_SHOT: on egress SHOT makes
// dev_queue_xmit return NET_XMIT_DROP, TCP sees its transmit fail, keeps the segment and sends
// it again later in order, so nothing is lost on the path. STOLEN reports success: the sender
// believes the segment left, the server never gets it, and the gap is real (a later segment
// arrives first, the hole is filled by a retransmission after SACK or RTO). The sender's
// packet taps (tcpdump) run after this hook, so no capture anywhere holds a dropped segment.
//
// Self-contained: no kernel or libbpf headers (the lab machines have neither the multiarch asm
// headers nor bpf_helpers.h), only the few constants and helper ids the program uses. tc
// (iproute2 built with libbpf) loads the BTF-defined map from `.maps`.

#ifndef DROP_PER_MILLE
#error "compile with -DDROP_PER_MILLE=<0..1000>"
#endif
#ifndef COUNTERS_NAME
#error "compile with -DCOUNTERS_NAME=<map name, at most 15 characters>"
#endif

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

// From include/uapi/linux/bpf.h and pkt_cls.h.
#define BPF_MAP_TYPE_ARRAY 2
#define TC_ACT_OK 0
#define TC_ACT_STOLEN 4

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static u32 (*bpf_get_prandom_u32)(void) = (void *)7;
static long (*bpf_skb_load_bytes)(const void *skb, u32 offset, void *to, u32 len) = (void *)26;

#define ETH_HLEN 14
#define ETH_P_IP_HI 0x08
#define ETH_P_IP_LO 0x00
#define IPPROTO_TCP 6
/// IPv4: version/IHL, total length, protocol (offsets in the IP header).
#define IP_VHL 0
#define IP_TOTAL_LEN 2
#define IP_PROTO 9
#define IP_MIN_LEN 20
/// TCP: data offset (high nibble).
#define TCP_DOFF 12

#define SEEN 0
#define DROPPED 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} COUNTERS_NAME SEC(".maps");

static void count(u32 key)
{
	u64 *n = bpf_map_lookup_elem(&COUNTERS_NAME, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tc")
int drop_data(void *skb)
{
	u8 eth_type[2];
	u8 ip[IP_MIN_LEN];
	u8 doff;

	if (bpf_skb_load_bytes(skb, 12, eth_type, sizeof(eth_type)) < 0 ||
	    eth_type[0] != ETH_P_IP_HI || eth_type[1] != ETH_P_IP_LO)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(ip)) < 0 || (ip[IP_VHL] >> 4) != 4 ||
	    ip[IP_PROTO] != IPPROTO_TCP)
		return TC_ACT_OK;
	u32 ihl = (u32)(ip[IP_VHL] & 0x0f) * 4;
	u32 total = ((u32)ip[IP_TOTAL_LEN] << 8) | ip[IP_TOTAL_LEN + 1];
	if (ihl < IP_MIN_LEN || ihl > 60)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl + TCP_DOFF, &doff, 1) < 0)
		return TC_ACT_OK;
	u32 headers = ihl + (u32)(doff >> 4) * 4;
	if (total <= headers)
		return TC_ACT_OK;
	count(SEEN);
	if (bpf_get_prandom_u32() % 1000 >= DROP_PER_MILLE)
		return TC_ACT_OK;
	count(DROPPED);
	return TC_ACT_STOLEN;
}

char _license[] SEC("license") = "GPL";
