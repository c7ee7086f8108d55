//! The XDP blocklist against the real kernel: `linewatch_block` attached to a veth, real TCP
//! connections through it.
//!
//! Lab ([`linewatch_testkit::lab`]): three throw-away network namespaces (`lwg-s-<pid>-<n>`,
//! `lwg-a-…`, `lwg-b-…`): a server joined to client A by one veth pair (10.205.1.1/30 –
//! 10.205.1.2/30) and to client B by another (10.205.2.1/30 – 10.205.2.2/30). The server
//! listens on TCP 8080 (echo) and UDP 8081 (echo) in its own thread; clients connect from
//! threads that entered their namespace with setns. The block program runs on the server's veth that
//! faces A. Dropping the lab deletes the namespaces (and with them every device in them), also
//! when a test panics.
//!
//! Needs root: with `CI` set the test fails without it; otherwise it prints a note and passes.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use linewatch_engine::live::xdp::{CaptureOptions, RedirectPorts, XdpProgram, XdpRole};
use linewatch_testkit::lab::{End, Lab};
use linewatch_testkit::tools::{need_programs, need_root};

const CLIENT_A: Ipv4Addr = Ipv4Addr::new(10, 205, 1, 1);
const SERVER_A: Ipv4Addr = Ipv4Addr::new(10, 205, 1, 2);
const CLIENT_B: Ipv4Addr = Ipv4Addr::new(10, 205, 2, 1);
const SERVER_B: Ipv4Addr = Ipv4Addr::new(10, 205, 2, 2);
const TCP_PORT: u16 = 8080;
const UDP_PORT: u16 = 8081;
/// The server's veth that faces client A: where the block program runs.
const BLOCKING_IF: &str = "gsa0";

/// True when the test can run; panics under CI when it cannot.
fn can_run(test: &str) -> bool {
    need_root(test, "network namespaces, veth, XDP") && need_programs(test, &["ip"])
}

/// Runs `f` on a new thread that has entered network namespace `ns` (setns is per thread) and
/// returns what it returns; a panic in `f` is this caller's panic.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    let handle = thread::spawn(move || {
        enter_netns(&path);
        f()
    });
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn enter_netns(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on a valid namespace descriptor; it changes only this thread's namespace.
    let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// The server's namespace (role `s`) joined to client A's (`a`) and client B's (`b`), as the
/// module doc draws it. Dropping it deletes the namespaces.
fn lab() -> Lab {
    let lab = Lab::new("lwg", &["s", "a", "b"]).expect("the lab's namespaces");
    for (client, client_if, server_if, client_ip, server_ip) in [
        ("a", "ga0", BLOCKING_IF, CLIENT_A, SERVER_A),
        ("b", "gb0", "gsb0", CLIENT_B, SERVER_B),
    ] {
        lab.add_veth(
            End::new(client, client_if).addr(&format!("{client_ip}/30")),
            End::new("s", server_if).addr(&format!("{server_ip}/30")),
            1,
        )
        .expect("a veth pair");
    }
    lab
}

/// TCP and UDP echo in the server namespace, on one thread that polls (non-blocking sockets)
/// until dropped; dropping it joins the thread, so no socket keeps the namespace alive.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(lab: &Lab) -> Server {
        let path = format!("/run/netns/{}", lab.ns("s"));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            enter_netns(&path);
            let listener = TcpListener::bind(("0.0.0.0", TCP_PORT)).expect("bind TCP 8080");
            listener.set_nonblocking(true).expect("non-blocking");
            let udp = UdpSocket::bind(("0.0.0.0", UDP_PORT)).expect("bind UDP 8081");
            udp.set_nonblocking(true).expect("non-blocking");
            let _ = ready_tx.send(());
            let mut conns: Vec<TcpStream> = Vec::new();
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((conn, _)) = listener.accept() {
                    conn.set_nonblocking(true).expect("non-blocking");
                    conns.push(conn);
                }
                conns.retain_mut(|c| match c.read(&mut buf) {
                    Ok(0) => false,
                    Ok(n) => c.write_all(&buf[..n]).is_ok(),
                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                });
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&buf[..n], from);
                }
                thread::sleep(Duration::from_millis(2));
            }
        });
        let server = Server {
            stop,
            thread: Some(thread),
        };
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the echo server did not start");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP connection from namespace `ns` to `to`:8080, or why it failed.
fn connect(ns: &str, to: Ipv4Addr, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((to, TCP_PORT));
    in_netns(ns, move || TcpStream::connect_timeout(&addr, timeout))
}

/// Sends a line on `stream` and returns what comes back.
fn echo(stream: &mut TcpStream, line: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream.write_all(line.as_bytes()).expect("send");
    let mut got = vec![0u8; line.len()];
    stream.read_exact(&mut got).expect("echo");
    String::from_utf8_lossy(&got).into_owned()
}

/// A UDP datagram from namespace `ns` to `to`:8081 and its echo.
fn udp_echo(ns: &str, to: Ipv4Addr) -> std::io::Result<String> {
    in_netns(ns, move || {
        let socket = UdpSocket::bind(("0.0.0.0", 0))?;
        socket.set_read_timeout(Some(Duration::from_secs(3)))?;
        socket.send_to(b"udp ping", (to, UDP_PORT))?;
        let mut buf = [0u8; 64];
        let (n, _) = socket.recv_from(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

#[test]
fn blocklist_refuses_a_blocked_sources_new_connections_only() {
    if !can_run("blocklist_refuses_a_blocked_sources_new_connections_only") {
        return;
    }
    let lab = lab();
    let _server = Server::start(&lab);
    let (a, b) = (lab.ns("a").name(), lab.ns("b").name());
    let ok = Duration::from_secs(5);

    // Before the block program: both clients connect.
    let mut early = connect(a, SERVER_A, ok).expect("A connects before the block program");
    assert_eq!(echo(&mut early, "hello\n"), "hello\n");

    let (block, notice) = in_netns(lab.ns("s").name(), || {
        let name = std::ffi::CString::new(BLOCKING_IF).expect("interface name");
        // SAFETY: a NUL-terminated name; the lookup is made in this thread's namespace.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(
            ifindex, 0,
            "{BLOCKING_IF} not found in the server namespace"
        );
        XdpProgram::attach_role(
            XdpRole::Block,
            BLOCKING_IF,
            ifindex,
            &RedirectPorts::Any,
            CaptureOptions::default(),
            false,
        )
    })
    .expect("attach the block program");
    eprintln!(
        "linewatch_block on {BLOCKING_IF}: {} mode{}",
        block.mode(),
        notice.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    let list = block.blocklist().expect("blocklist");
    let a_addr = IpAddr::V4(CLIENT_A);

    // Attached, nothing blocked: A still connects.
    drop(connect(a, SERVER_A, ok).expect("A connects through the block program"));
    assert_eq!(list.dropped(), 0);

    list.insert(a_addr).expect("block A");
    let started = Instant::now();
    let refused = connect(a, SERVER_A, Duration::from_millis(1500));
    match refused {
        Ok(_) => panic!("A's new connection succeeded although A is blocked"),
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::TimedOut,
            "A's connect failed otherwise than by a timeout: {e}"
        ),
    }
    let dropped = list.dropped();
    eprintln!(
        "A's blocked connect timed out after {:?}; {dropped} SYNs dropped",
        started.elapsed()
    );
    assert!(dropped >= 1, "no SYN counted as dropped");
    assert_eq!(list.dropped_from(a_addr), Some(dropped));
    assert_eq!(block.counters().blocked, dropped);

    // A's established connection and its UDP go on; B is not affected.
    assert_eq!(echo(&mut early, "still here\n"), "still here\n");
    assert_eq!(
        udp_echo(a, SERVER_A).expect("UDP from the blocked A"),
        "udp ping"
    );
    let mut from_b = connect(b, SERVER_B, ok).expect("B connects while A is blocked");
    assert_eq!(echo(&mut from_b, "b\n"), "b\n");

    // Unblocked: A connects again, and nothing more is dropped.
    assert_eq!(list.remove(a_addr), Ok(true));
    let mut again = connect(a, SERVER_A, ok).expect("A connects after remove");
    assert_eq!(echo(&mut again, "back\n"), "back\n");
    assert_eq!(list.dropped_from(a_addr), None);
    assert_eq!(list.dropped(), dropped);
    let counters = block.counters();
    assert_eq!(
        counters.redirected, 0,
        "the block program redirected: {counters:?}"
    );
    assert!(counters.seen > dropped, "{counters:?}");
}
