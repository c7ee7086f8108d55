//! The stalled-heads capture (issue 15, "Stalled connections cannot blind it"): connections
//! that each send the start of a request head and stall, then requests each split across two
//! segments on new connections. Replayed by `cut_heads.rs`, sent over a veth by
//! `live_cut_heads.rs`.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use linewatch_testkit::frame::{pcap, Frame, TcpFlags, TcpRepr};

pub const T0: u64 = 1_700_000_000_000_000_000;
pub const SERVER_PORT: u16 = 80;
pub const CLIENT_SEQ: u32 = 1_000;
/// Connections that send a cut request head and stall.
pub const STALLED: u32 = 100_000;
/// Requests split across two segments, on new connections, after the stalled ones.
pub const SPLIT: u32 = 1_000;
/// The stalled connections' only segment: a request line and the start of a header.
pub const STALLED_HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a";

/// The client's segment at `offset` bytes into its stream.
pub fn segment(client: (IpAddr, u16), server: IpAddr, offset: u32, payload: &[u8]) -> Frame<'_> {
    client_segment(
        client,
        server,
        CLIENT_SEQ + offset,
        TcpFlags::PSH | TcpFlags::ACK,
        payload,
    )
}

/// The client's SYN: its stream's offset 0 is then [`CLIENT_SEQ`].
pub fn syn(client: (IpAddr, u16), server: IpAddr) -> Frame<'static> {
    client_segment(client, server, CLIENT_SEQ - 1, TcpFlags::SYN, b"")
}

fn client_segment(
    client: (IpAddr, u16),
    server: IpAddr,
    seq: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Frame<'_> {
    Frame::tcp(
        client.0,
        server,
        TcpRepr {
            src_port: client.1,
            dst_port: SERVER_PORT,
            seq,
            ack: 1,
            flags,
            payload,
            ..TcpRepr::default()
        },
    )
}

/// A distinct client for connection `i`: 10.x.y.z, port 40000 + (i % 16).
pub fn client(net: u8, i: u32) -> (IpAddr, u16) {
    let [_, _, a, b] = (i >> 4).to_be_bytes();
    let low = u16::try_from(i & 0xF).unwrap();
    (IpAddr::V4(Ipv4Addr::new(10, net, a, b)), 40_000 + low)
}

/// Writes the capture: `stalled` cut heads, then `split` requests in two segments each.
pub fn write_capture(path: &std::path::Path, stalled: u32, split: u32) {
    let server = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("creating"));
    out.write_all(&pcap(&[])).expect("writing");
    let mut ns = T0;
    let mut put = |frame: Vec<u8>, out: &mut std::io::BufWriter<std::fs::File>| {
        ns += 10_000; // 100,000 frames a second of packet time
        out.write_all(&pcap(&[(ns, &frame)])[24..])
            .expect("writing");
    };
    for i in 0..stalled {
        put(
            segment(client(1, i), server, 0, STALLED_HEAD).to_vec(),
            &mut out,
        );
    }
    for i in 0..split {
        let request =
            format!("GET /live/{i} HTTP/1.1\r\nHost: live.example\r\nAccept: */*\r\n\r\n");
        let (first, second) = request.as_bytes().split_at(20);
        let c = client(2, i);
        put(segment(c, server, 0, first).to_vec(), &mut out);
        let offset = u32::try_from(first.len()).unwrap();
        put(segment(c, server, offset, second).to_vec(), &mut out);
    }
    out.flush().expect("writing");
}
