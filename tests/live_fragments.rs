//! IP fragments live, judged by nginx (issue 15 item 2): requests carried in fragmented IPv4
//! and IPv6 datagrams, in order and reversed, sent to nginx in the lab. nginx's access log is
//! the answer: linewatch `--mirror` on the server's veth, and `--interface` on a SPAN port of
//! it, must count exactly the requests nginx logged for the monitored port, per method, section,
//! host and status, with a response for each, and reassemble exactly the datagrams the XDP
//! program's fragment policy hands them (`engine/bpf/linewatch.bpf.c`).
//!
//! The client writes its own frames (`linewatch_testkit::frame`: checksums and fragments) on an
//! AF_PACKET socket in the client namespace, from addresses that namespace's kernel does not
//! own (10.202.0.50, fd00:202::50), so its kernel sends no RST; the server has permanent
//! neighbour entries for them, so nginx's answers come back to the client's veth, where the
//! socket reads them. It does the handshake, sends the request as one datagram cut into three
//! fragments (in order or last first), acknowledges the response and closes. nginx listens on
//! IPv4 only in the lab, so a second nginx here serves IPv6 with the lab's configuration.
//!
//! Also sent: two fragmented requests to the lab's unmonitored port (8081), in order and
//! reversed. Neither is counted; on `--mirror` the program takes both datagrams (every TCP
//! fragment there), on `--interface` with `--port 8080` only the reversed one (its fragments
//! came before the first fragment that names the port).
//!
//! Needs root, ip, tc and nginx; without them it prints a note and passes, with `CI` set it
//! fails. Run it (as root):
//!
//! ```text
//! flock /tmp/linewatch-netns.lock cargo test --profile ci --test live_fragments -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;
mod live;

use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use linewatch_parser::wire::{decode_frame, LinkType, TcpFlags as WireFlags};
use linewatch_testkit::frame::{EthernetRepr, Frame, IpRepr, Tags, TcpFlags, TcpRepr, Transport};
use linewatch_testkit::tools::path_of;
use live::access_log::{self, Counts};
use live::lab::{Lab, MONITORED_PORT, SERVER_ADDR, UNMONITORED_PORT};
use live::process::Proc;
use live::{lab_for, print_table, serial, Linewatch};

const TOOLS: &[&str] = &["nginx"];

/// The client's addresses: on the lab's subnets, owned by no kernel.
const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 50);
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x202, 0, 0, 0, 0, 0, 0x50);
/// The server's IPv6 address (the lab gives it IPv4 only), on the server's veth.
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x202, 0, 0, 0, 0, 0, 1);
const V6_PREFIX_LEN: u8 = 64;

/// Where each request's datagram is cut (bytes of TCP header and payload, multiples of 8):
/// the first fragment holds the header and the start of the request line, the second the rest
/// of it and the first header lines, the third the rest.
const CUTS: &[usize] = &[48, 120];
/// Padding header value: the request is longer than the last cut.
const PADDING: usize = 120;

/// How long one exchange may take (the IPv6 nginx may still be starting: a reset handshake
/// is tried again).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The client socket's read timeout: how often the exchange looks at its deadline.
const READ_TIMEOUT_US: libc::suseconds_t = 100_000;
/// The client's initial sequence number.
const CLIENT_ISN: u32 = 0x1000_0000;
/// Source ports: case `i`, attempt `a` uses `BASE_PORT + 100 * a + i`.
const BASE_PORT: u16 = 41_000;

/// One request in a fragmented datagram.
struct Case {
    name: &'static str,
    v6: bool,
    port: u16,
    path: &'static str,
    /// The last fragment first, the first last.
    reversed: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "IPv4, in order",
        v6: false,
        port: MONITORED_PORT,
        path: "/api/fragments/v4-in-order",
        reversed: false,
    },
    Case {
        name: "IPv4, reversed",
        v6: false,
        port: MONITORED_PORT,
        path: "/fragments/v4/reversed",
        reversed: true,
    },
    Case {
        name: "IPv6, in order",
        v6: true,
        port: MONITORED_PORT,
        path: "/api/fragments/v6-in-order",
        reversed: false,
    },
    Case {
        name: "IPv6, reversed",
        v6: true,
        port: MONITORED_PORT,
        path: "/",
        reversed: true,
    },
    Case {
        name: "IPv4 to the unmonitored port, in order",
        v6: false,
        port: UNMONITORED_PORT,
        path: "/unmonitored/in-order",
        reversed: false,
    },
    Case {
        name: "IPv4 to the unmonitored port, reversed",
        v6: false,
        port: UNMONITORED_PORT,
        path: "/unmonitored/reversed",
        reversed: true,
    },
];

/// An AF_PACKET socket on one interface of a network namespace.
#[derive(Debug)]
struct RawLink {
    fd: OwnedFd,
}

impl RawLink {
    /// Opens the socket inside `netns` (made by `ip netns add`), bound to `ifname` there.
    fn open(netns: &str, ifname: &str) -> RawLink {
        let (path, name) = (format!("/run/netns/{netns}"), ifname.to_owned());
        // A thread of its own enters the namespace: the socket stays in it, the test does not.
        let fd = std::thread::spawn(move || -> Result<OwnedFd, String> {
            let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            let os_error = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
            // SAFETY: moves this thread (only) into the namespace of a valid fd.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(os_error("setns"));
            }
            let c_name = CString::new(name.clone()).map_err(|e| e.to_string())?;
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
            if ifindex == 0 {
                return Err(os_error(&format!("interface {name}")));
            }
            let protocol = u16::try_from(libc::ETH_P_ALL).expect("16 bits").to_be();
            // SAFETY: plain socket call; the fd is owned below.
            let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
            if raw < 0 {
                return Err(os_error("AF_PACKET socket"));
            }
            // SAFETY: a fresh fd that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: sockaddr_ll is plain data; all zeros is a valid start.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = u16::try_from(libc::AF_PACKET).expect("16 bits");
            addr.sll_protocol = protocol;
            addr.sll_ifindex = i32::try_from(ifindex).expect("an ifindex");
            let len = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).expect("small");
            // SAFETY: `addr` is a sockaddr_ll of `len` bytes.
            let ret = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&raw const addr).cast::<libc::sockaddr>(),
                    len,
                )
            };
            if ret != 0 {
                return Err(os_error("bind"));
            }
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: READ_TIMEOUT_US,
            };
            let len = u32::try_from(std::mem::size_of::<libc::timeval>()).expect("small");
            // SAFETY: `timeout` is a timeval of `len` bytes.
            let ret = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const timeout).cast(),
                    len,
                )
            };
            if ret != 0 {
                return Err(os_error("SO_RCVTIMEO"));
            }
            Ok(fd)
        })
        .join()
        .expect("the namespace thread")
        .unwrap_or_else(|why| panic!("the client's raw socket in {netns}: {why}"));
        RawLink { fd }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: the kernel reads `frame.len()` bytes of `frame`.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            usize::try_from(n).ok(),
            Some(frame.len()),
            "sending a frame: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The next frame, or `None` after the read timeout.
    fn recv<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        usize::try_from(n).ok().map(|n| &buf[..n])
    }
}

/// The client's side of the link: its socket and the two MAC addresses.
struct Client {
    link: RawLink,
    ethernet: EthernetRepr,
}

/// What one exchange got back.
#[derive(Debug)]
enum Outcome {
    /// The response's first line.
    Answered(String),
    /// The server reset the handshake (nothing listening yet).
    Reset,
}

impl Client {
    fn frame<'a>(&self, from: SocketAddr, to: SocketAddr, tcp: TcpRepr<'a>) -> Frame<'a> {
        Frame {
            ethernet: self.ethernet,
            ..Frame::new(
                IpRepr::new(from.ip(), to.ip()),
                Transport::Tcp(TcpRepr {
                    src_port: from.port(),
                    dst_port: to.port(),
                    ..tcp
                }),
            )
        }
    }

    /// One connection: handshake, `request` in one datagram cut at [`CUTS`] (identification
    /// `ident`; reversed if asked), read the response to its FIN, acknowledge, close.
    fn exchange(
        &self,
        from: SocketAddr,
        to: SocketAddr,
        request: &[u8],
        ident: u32,
        reversed: bool,
    ) -> Outcome {
        let deadline = Instant::now() + EXCHANGE_TIMEOUT;
        let syn = TcpRepr {
            seq: CLIENT_ISN,
            flags: TcpFlags::SYN,
            ..TcpRepr::default()
        };
        self.link.send(&self.frame(from, to, syn).to_vec());
        let mut buf = vec![0u8; 65_536];
        let mut server_next = None::<u32>;
        let mut response = Vec::new();
        let our_next = CLIENT_ISN.wrapping_add(1);
        let data_end = our_next.wrapping_add(u32::try_from(request.len()).expect("small"));
        let ack = |server_next: u32, flags: TcpFlags, seq: u32| TcpRepr {
            seq,
            ack: server_next,
            flags,
            ..TcpRepr::default()
        };
        while Instant::now() < deadline {
            let Some(frame) = self.link.recv(&mut buf) else {
                continue;
            };
            let Ok(seg) = decode_frame(LinkType::Ethernet, frame) else {
                continue;
            };
            let ours = (seg.src, seg.src_port, seg.dst, seg.dst_port)
                == (to.ip(), to.port(), from.ip(), from.port());
            if !ours {
                continue;
            }
            if seg.flags.has(WireFlags::RST) {
                assert!(
                    server_next.is_none(),
                    "{from} -> {to}: reset after the handshake; response so far: {:?}",
                    String::from_utf8_lossy(&response)
                );
                return Outcome::Reset;
            }
            match server_next {
                None => {
                    if !seg.flags.has(WireFlags::SYN) {
                        continue;
                    }
                    let next = seg.seq.wrapping_add(1);
                    server_next = Some(next);
                    let data = self.frame(
                        from,
                        to,
                        TcpRepr {
                            payload: request,
                            ..ack(next, TcpFlags::ACK | TcpFlags::PSH, our_next)
                        },
                    );
                    let mut fragments = data.fragments(ident, CUTS);
                    assert_eq!(fragments.len(), CUTS.len() + 1, "fragments");
                    if reversed {
                        fragments.reverse();
                    }
                    for f in &fragments {
                        self.link.send(f);
                    }
                }
                Some(next) => {
                    if seg.seq != next {
                        // A retransmission, or a segment past a hole: say where we are.
                        self.link.send(
                            &self
                                .frame(from, to, ack(next, TcpFlags::ACK, data_end))
                                .to_vec(),
                        );
                        continue;
                    }
                    response.extend_from_slice(seg.payload);
                    let len = u32::try_from(seg.payload.len()).expect("small");
                    let mut next = next.wrapping_add(len);
                    let fin = seg.flags.has(WireFlags::FIN);
                    if fin {
                        next = next.wrapping_add(1);
                    }
                    server_next = Some(next);
                    if fin {
                        let close = ack(next, TcpFlags::FIN | TcpFlags::ACK, data_end);
                        self.link.send(&self.frame(from, to, close).to_vec());
                        let line = response.split(|&b| b == b'\r').next().unwrap_or(&[]);
                        return Outcome::Answered(String::from_utf8_lossy(line).into_owned());
                    }
                    if len > 0 {
                        self.link.send(
                            &self
                                .frame(from, to, ack(next, TcpFlags::ACK, data_end))
                                .to_vec(),
                        );
                    }
                }
            }
        }
        panic!(
            "{from} -> {to}: no complete answer within {EXCHANGE_TIMEOUT:?}; got {:?}",
            String::from_utf8_lossy(&response)
        );
    }
}

/// The MAC address of `dev` as `ip -o link` shows it in `netns`.
fn mac_of(netns: &linewatch_testkit::lab::Netns, dev: &str) -> [u8; 6] {
    let text = netns
        .ip(&["-o", "link", "show", "dev", dev])
        .unwrap_or_else(|e| panic!("{e}"));
    let field = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC address for {dev}: {text}"));
    let bytes: Vec<u8> = field
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("a hex byte"))
        .collect();
    bytes.try_into().expect("six bytes")
}

/// nginx on `[fd00:202::1]:8080`: the lab's own configuration (its locations and log format),
/// with that one listen and its files (pid, logs, temp) in `v6/` of the lab's directory.
fn start_nginx_v6(lab: &Lab) -> Proc {
    let dir = lab.dir.join("v6");
    let lab_conf = std::fs::read_to_string(lab.dir.join("nginx.conf")).expect("the lab's conf");
    let (old, new) = (lab.dir.display().to_string(), dir.display().to_string());
    let mut listens = 0;
    let conf: Vec<String> = lab_conf
        .lines()
        .filter_map(|line| {
            if !line.trim_start().starts_with("listen ") {
                // The lab's own files become this nginx's, under v6/; `root` stays the site.
                let moved = ["pid ", "error_log ", "access_log ", "_temp_path "]
                    .iter()
                    .any(|key| line.contains(key));
                return Some(if moved {
                    line.replace(&old, &new)
                } else {
                    line.to_owned()
                });
            }
            listens += 1;
            (listens == 1).then(|| format!("        listen [{SERVER_V6}]:{MONITORED_PORT};"))
        })
        .collect();
    assert!(
        listens > 0,
        "the lab's nginx.conf has no listen line:\n{lab_conf}"
    );
    let conf = conf.join("\n");
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join("tmp").join(sub)).expect("mkdir nginx v6 tmp");
    }
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("writing nginx v6's conf");
    let mut cmd = lab.server().exec(path_of("nginx"));
    cmd.arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.join("error.log"));
    Proc::spawn("nginx (IPv6)", cmd)
}

/// Addresses, neighbours and the client's socket.
fn set_up(lab: &Lab) -> Client {
    lab.ip_server(&[
        "addr",
        "add",
        &format!("{SERVER_V6}/{V6_PREFIX_LEN}"),
        "dev",
        &lab.server_veth,
        "nodad",
    ]);
    let client_mac = mac_of(lab.client(), &lab.client_veth);
    let server_mac = mac_of(lab.server(), &lab.server_veth);
    let mac_text = client_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    for addr in [IpAddr::V4(CLIENT_V4), IpAddr::V6(CLIENT_V6)] {
        lab.ip_server(&[
            "neigh",
            "replace",
            &addr.to_string(),
            "lladdr",
            &mac_text,
            "dev",
            &lab.server_veth,
            "nud",
            "permanent",
        ]);
    }
    Client {
        link: RawLink::open(lab.client().name(), &lab.client_veth),
        ethernet: EthernetRepr {
            dst: server_mac,
            src: client_mac,
            tags: Tags::None,
        },
    }
}

/// Sends every case; returns nginx's first response line for each.
fn send_cases(client: &Client) -> Vec<String> {
    let server_v4: Ipv4Addr = SERVER_ADDR.parse().expect("the lab's address");
    let mut answers = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let (client_ip, server_ip) = if case.v6 {
            (IpAddr::V6(CLIENT_V6), IpAddr::V6(SERVER_V6))
        } else {
            (IpAddr::V4(CLIENT_V4), IpAddr::V4(server_v4))
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: fragments.lab\r\nUser-Agent: linewatch-fragments\r\n\
             X-Padding: {}\r\nConnection: close\r\n\r\n",
            case.path,
            "p".repeat(PADDING)
        );
        assert!(
            request.len() + 20 > CUTS[CUTS.len() - 1],
            "cut past the end"
        );
        let to = SocketAddr::new(server_ip, case.port);
        let ident = 0x5000 + u32::try_from(i).expect("few cases");
        let mut attempt = 0u16;
        loop {
            let port = BASE_PORT + 100 * attempt + u16::try_from(i).expect("few cases");
            let from = SocketAddr::new(client_ip, port);
            match client.exchange(from, to, request.as_bytes(), ident, case.reversed) {
                Outcome::Answered(line) => {
                    println!("  {:<42} {line}", case.name);
                    answers.push(line);
                    break;
                }
                Outcome::Reset => {
                    attempt += 1;
                    assert!(attempt < 50, "{}: nginx never accepted", case.name);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    answers
}

/// Where linewatch captures.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `--mirror` on the server's veth.
    Mirror,
    /// `--interface` on a SPAN port of the server's veth.
    Interface,
}

/// What the XDP program's fragment policy does with the cases in `mode`: (datagrams taken,
/// fragments taken ahead of their first, first fragments of the unmonitored port taken after
/// them).
fn policy(mode: Mode) -> (u64, u64, u64) {
    let count = |keep: &dyn Fn(&Case) -> bool| CASES.iter().filter(|c| keep(c)).count() as u64;
    match mode {
        // Every TCP fragment, no state.
        Mode::Mirror => (CASES.len() as u64, 0, 0),
        // A datagram follows its first fragment; the last fragment of a reversed datagram
        // comes first, is taken ahead, and takes the rest of its datagram with it.
        Mode::Interface => (
            count(&|c| c.port == MONITORED_PORT || c.reversed),
            count(&|c| c.reversed),
            count(&|c| c.reversed && c.port != MONITORED_PORT),
        ),
    }
}

/// Runs linewatch in `mode` with `--port 8080` while the cases are sent, and checks its
/// summary against both access logs, and its fragment figures (the XDP program's and the
/// workers') against the fragment [`policy`].
fn fragments_match_access_log(test: &str, mode: Mode) {
    let _serial = serial();
    let Some(lab) = lab_for(test, TOOLS) else {
        return;
    };
    let client = set_up(&lab);
    let _nginx_v6 = start_nginx_v6(&lab);
    let port = MONITORED_PORT.to_string();
    let (option, iface, label) = match mode {
        Mode::Mirror => (
            "--mirror",
            lab.server_veth.clone(),
            "linewatch --mirror vs nginx (fragmented requests)",
        ),
        Mode::Interface => (
            "--interface",
            lab.span_port(),
            "linewatch --interface <SPAN port> vs nginx (fragmented requests)",
        ),
    };
    let args = [option, iface.as_str(), "--port", port.as_str()];
    let lw = Linewatch::ready(&lab, &args, &lab.dir.join("live.json"), live::READY_TIMEOUT);
    println!("\nnginx's answers:");
    let answers = send_cases(&client);
    std::thread::sleep(live::SETTLE);
    let summary = lw.interrupt();

    for (case, answer) in CASES.iter().zip(&answers) {
        assert!(
            answer.starts_with("HTTP/1.1 "),
            "{}: nginx answered {answer:?}",
            case.name
        );
    }
    let mut entries = access_log::read(&lab.access_log());
    entries.extend(access_log::read(&lab.dir.join("v6").join("access.log")));
    assert_eq!(entries.len(), CASES.len(), "nginx's logs: {entries:#?}");
    let truth = Counts::of(&entries, MONITORED_PORT);
    let monitored = CASES.iter().filter(|c| c.port == MONITORED_PORT).count() as u64;
    assert_eq!(
        truth.requests, monitored,
        "nginx logged the monitored cases"
    );
    let ours = Counts::of_summary(&summary);
    let responses = summary["responses"].as_u64().expect("summary `responses`");
    print_table(label, &truth, &ours, responses);
    println!("linewatch fragments: {}", summary["fragments"]);
    assert_eq!(
        ours, truth,
        "{label}: counts differ from nginx's access logs"
    );
    assert_eq!(
        responses, truth.requests,
        "{label}: a response for each request"
    );
    let (reassembled, ahead, unwanted) = policy(mode);
    let per_datagram = CUTS.len() as u64 + 1;
    let xdp = &summary["capture"]["xdp"];
    println!("linewatch capture.xdp: {xdp}");
    let taken = |name: &str| xdp[name].as_u64();
    assert_eq!(
        (
            taken("fragments"),
            taken("fragments_ahead"),
            taken("fragments_unwanted")
        ),
        (
            Some(reassembled * per_datagram),
            Some(ahead),
            Some(unwanted)
        ),
        "{label}: the XDP program's fragments (taken, ahead, unwanted)"
    );
    let figure = |name: &str| summary["fragments"][name].as_u64();
    assert_eq!(
        figure("reassembled"),
        Some(reassembled),
        "{label}: datagrams reassembled"
    );
    assert_eq!(
        figure("fragments"),
        Some(reassembled * per_datagram),
        "{label}: fragments taken by the reassembler"
    );
    for outcome in [
        "timed_out",
        "evicted",
        "overlap",
        "duplicate",
        "too_large",
        "invalid",
    ] {
        assert_eq!(figure(outcome), Some(0), "{label}: fragments {outcome}");
    }
}

/// On the mirror veth the program takes every TCP fragment: all six datagrams are reassembled,
/// the four on the monitored port counted.
#[test]
fn fragmented_requests_count_with_mirror() {
    fragments_match_access_log("fragmented_requests_count_with_mirror", Mode::Mirror);
}

/// On a monitored interface with a port list, a datagram's fragments follow its first
/// fragment: the in-order datagram to 8081 stays with the kernel, the reversed one is taken
/// (its fragments came first) and reassembled but not counted.
#[test]
fn fragmented_requests_count_with_interface() {
    fragments_match_access_log("fragmented_requests_count_with_interface", Mode::Interface);
}
