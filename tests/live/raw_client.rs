//! A TCP client that writes its own segments and IP packets, for the evasion lab: the bytes on
//! the wire are exactly the test's, in the order it chooses (out of order, overlapping, one
//! byte at a time, as IP fragments), which no socket API allows.
//!
//! The contract:
//!
//! - **The link.** [`Link::open`] opens an `AF_PACKET` socket inside a lab namespace (a
//!   short-lived thread enters the namespace with `setns`, makes the socket and leaves; a
//!   socket stays in the namespace it was made in), bound to one interface. Frames go out as
//!   given; every frame the interface receives can be read.
//! - **An address nobody owns.** A connection speaks from an address the client namespace's
//!   kernel does not have, so that kernel drops the server's answers silently (forwarding is
//!   off in a new namespace) instead of resetting a connection it never opened. The server
//!   side needs a permanent neighbour entry for that address (the caller makes it).
//! - **The connection.** [`Conn::connect`] does the handshake (SYN with an MSS and no other
//!   option, the SYN-ACK read from the socket for the server's initial sequence number, ACK);
//!   [`Conn::send_at`] and [`Conn::send_fragments`] put bytes at a stream offset, in whatever
//!   order they are called. [`Conn::finish`] reads the answer, ACKing every segment (a
//!   duplicate ACK for one out of order), so the server never retransmits; once the server's
//!   FIN has come, it closes with FIN and waits for its ACK, and otherwise resets.
//! - Every wait has a deadline; a failure is one line naming the connection.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use linewatch_testkit::frame::{
    EthernetRepr, Frame, Tags, TcpFlags, TcpOptions, TcpRepr, ETHERNET_HEADER_LEN, ETHERTYPE_IPV4,
    ETHERTYPE_IPV6, IPV6_HEADER_LEN, IP_PROTOCOL_TCP, TCP_HEADER_LEN,
};
use linewatch_testkit::lab::Netns;

/// The MSS the client's SYN offers (an Ethernet MTU's).
const CLIENT_MSS: u16 = 1460;
/// The largest frame read: a veth may hand a GSO super-frame of 64 KiB to a packet socket.
const RECV_BUFFER: usize = 65_536 + ETHERNET_HEADER_LEN;
/// How often the SYN is sent again while no SYN-ACK comes.
const SYN_RETRY: Duration = Duration::from_millis(500);
/// How long the client waits for the ACK of its FIN.
const FIN_ACK_WAIT: Duration = Duration::from_secs(1);

/// Pins the calling thread to the CPU it runs on. A veth hands each frame to the backlog of
/// the CPU that sent it, so frames sent from two CPUs may reach the server in another order
/// than they were sent: a client that means its order pins its sending thread first.
///
/// # Errors
/// When the CPU cannot be read or the affinity set.
pub fn pin_to_this_cpu() -> Result<usize, String> {
    // SAFETY: a plain system call without arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    let cpu = usize::try_from(cpu).map_err(|_| last_error("sched_getcpu"))?;
    // SAFETY: cpu_set_t is a bit array, for which all zeros (the empty set) is a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t, and `cpu` is below CPU_SETSIZE (the kernel gave it).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given, alive for the call; 0 is this
    // thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(last_error(&format!("sched_setaffinity to CPU {cpu}")));
    }
    Ok(cpu)
}

/// A packet socket bound to one interface, and the MACs its frames carry.
#[derive(Debug)]
pub struct Link {
    fd: OwnedFd,
    /// The interface's own MAC (the frames' source).
    pub mac: [u8; 6],
    /// The MAC of the far end of the veth (the frames' destination).
    pub peer_mac: [u8; 6],
}

/// The MAC of `dev` in `ns` (`ip -br link show`: `NAME STATE MAC FLAGS`).
///
/// # Errors
/// When ip fails or prints no MAC.
pub fn mac_of(ns: &Netns, dev: &str) -> Result<[u8; 6], String> {
    let line = ns
        .ip(&["-br", "link", "show", "dev", dev])
        .map_err(|e| e.to_string())?;
    let text = line
        .split_whitespace()
        .nth(2)
        .ok_or_else(|| format!("no MAC for {dev} in {ns}: {line:?}"))?;
    let mut mac = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = parts
            .next()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| format!("{dev} in {ns}: {text:?} is not a MAC"))?;
    }
    Ok(mac)
}

fn last_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

/// Inside the calling thread's network namespace: a packet socket for every EtherType, bound
/// to `dev`.
fn bound_socket(dev: &str) -> Result<OwnedFd, String> {
    let all = u16::try_from(libc::ETH_P_ALL).expect("ETH_P_ALL is 3");
    // SAFETY: a plain system call with constant arguments; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(all.to_be()),
        )
    };
    if raw < 0 {
        return Err(last_error("socket(AF_PACKET)"));
    }
    // SAFETY: `raw` is a descriptor just made, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let name = CString::new(dev).map_err(|e| format!("interface name {dev:?}: {e}"))?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(last_error(&format!("if_nametoindex({dev})")));
    }
    // SAFETY: sockaddr_ll is plain integers and bytes, for which all zeros is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = u16::try_from(libc::AF_PACKET).expect("AF_PACKET is 17");
    addr.sll_protocol = all.to_be();
    addr.sll_ifindex = i32::try_from(index).map_err(|_| format!("{dev}: ifindex {index}"))?;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())
        .expect("a sockaddr_ll's size fits socklen_t");
    // SAFETY: `addr` is a sockaddr_ll of `len` bytes, alive for the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc != 0 {
        return Err(last_error(&format!("bind to {dev}")));
    }
    Ok(fd)
}

impl Link {
    /// A packet socket on `dev` in `ns`, sending from `dev`'s MAC to `peer_mac`.
    ///
    /// # Errors
    /// When the namespace cannot be entered or the socket made or bound (one line).
    pub fn open(ns: &Netns, dev: &str, peer_mac: [u8; 6]) -> Result<Link, String> {
        let mac = mac_of(ns, dev)?;
        let path = format!("/run/netns/{}", ns.name());
        let device = dev.to_owned();
        // setns(CLONE_NEWNET) moves only the calling thread, so a thread of its own enters the
        // namespace and ends once the socket is made; the socket stays in the namespace.
        let fd = std::thread::spawn(move || {
            let netns = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            // SAFETY: `netns` is an open namespace file for the duration of the call.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(last_error(&format!("setns({path})")));
            }
            bound_socket(&device)
        })
        .join()
        .map_err(|_| "the thread entering the client namespace panicked".to_owned())??;
        Ok(Link { fd, mac, peer_mac })
    }

    /// Sends one whole frame (Ethernet header included).
    ///
    /// # Errors
    /// When the kernel refuses it or takes only part of it.
    pub fn send(&self, frame: &[u8]) -> Result<(), String> {
        // SAFETY: `frame` is a valid buffer of `frame.len()` bytes for the call.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if usize::try_from(sent).ok() != Some(frame.len()) {
            return Err(last_error(&format!("send of a {}-byte frame", frame.len())));
        }
        Ok(())
    }

    /// The next frame the interface received, into `buf`; `None` when none comes by `deadline`.
    ///
    /// # Errors
    /// When poll or recv fails.
    pub fn recv<'b>(
        &self,
        buf: &'b mut [u8],
        deadline: Instant,
    ) -> Result<Option<&'b [u8]>, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, alive for the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            return Err(last_error("poll on the packet socket"));
        }
        if ready == 0 {
            return Ok(None);
        }
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes for the call.
        let got = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let got = usize::try_from(got).map_err(|_| last_error("recv on the packet socket"))?;
        Ok(Some(&buf[..got]))
    }
}

/// A TCP segment read off the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    /// Where the payload is in the frame, and its length.
    payload_at: usize,
    payload_len: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The TCP segment in an untagged Ethernet frame (IPv4 without fragmentation, or IPv6 whose
/// next header is TCP: what a Linux server sends); `None` for anything else.
fn parse_segment(frame: &[u8]) -> Option<Segment> {
    let ip = frame.get(ETHERNET_HEADER_LEN..)?;
    let (src, dst, tcp_at, ip_end) = match be16(frame, 12) {
        ETHERTYPE_IPV4 if ip.len() >= 20 && ip[9] == IP_PROTOCOL_TCP => {
            let header = usize::from(ip[0] & 0x0F) * 4;
            let more_or_offset = be16(ip, 6) & 0x3FFF;
            if more_or_offset != 0 {
                return None;
            }
            let src: [u8; 4] = ip[12..16].try_into().ok()?;
            let dst: [u8; 4] = ip[16..20].try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                header,
                usize::from(be16(ip, 2)),
            )
        }
        ETHERTYPE_IPV6 if ip.len() >= IPV6_HEADER_LEN && ip[6] == IP_PROTOCOL_TCP => {
            let src: [u8; 16] = ip[8..24].try_into().ok()?;
            let dst: [u8; 16] = ip[24..40].try_into().ok()?;
            let end = IPV6_HEADER_LEN + usize::from(be16(ip, 4));
            (IpAddr::from(src), IpAddr::from(dst), IPV6_HEADER_LEN, end)
        }
        _ => return None,
    };
    let ip = ip.get(..ip_end)?;
    let tcp = ip.get(tcp_at..)?;
    if tcp.len() < TCP_HEADER_LEN {
        return None;
    }
    let header = usize::from(tcp[12] >> 4) * 4;
    let payload_len = tcp.len().checked_sub(header)?;
    Some(Segment {
        src: SocketAddr::new(src, be16(tcp, 0)),
        dst: SocketAddr::new(dst, be16(tcp, 2)),
        seq: be32(tcp, 4),
        ack: be32(tcp, 8),
        flags: TcpFlags(tcp[13]),
        payload_at: ETHERNET_HEADER_LEN + tcp_at + header,
        payload_len,
    })
}

/// How a connection ended, and what the server sent on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The server's bytes, in stream order.
    pub answer: Vec<u8>,
    /// The server closed (FIN) and the client's FIN was answered.
    pub closed: bool,
    /// The server reset the connection.
    pub reset: bool,
}

impl Outcome {
    /// The status codes of the responses in the answer, in order: every `HTTP/1.x ` in it
    /// (a pipelined response follows the last body byte directly, and the lab's bodies never
    /// hold the string).
    pub fn statuses(&self) -> Vec<String> {
        const STATUS_LINE: &[u8] = b"HTTP/1.";
        /// `HTTP/1.` then the minor version and a space, then the code.
        const CODE_AT: usize = STATUS_LINE.len() + 2;
        (0..self.answer.len())
            .filter(|&at| self.answer[at..].starts_with(STATUS_LINE))
            .filter_map(|at| self.answer.get(at + CODE_AT..at + CODE_AT + 3))
            .map(|code| String::from_utf8_lossy(code).into_owned())
            .collect()
    }
}

/// One TCP connection from an address nobody owns, driven segment by segment.
#[derive(Debug)]
pub struct Conn<'l> {
    link: &'l Link,
    local: SocketAddr,
    remote: SocketAddr,
    /// The client's initial sequence number: stream offset 0 is `iss + 1`.
    iss: u32,
    /// The next byte expected from the server.
    rcv_nxt: u32,
    /// The end of the furthest stream byte sent (offset).
    sent_end: usize,
    /// The highest acknowledgement the server sent.
    acked: u32,
    answer: Vec<u8>,
    fin: bool,
    reset: bool,
    buf: Vec<u8>,
}

/// The 32-bit sequence number `offset` bytes after `base` (sequence space wraps).
fn seq_at(base: u32, offset: usize) -> u32 {
    // Sequence numbers are modulo 2^32: the truncation is the arithmetic.
    #[allow(clippy::cast_possible_truncation)]
    let low = offset as u32;
    base.wrapping_add(low)
}

impl<'l> Conn<'l> {
    /// The handshake from `local` to `remote`, the client's initial sequence number `iss`:
    /// SYN (resent every half second), the server's SYN-ACK, ACK.
    ///
    /// # Errors
    /// When no SYN-ACK comes within `timeout`, the server resets, or the link fails.
    pub fn connect(
        link: &'l Link,
        local: SocketAddr,
        remote: SocketAddr,
        iss: u32,
        timeout: Duration,
    ) -> Result<Conn<'l>, String> {
        let mut conn = Conn {
            link,
            local,
            remote,
            iss,
            rcv_nxt: 0,
            sent_end: 0,
            acked: iss,
            answer: Vec::new(),
            fin: false,
            reset: false,
            buf: vec![0; RECV_BUFFER],
        };
        let deadline = Instant::now() + timeout;
        let syn = TcpRepr {
            options: TcpOptions {
                mss: Some(CLIENT_MSS),
                ..TcpOptions::default()
            },
            ..conn.tcp(TcpFlags::SYN, iss, &[])
        };
        loop {
            conn.link.send(&conn.frame(syn).to_vec())?;
            let retry = (Instant::now() + SYN_RETRY).min(deadline);
            while let Some(seg) = conn.next_segment(retry)? {
                if seg.flags.contains(TcpFlags::RST) {
                    return Err(format!("{local} -> {remote}: reset during the handshake"));
                }
                if seg.flags.contains(TcpFlags::SYN | TcpFlags::ACK)
                    && seg.ack == iss.wrapping_add(1)
                {
                    conn.rcv_nxt = seg.seq.wrapping_add(1);
                    conn.acked = seg.ack;
                    conn.send_flags(TcpFlags::ACK, conn.seq_of(0))?;
                    return Ok(conn);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{local} -> {remote}: no SYN-ACK within {timeout:?}"
                ));
            }
        }
    }

    fn seq_of(&self, offset: usize) -> u32 {
        seq_at(self.iss.wrapping_add(1), offset)
    }

    fn tcp<'p>(&self, flags: TcpFlags, seq: u32, payload: &'p [u8]) -> TcpRepr<'p> {
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: if flags.contains(TcpFlags::ACK) {
                self.rcv_nxt
            } else {
                0
            },
            flags,
            payload,
            ..TcpRepr::default()
        }
    }

    fn frame<'p>(&self, tcp: TcpRepr<'p>) -> Frame<'p> {
        Frame {
            ethernet: EthernetRepr {
                dst: self.link.peer_mac,
                src: self.link.mac,
                tags: Tags::None,
            },
            ..Frame::tcp(self.local.ip(), self.remote.ip(), tcp)
        }
    }

    fn send_flags(&self, flags: TcpFlags, seq: u32) -> Result<(), String> {
        self.link
            .send(&self.frame(self.tcp(flags, seq, &[])).to_vec())
    }

    /// One segment carrying `bytes` at stream offset `at` (PSH, ACK).
    ///
    /// # Errors
    /// When the link fails.
    pub fn send_at(&mut self, at: usize, bytes: &[u8]) -> Result<(), String> {
        let tcp = self.tcp(TcpFlags::PSH | TcpFlags::ACK, self.seq_of(at), bytes);
        self.link.send(&self.frame(tcp).to_vec())?;
        self.sent_end = self.sent_end.max(at + bytes.len());
        Ok(())
    }

    /// One segment carrying `bytes` at stream offset `at`, sent as IP fragments of its
    /// transport bytes cut at `cuts` (multiples of 8; see `Frame::fragments`), identification
    /// `ident`, in order or last fragment first.
    ///
    /// # Errors
    /// When the link fails.
    pub fn send_fragments(
        &mut self,
        at: usize,
        bytes: &[u8],
        ident: u32,
        cuts: &[usize],
        reversed: bool,
    ) -> Result<(), String> {
        let tcp = self.tcp(TcpFlags::PSH | TcpFlags::ACK, self.seq_of(at), bytes);
        let mut pieces = self.frame(tcp).fragments(ident, cuts);
        if reversed {
            pieces.reverse();
        }
        for piece in &pieces {
            self.link.send(piece)?;
        }
        self.sent_end = self.sent_end.max(at + bytes.len());
        Ok(())
    }

    /// The next segment of this connection from the server, by `deadline`.
    fn next_segment(&mut self, deadline: Instant) -> Result<Option<Segment>, String> {
        let mut buf = std::mem::take(&mut self.buf);
        let found = loop {
            let Some(frame) = self.link.recv(&mut buf, deadline)? else {
                break None;
            };
            match parse_segment(frame) {
                Some(seg) if seg.src == self.remote && seg.dst == self.local => {
                    // Keep the payload where `take_payload` finds it.
                    break Some(seg);
                }
                _ => {}
            }
        };
        self.buf = buf;
        Ok(found)
    }

    /// Takes in one segment of the answer: in-order bytes and a FIN advance `rcv_nxt`; any
    /// segment with data or FIN is ACKed (a duplicate ACK when it was not the next one).
    fn take(&mut self, seg: Segment) -> Result<(), String> {
        if seg.flags.contains(TcpFlags::RST) {
            self.reset = true;
            return Ok(());
        }
        if seg.flags.contains(TcpFlags::ACK) && seg.ack.wrapping_sub(self.acked) < 1 << 31 {
            self.acked = seg.ack;
        }
        let fin = seg.flags.contains(TcpFlags::FIN);
        if seg.payload_len == 0 && !fin {
            return Ok(());
        }
        if seg.seq == self.rcv_nxt {
            self.answer
                .extend_from_slice(&self.buf[seg.payload_at..seg.payload_at + seg.payload_len]);
            self.rcv_nxt = seq_at(self.rcv_nxt, seg.payload_len);
            if fin {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                self.fin = true;
            }
        }
        self.send_flags(TcpFlags::ACK, self.seq_of(self.sent_end))
    }

    /// Reads the answer until the server closes (FIN), resets, or `timeout` passes; then
    /// closes with FIN (and waits for its ACK) after a server FIN, or resets otherwise.
    ///
    /// # Errors
    /// When the link fails.
    pub fn finish(mut self, timeout: Duration) -> Result<Outcome, String> {
        let deadline = Instant::now() + timeout;
        while !self.fin && !self.reset {
            let Some(seg) = self.next_segment(deadline)? else {
                break;
            };
            self.take(seg)?;
        }
        let fin_seq = self.seq_of(self.sent_end);
        let mut closed = false;
        if self.fin && !self.reset {
            self.send_flags(TcpFlags::FIN | TcpFlags::ACK, fin_seq)?;
            let deadline = Instant::now() + FIN_ACK_WAIT;
            while !closed && !self.reset {
                let Some(seg) = self.next_segment(deadline)? else {
                    break;
                };
                self.take(seg)?;
                closed = self.acked == fin_seq.wrapping_add(1);
            }
        }
        if !closed && !self.reset {
            self.send_flags(TcpFlags::RST, fin_seq)?;
        }
        Ok(Outcome {
            answer: self.answer,
            closed,
            reset: self.reset,
        })
    }
}

#[test]
fn reads_a_servers_segment_and_its_status_lines() {
    use linewatch_testkit::frame::{IpRepr, Ipv6Repr};
    let payload = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\n\r\n";
    let tcp = TcpRepr {
        src_port: 8080,
        dst_port: 42001,
        seq: 7,
        ack: 9,
        flags: TcpFlags::PSH | TcpFlags::ACK | TcpFlags::FIN,
        payload,
        ..TcpRepr::default()
    };
    let v4 = Frame::tcp([10, 0, 0, 1].into(), [10, 0, 0, 3].into(), tcp).to_vec();
    let seg = parse_segment(&v4).expect("a TCP segment");
    assert_eq!(seg.src, "10.0.0.1:8080".parse().unwrap());
    assert_eq!(seg.dst, "10.0.0.3:42001".parse().unwrap());
    assert_eq!((seg.seq, seg.ack, seg.flags), (7, 9, tcp.flags));
    assert_eq!(
        &v4[seg.payload_at..seg.payload_at + seg.payload_len],
        payload
    );
    let (a, b) = ("fd00::1".parse().unwrap(), "fd00::3".parse().unwrap());
    let v6 = Frame::new(
        IpRepr::V6(Ipv6Repr::new(a, b)),
        linewatch_testkit::frame::Transport::Tcp(tcp),
    )
    .to_vec();
    let seg = parse_segment(&v6).expect("a TCP segment in IPv6");
    assert_eq!(seg.dst, SocketAddr::new(IpAddr::V6(b), 42001));
    assert_eq!(
        &v6[seg.payload_at..seg.payload_at + seg.payload_len],
        payload
    );
    // A fragment is not a segment: the server never sends one, and its ports may be absent.
    let pieces = Frame::tcp([10, 0, 0, 1].into(), [10, 0, 0, 3].into(), tcp).fragments(1, &[24]);
    assert!(parse_segment(&pieces[0]).is_none() && parse_segment(&pieces[1]).is_none());
    let outcome = Outcome {
        answer: payload.to_vec(),
        closed: true,
        reset: false,
    };
    assert_eq!(outcome.statuses(), ["200", "404"]);
}
