//! Symmetric RSS for `--interface`: both directions of a TCP connection on one rx queue, so
//! one worker sees a request and its response.
//!
//! # Contract
//!
//! - [`RssSetup::apply`] reads the NIC's RSS state with the `SIOCETHTOOL` ioctl
//!   (`ETHTOOL_GRSSH`: hash function, input transformation, key; `ETHTOOL_GRXFH`: the fields
//!   hashed for TCP over IPv4 and IPv6) and says in one line ([`RssSetup::lines`]) what it
//!   found and did. It never fails the run: an interface without RSS (veth, one queue), a
//!   driver that refuses, or a process without root is a line, and capture goes on.
//! - The hash is symmetric when the TCP flow-hash fields come in pairs (source with
//!   destination, for addresses and ports, and nothing else) and either the input
//!   transformation is `RXH_XFRM_SYM_XOR` (Linux 6.8+) or `RXH_XFRM_SYM_OR_XOR` (6.15+), or the
//!   function is Toeplitz with a key whose bits repeat every 16 (Woo & Park's 0x6D5A: a window
//!   of the key is the same 16 or 32 bits later, so swapping the addresses or the ports gives
//!   the same hash). Fields the driver does not report are taken as the default 4-tuple.
//! - Where it is not symmetric, [`RssPolicy::Symmetric`] (the default) makes it so: the fields
//!   to `sdfn` first where they are not paired (`ETHTOOL_SRXFH`), then the transformation
//!   (`symmetric-xor`, else `symmetric-or-xor`), else the Woo & Park key of the NIC's key size
//!   when the function is Toeplitz (`ETHTOOL_SRSSH`). [`RssPolicy::Keep`] changes nothing.
//! - What it changes is restored on every exit: [`RssSetup::restore`] (or drop) on a normal
//!   exit, after SIGINT/SIGTERM and after an error; the guard process on kill -9 and a panic;
//!   the next run's [`RssSetup::apply`] when the guard was killed too. Before each change the
//!   previous value is written to `/run/linewatch/rss-<pid>.state` (whole or not at all), and
//!   the guard is linewatch's mirror watchdog (`mirror::WATCHDOG_ARG`) given that file: its
//!   `watchdog_main` hands it to [`restore_state_file`]. Every change and every restore runs
//!   under the exclusive lock on `/run/linewatch/lock` that the mirror's steps take.
//! - A run changes nothing it cannot undo: without a state file (not root) it changes nothing.
//!
//! # The ioctl layout (include/uapi/linux/ethtool.h)
//!
//! ```text
//!  struct ethtool_rxfh (24 bytes, then rss_config[]):
//!   0 cmd u32 | 4 rss_context u32 | 8 indir_size u32 | 12 key_size u32 |
//!  16 hfunc u8 | 17 input_xfrm u8 (rsvd8[0] before 6.8) | 18 rsvd8[2] | 20 rsvd32 u32 |
//!  24 indirection table: indir_size × u32, then the key: key_size bytes
//!  struct ethtool_rxnfc (192 bytes): 0 cmd u32 | 4 flow_type u32 | 8 data u64 | 16 fs ... |
//!  184 rss_context u32; ETHTOOL_GRXFH/SRXFH use cmd, flow_type and data (the RXH_* bits)
//! ```
//!
//! `ETHTOOL_GRSSH` with both sizes 0 returns the sizes; with `indir_size` 0 and the key size,
//! the key alone. `ETHTOOL_SRSSH` with `indir_size` = `ETH_RXFH_INDIR_NO_CHANGE`, `hfunc` 0
//! (no change) and `key_size` 0 changes only `input_xfrm`; with the key size, the key. Kernels
//! before 6.8 refuse a non-zero `rsvd8[0]`, so a key is written with `input_xfrm` 0 (the key is
//! only changed where the transformation is none).
//!
//! It also holds the text that tells a user what removes an XDP program linewatch found on its
//! interface ([`xdp_owner_fix`]): `ip link set … off` cannot remove one attached through a
//! bpf_link, so it names the process that holds the link.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::mirror::{STATE_DIR, WATCHDOG_ARG};
use super::statefile;
use super::sys::{errno_text, ifindex, rx_queues, siocethtool};

/// `ETHTOOL_GRSSH`: get the RSS hash function, input transformation, table and key.
const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETHTOOL_SRSSH`: set them.
const ETHTOOL_SRSSH: u32 = 0x47;
/// `ETHTOOL_GRXFH`: get the fields hashed for one flow type.
const ETHTOOL_GRXFH: u32 = 0x29;
/// `ETHTOOL_SRXFH`: set them.
const ETHTOOL_SRXFH: u32 = 0x2a;

/// Bytes of `struct ethtool_rxfh` before `rss_config[]`.
const RXFH_LEN: usize = 24;
/// Offsets in `struct ethtool_rxfh`.
const RXFH_INDIR_SIZE: usize = 8;
const RXFH_KEY_SIZE: usize = 12;
const RXFH_HFUNC: usize = 16;
const RXFH_INPUT_XFRM: usize = 17;
/// Bytes of `struct ethtool_rxnfc` (x86-64 and arm64: its flow spec holds a u64).
const RXNFC_LEN: usize = 192;
/// Offsets in `struct ethtool_rxnfc`.
const RXNFC_FLOW_TYPE: usize = 4;
const RXNFC_DATA: usize = 8;

/// `ETH_RXFH_INDIR_NO_CHANGE`: leave the indirection table as it is.
const INDIR_NO_CHANGE: u32 = 0xffff_ffff;
/// `ETH_RSS_HASH_TOP`: the Toeplitz hash function (include/linux/ethtool.h).
const HASH_TOP: u8 = 1;
/// `ETH_RSS_HASH_XOR`, `ETH_RSS_HASH_CRC32`: named in the start line.
const HASH_XOR: u8 = 2;
const HASH_CRC32: u8 = 4;
/// `RXH_XFRM_SYM_XOR` (6.8+) and `RXH_XFRM_SYM_OR_XOR` (6.15+).
const XFRM_SYM_XOR: u8 = 1;
const XFRM_SYM_OR_XOR: u8 = 2;
/// Flow types of `ETHTOOL_GRXFH`: TCP over IPv4 and over IPv6.
const TCP_V4_FLOW: u32 = 0x01;
const TCP_V6_FLOW: u32 = 0x05;
/// The flow-hash fields (`RXH_*`): addresses and ports.
const RXH_IP_SRC: u64 = 1 << 4;
const RXH_IP_DST: u64 = 1 << 5;
const RXH_L4_B_0_1: u64 = 1 << 6;
const RXH_L4_B_2_3: u64 = 1 << 7;
/// `sdfn`: both addresses and both ports, the fields a symmetric transformation pairs.
const RXH_SDFN: u64 = RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1 | RXH_L4_B_2_3;

/// Woo & Park's symmetric Toeplitz key: these two bytes, repeated to the NIC's key size.
const WOO_PARK: [u8; 2] = [0x6d, 0x5a];

/// The TCP flow types whose fields are read, and their names in the state file.
const FLOWS: [(u32, &str); 2] = [(TCP_V4_FLOW, "tcp4"), (TCP_V6_FLOW, "tcp6")];

/// What the line ends with when flows are not kept together.
const UNPAIRED: &str = "responses may reach another worker than their requests";

/// How long a stop waits for the guard to exit after closing its pipe.
const GUARD_EXIT_WAIT: Duration = Duration::from_secs(2);
/// How often it looks.
const GUARD_EXIT_POLL: Duration = Duration::from_millis(5);

/// Fields between the state (field 3 of `/proc/<pid>/stat`) and the start time (field 22).
const STAT_FIELDS_TO_START_TIME: usize = 18;

/// What `--rss` asks of an interface's RSS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RssPolicy {
    /// Make it symmetric where it is not, and restore it at exit.
    #[default]
    Symmetric,
    /// Leave it as it is (RSS managed elsewhere): only say whether it is symmetric.
    Keep,
}

impl std::str::FromStr for RssPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "symmetric" => Ok(RssPolicy::Symmetric),
            "keep" => Ok(RssPolicy::Keep),
            _ => Err(format!("'{s}' is not an RSS policy (symmetric, keep)")),
        }
    }
}

/// A NIC's RSS state, as `ETHTOOL_GRSSH` and `ETHTOOL_GRXFH` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RssConfig {
    /// `ETH_RSS_HASH_*` of the active function (0: the driver does not say).
    hfunc: u8,
    /// `RXH_XFRM_*` (always 0 before Linux 6.8, where the byte was reserved).
    input_xfrm: u8,
    key: Vec<u8>,
    /// The `RXH_*` fields of each TCP flow type, None where the driver does not report them.
    fields: [Option<u64>; FLOWS.len()],
}

/// True when the fields hash sources and destinations alike: each of the address and port
/// pairs whole or absent, and nothing else (the kernel's rule for a symmetric transformation).
fn fields_paired(fields: u64) -> bool {
    fields & !RXH_SDFN == 0
        && (fields & RXH_IP_SRC == 0) == (fields & RXH_IP_DST == 0)
        && (fields & RXH_L4_B_0_1 == 0) == (fields & RXH_L4_B_2_3 == 0)
}

/// True for a Toeplitz key whose bits repeat every 16: then a key window is the same 16 and 32
/// bits on, and swapping ports (16 bits apart) or addresses (32 or 128) keeps the hash.
fn key_symmetric(key: &[u8]) -> bool {
    key.len() >= WOO_PARK.len() && key.iter().skip(2).zip(key).all(|(a, b)| a == b)
}

/// The Woo & Park key of `len` bytes.
fn woo_park_key(len: usize) -> Vec<u8> {
    WOO_PARK.iter().copied().cycle().take(len).collect()
}

fn xfrm_name(xfrm: u8) -> String {
    match xfrm {
        0 => "none".to_owned(),
        XFRM_SYM_XOR => "symmetric-xor".to_owned(),
        XFRM_SYM_OR_XOR => "symmetric-or-xor".to_owned(),
        other => format!("{other:#x}"),
    }
}

fn hfunc_name(hfunc: u8) -> String {
    match hfunc {
        0 => "unknown".to_owned(),
        HASH_TOP => "Toeplitz".to_owned(),
        HASH_XOR => "xor".to_owned(),
        HASH_CRC32 => "crc32".to_owned(),
        other => format!("{other:#x}"),
    }
}

impl RssConfig {
    /// Fields that are not paired: (index in [`FLOWS`], their value).
    fn unpaired_fields(&self) -> Vec<(usize, u64)> {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.filter(|&f| !fields_paired(f)).map(|f| (i, f)))
            .collect()
    }

    /// How the hash is symmetric, or None.
    fn symmetric(&self) -> Option<String> {
        if !self.unpaired_fields().is_empty() {
            return None;
        }
        if self.input_xfrm & (XFRM_SYM_XOR | XFRM_SYM_OR_XOR) != 0 {
            return Some(format!("xfrm {}", xfrm_name(self.input_xfrm)));
        }
        (self.hfunc == HASH_TOP && key_symmetric(&self.key)).then(|| {
            format!(
                "Toeplitz key {}… repeats every 16 bits",
                hex(&self.key[..self.key.len().min(4)])
            )
        })
    }

    /// What makes it not symmetric, for the line.
    fn asymmetry(&self) -> String {
        let mut why = Vec::new();
        for (i, f) in self.unpaired_fields() {
            why.push(format!("{} hashes fields {f:#x}, not in pairs", FLOWS[i].1));
        }
        why.push(format!("xfrm {}", xfrm_name(self.input_xfrm)));
        if self.hfunc == HASH_TOP {
            why.push("Toeplitz key not symmetric".to_owned());
        } else {
            why.push(format!("hash function {}", hfunc_name(self.hfunc)));
        }
        why.join(", ")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

// ---- the ioctl buffers ----

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_ne_bytes(b)
}

/// A `struct ethtool_rxfh` with room for `indir_size` table entries and `key` (its bytes, or
/// zeros for a read of `key_len` bytes).
fn rxfh(
    cmd: u32,
    indir_size: u32,
    hfunc: u8,
    input_xfrm: u8,
    key: &[u8],
    key_len: usize,
) -> Vec<u8> {
    let table = if indir_size == INDIR_NO_CHANGE {
        0
    } else {
        indir_size as usize * 4
    };
    let mut buf = vec![0u8; RXFH_LEN + table + key_len];
    put_u32(&mut buf, 0, cmd);
    put_u32(&mut buf, RXFH_INDIR_SIZE, indir_size);
    put_u32(&mut buf, RXFH_KEY_SIZE, u32::try_from(key_len).unwrap_or(0));
    buf[RXFH_HFUNC] = hfunc;
    buf[RXFH_INPUT_XFRM] = input_xfrm;
    buf[RXFH_LEN + table..][..key.len()].copy_from_slice(key);
    buf
}

/// A `struct ethtool_rxnfc` for `ETHTOOL_GRXFH`/`SRXFH`.
fn rxnfc(cmd: u32, flow_type: u32, data: u64) -> [u8; RXNFC_LEN] {
    let mut buf = [0u8; RXNFC_LEN];
    put_u32(&mut buf, 0, cmd);
    put_u32(&mut buf, RXNFC_FLOW_TYPE, flow_type);
    buf[RXNFC_DATA..RXNFC_DATA + 8].copy_from_slice(&data.to_ne_bytes());
    buf
}

fn rxnfc_data(buf: &[u8; RXNFC_LEN]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[RXNFC_DATA..RXNFC_DATA + 8]);
    u64::from_ne_bytes(b)
}

/// Reads the RSS state of `iface`; the errno of `ETHTOOL_GRSSH` when the driver has none.
fn read_config(iface: &str) -> Result<RssConfig, i32> {
    let mut sizes = rxfh(ETHTOOL_GRSSH, 0, 0, 0, &[], 0);
    siocethtool(iface, sizes.as_mut_slice())?;
    let key_len = get_u32(&sizes, RXFH_KEY_SIZE) as usize;
    let mut config = RssConfig {
        hfunc: sizes[RXFH_HFUNC],
        input_xfrm: sizes[RXFH_INPUT_XFRM],
        key: Vec::new(),
        fields: [None; FLOWS.len()],
    };
    if key_len > 0 {
        let mut with_key = rxfh(ETHTOOL_GRSSH, 0, 0, 0, &[], key_len);
        siocethtool(iface, with_key.as_mut_slice())?;
        config.key = with_key[RXFH_LEN..RXFH_LEN + key_len].to_vec();
    }
    for (slot, (flow, _)) in config.fields.iter_mut().zip(FLOWS) {
        let mut buf = rxnfc(ETHTOOL_GRXFH, flow, 0);
        *slot = siocethtool(iface, &mut buf).ok().map(|()| rxnfc_data(&buf));
    }
    Ok(config)
}

/// `ETHTOOL_SRSSH` of the input transformation, or (with `key` not empty) of the key.
fn set_rxfh(iface: &str, input_xfrm: u8, key: &[u8]) -> Result<(), i32> {
    let mut buf = rxfh(
        ETHTOOL_SRSSH,
        INDIR_NO_CHANGE,
        0,
        input_xfrm,
        key,
        key.len(),
    );
    siocethtool(iface, buf.as_mut_slice())
}

/// `ETHTOOL_SRXFH` of the fields of `flow`.
fn set_fields(iface: &str, flow: u32, fields: u64) -> Result<(), i32> {
    let mut buf = rxnfc(ETHTOOL_SRXFH, flow, fields);
    siocethtool(iface, &mut buf)
}

/// The three things done to a NIC: the ioctls ([`Ethtool`]), or a driver the unit tests play.
trait Nic {
    fn read(&self, iface: &str) -> Result<RssConfig, i32>;
    fn set_rxfh(&self, iface: &str, input_xfrm: u8, key: &[u8]) -> Result<(), i32>;
    fn set_fields(&self, iface: &str, flow: u32, fields: u64) -> Result<(), i32>;
}

/// The NIC through `SIOCETHTOOL`.
struct Ethtool;

impl Nic for Ethtool {
    fn read(&self, iface: &str) -> Result<RssConfig, i32> {
        read_config(iface)
    }
    fn set_rxfh(&self, iface: &str, input_xfrm: u8, key: &[u8]) -> Result<(), i32> {
        set_rxfh(iface, input_xfrm, key)
    }
    fn set_fields(&self, iface: &str, flow: u32, fields: u64) -> Result<(), i32> {
        set_fields(iface, flow, fields)
    }
}

// ---- the state file ----

/// What one run changed (the previous values), as its state file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Saved {
    pid: u32,
    start_time: u64,
    guard_pid: u32,
    guard_start_time: u64,
    /// `readlink /proc/self/ns/net` of the run.
    netns: String,
    interface: String,
    /// The input transformation before this run set it.
    input_xfrm: Option<u8>,
    /// The key before this run set it.
    key: Option<Vec<u8>>,
    /// The fields of each flow type (index in [`FLOWS`]) before this run set them.
    fields: Vec<(usize, u64)>,
}

impl Saved {
    fn render(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|&(i, f)| format!("{}:{f:#x}", FLOWS[i].1))
            .collect();
        format!(
            "# linewatch --interface: the RSS setting this run changed, as it was before \
             (restored on exit, by its guard, or by the next run)\nversion=1\npid={}\n\
             start_time={}\nguard_pid={}\nguard_start_time={}\nnetns={}\ninterface={}\n\
             input_xfrm={}\nkey={}\nfields={}\n",
            self.pid,
            self.start_time,
            self.guard_pid,
            self.guard_start_time,
            self.netns,
            self.interface,
            self.input_xfrm.map_or("-".to_owned(), |x| x.to_string()),
            self.key.as_deref().map_or("-".to_owned(), hex),
            fields.join(" ")
        )
    }

    fn parse(text: &str) -> Option<Saved> {
        let get = |key: &str| statefile::field(text, key);
        if get("version")? != "1" {
            return None;
        }
        let mut fields = Vec::new();
        for f in get("fields")?.split_whitespace() {
            let (flow, value) = f.split_once(':')?;
            let i = FLOWS.iter().position(|&(_, name)| name == flow)?;
            fields.push((i, u64::from_str_radix(value.strip_prefix("0x")?, 16).ok()?));
        }
        let interface = get("interface")?.to_owned();
        let name_ok = !interface.is_empty()
            && interface.len() < libc::IFNAMSIZ
            && !interface.contains(['/', ' ']);
        let saved = Saved {
            pid: get("pid")?.parse().ok()?,
            start_time: get("start_time")?.parse().ok()?,
            guard_pid: get("guard_pid")?.parse().ok()?,
            guard_start_time: get("guard_start_time")?.parse().ok()?,
            netns: get("netns")?.to_owned(),
            interface,
            input_xfrm: match get("input_xfrm")? {
                "-" => None,
                x => Some(x.parse().ok()?),
            },
            key: match get("key")? {
                "-" => None,
                k => Some(unhex(k)?),
            },
            fields,
        };
        name_ok.then_some(saved)
    }

    /// Puts back what the file lists: the transformation or key first (a symmetric
    /// transformation holds the fields to pairs), then the fields. An interface that is gone
    /// took the setting with it. Returns what was restored, or the errors.
    fn restore(&self, nic: &dyn Nic) -> Result<String, String> {
        let iface = self.interface.as_str();
        let mut done = Vec::new();
        let mut errors = Vec::new();
        let mut step = |what: String, r: Result<(), i32>| match r {
            Ok(()) => done.push(what),
            Err(libc::ENODEV) => {}
            Err(e) => errors.push(format!("{what}: {}", errno_text(e))),
        };
        if let Some(key) = &self.key {
            step(
                format!("key {}…", hex(&key[..key.len().min(4)])),
                nic.set_rxfh(iface, 0, key),
            );
        }
        if let Some(x) = self.input_xfrm {
            step(
                format!("xfrm {}", xfrm_name(x)),
                nic.set_rxfh(iface, x, &[]),
            );
        }
        for &(i, f) in self.fields.iter().rev() {
            let (flow, name) = FLOWS[i];
            step(
                format!("{name} fields {f:#x}"),
                nic.set_fields(iface, flow, f),
            );
        }
        if errors.is_empty() {
            Ok(done.join(", "))
        } else {
            Err(errors.join("; "))
        }
    }
}

fn state_path(pid: u32) -> PathBuf {
    Path::new(STATE_DIR).join(format!("rss-{pid}.state"))
}

/// True for `/run/linewatch/rss-<digits>.state`: the state files this module writes, which
/// the mirror watchdog hands to [`restore_state_file`].
pub fn is_state_file(path: &Path) -> bool {
    statefile::is_pid_file(path, STATE_DIR, "rss-")
}

/// The exclusive lock the mirror's steps take too; creates the state directory (root's).
fn lock() -> io::Result<fs::File> {
    statefile::ensure_dir(STATE_DIR)?;
    statefile::lock(STATE_DIR)
}

/// Start time of process `pid` (field 22 of /proc/pid/stat), None when it is gone or a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    if matches!(fields.next()?, "Z" | "X") {
        return None;
    }
    fields.nth(STAT_FIELDS_TO_START_TIME)?.parse().ok()
}

fn own_netns() -> String {
    fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Entry point of the guard (the mirror watchdog given an RSS state file, once its run has
/// gone or closed the pipe): restores what the file lists and deletes it. True when nothing is
/// left to restore.
pub fn restore_state_file(path: &Path) -> bool {
    let _lock = lock().ok();
    let Ok(text) = fs::read_to_string(path) else {
        return true; // the run restored everything itself
    };
    let Some(saved) = Saved::parse(&text) else {
        return false;
    };
    let ok = saved.restore(&Ethtool).is_ok();
    if ok {
        let _ = fs::remove_file(path);
    }
    ok
}

/// Restores what runs that are gone left in this network namespace (their guard killed too),
/// under the lock; one line per file.
fn restore_leftovers(netns: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(dir) = fs::read_dir(STATE_DIR) else {
        return lines;
    };
    for path in dir.flatten().map(|e| e.path()).filter(|p| is_state_file(p)) {
        let Some(saved) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| Saved::parse(&t))
        else {
            if fs::remove_file(&path).is_ok() {
                lines.push(format!(
                    "removed unreadable RSS state file {}",
                    path.display()
                ));
            }
            continue;
        };
        if start_time(saved.pid) == Some(saved.start_time) || saved.netns != netns {
            continue; // still running, or another namespace's interface
        }
        match saved.restore(&Ethtool) {
            Ok(what) => {
                let _ = fs::remove_file(&path);
                lines.push(format!(
                    "RSS on {}: restored what linewatch pid {} changed before it was killed ({})",
                    saved.interface,
                    saved.pid,
                    if what.is_empty() {
                        "nothing was left"
                    } else {
                        &what
                    }
                ));
            }
            Err(e) => lines.push(format!(
                "RSS on {}: could not restore what linewatch pid {} changed: {e} (set it back \
                 with ethtool -X/-N, then delete {})",
                saved.interface,
                saved.pid,
                path.display()
            )),
        }
    }
    lines
}

// ---- the guard process ----

/// The mirror watchdog run as this setup's guard, and the write end of its stdin pipe.
#[derive(Debug)]
struct Guard {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Guard {
    /// Starts this executable as the guard of `path`, in a process group of its own so that a
    /// Ctrl-C to the terminal never reaches it, not even before the watchdog ignores SIGINT
    /// and SIGHUP itself (it stays in the session: a group leader cannot setsid, and needs not).
    fn spawn(path: &Path) -> io::Result<Guard> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(WATCHDOG_ARG)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn()?;
        // std opens the pipe close-on-exec: no other child inherits the write end.
        let pipe = child.stdin.take();
        Ok(Guard { child, pipe })
    }

    /// Closes the pipe (the guard finds the state file gone and exits) and reaps it.
    fn stop(mut self) {
        drop(self.pipe.take());
        let deadline = Instant::now() + GUARD_EXIT_WAIT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(GUARD_EXIT_POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the set-up ----

/// What `--interface` did to its NIC's RSS: the lines that say so, and what to restore.
#[derive(Debug)]
pub struct RssSetup {
    lines: Vec<String>,
    /// How the hash is symmetric, when it is (already, or made so).
    symmetric: Option<String>,
    /// What this run changed, written to `path` before each change.
    saved: Option<Saved>,
    path: PathBuf,
    guard: Option<Guard>,
}

impl RssSetup {
    /// Restores what killed runs left, reads the RSS state of `iface`, and makes it symmetric
    /// if `policy` says so (see the module doc). Never fails: what it could not do is a line.
    /// An interface that does not exist, or has one rx queue, gives no line.
    pub fn apply(iface: &str, policy: RssPolicy) -> RssSetup {
        let pid = std::process::id();
        let mut setup = RssSetup {
            lines: Vec::new(),
            symmetric: None,
            saved: None,
            path: state_path(pid),
            guard: None,
        };
        if ifindex(iface).is_err() {
            return setup;
        }
        let netns = own_netns();
        // Not root: no lock, no leftovers to read, and nothing will be changed.
        let lock = lock().ok();
        if lock.is_some() {
            setup.lines.extend(restore_leftovers(&netns));
        }
        if rx_queues(iface) <= 1 {
            return setup;
        }
        let config = match read_config(iface) {
            Ok(c) => c,
            Err(e) => {
                let what = if e == libc::EOPNOTSUPP {
                    "not supported by the driver"
                } else {
                    "cannot be read"
                };
                setup.lines.push(format!(
                    "RSS on {iface}: {what} ({}): {UNPAIRED}",
                    errno_text(e)
                ));
                return setup;
            }
        };
        if let Some(how) = config.symmetric() {
            let kept = if policy == RssPolicy::Keep {
                " (--rss keep)"
            } else {
                ""
            };
            setup
                .lines
                .push(format!("RSS on {iface}: symmetric already{kept} ({how})"));
            setup.symmetric = Some(how.to_string());
            return setup;
        }
        if policy == RssPolicy::Keep {
            setup.lines.push(format!(
                "RSS on {iface}: left as it is (--rss keep), not symmetric ({}): {UNPAIRED}",
                config.asymmetry()
            ));
            return setup;
        }
        if lock.is_none() {
            setup.lines.push(format!(
                "RSS on {iface}: not symmetric ({}), and left so: changing it needs root (to \
                 keep a note in {STATE_DIR} that restores it): {UNPAIRED}",
                config.asymmetry()
            ));
            return setup;
        }
        let saved = Saved {
            pid,
            start_time: start_time(pid).unwrap_or(0),
            guard_pid: 0,
            guard_start_time: 0,
            netns,
            interface: iface.to_owned(),
            input_xfrm: None,
            key: None,
            fields: Vec::new(),
        };
        let made = setup
            .start_guard(saved)
            .and_then(|()| setup.make_symmetric(&Ethtool, iface, &config));
        let line = match made {
            Ok(how) => {
                let line = format!("RSS on {iface}: made symmetric ({how}); restored at exit");
                setup.symmetric = Some(how);
                line
            }
            Err(why) => format!("RSS on {iface}: cannot make it symmetric ({why}): {UNPAIRED}"),
        };
        setup.lines.push(line);
        drop(lock);
        if setup.saved.is_none() {
            // Nothing is left changed; the guard takes the lock to look, so only now.
            if let Some(guard) = setup.guard.take() {
                guard.stop();
            }
        }
        setup
    }

    /// How the NIC's hash keeps a connection's two directions on one queue, if it does.
    pub fn symmetric(&self) -> Option<&str> {
        self.symmetric.as_deref()
    }

    /// The lines to print at start (without the `linewatch: ` prefix).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Writes the state file with `saved` (the previous values of what is about to change).
    fn save(&mut self, saved: Saved) -> Result<(), String> {
        statefile::write_whole(&self.path, &saved.render())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.saved = Some(saved);
        Ok(())
    }

    /// Writes the state file (nothing changed yet) and starts the guard on it.
    fn start_guard(&mut self, saved: Saved) -> Result<(), String> {
        self.save(saved.clone())?;
        let guard = Guard::spawn(&self.path).map_err(|e| format!("cannot start its guard: {e}"))?;
        let saved = Saved {
            guard_pid: guard.child.id(),
            guard_start_time: start_time(guard.child.id()).unwrap_or(0),
            ..saved
        };
        self.guard = Some(guard);
        self.save(saved)
    }

    /// Each change is written to the state file before it is made (the file and its guard are
    /// there already). Returns how it is symmetric now, or why not (then nothing is left
    /// changed).
    fn make_symmetric(
        &mut self,
        nic: &dyn Nic,
        iface: &str,
        config: &RssConfig,
    ) -> Result<String, String> {
        let Some(mut saved) = self.saved.clone() else {
            return Err("no state file".to_owned());
        };
        let mut how = Vec::new();
        let mut failures = Vec::new();
        let unpaired = config.unpaired_fields();
        if !unpaired.is_empty() {
            saved.fields.clone_from(&unpaired);
            self.save(saved.clone())?;
            for &(i, _) in &unpaired {
                let (flow, name) = FLOWS[i];
                if let Err(e) = nic.set_fields(iface, flow, RXH_SDFN) {
                    failures.push(format!("{name} fields sdfn: {}", errno_text(e)));
                }
            }
            if failures.is_empty() {
                how.push("flow hash fields sdfn".to_owned());
            }
        }
        if failures.is_empty() {
            match self.set_symmetric_hash(nic, iface, config, &mut saved) {
                Ok(h) => how.push(h),
                Err(why) => failures.push(why),
            }
        }
        if !failures.is_empty() {
            let _ = self.undo(nic);
            return Err(failures.join("; "));
        }
        // Read back: a driver may take a setting it does not apply.
        match nic.read(iface).map(|c| c.symmetric()) {
            Ok(Some(_)) => Ok(how.join(", then ")),
            Ok(None) | Err(_) => {
                let _ = self.undo(nic);
                Err(format!(
                    "the driver took {} but does not report it",
                    how.join(", ")
                ))
            }
        }
    }

    /// The transformation (symmetric-xor, else symmetric-or-xor), else the Woo & Park key.
    fn set_symmetric_hash(
        &mut self,
        nic: &dyn Nic,
        iface: &str,
        config: &RssConfig,
        saved: &mut Saved,
    ) -> Result<String, String> {
        let mut failures = Vec::new();
        for xfrm in [XFRM_SYM_XOR, XFRM_SYM_OR_XOR] {
            saved.input_xfrm = Some(config.input_xfrm);
            self.save(saved.clone())?;
            match nic.set_rxfh(iface, xfrm, &[]) {
                Ok(()) => return Ok(format!("xfrm {}", xfrm_name(xfrm))),
                Err(e) => failures.push(format!("xfrm {}: {}", xfrm_name(xfrm), errno_text(e))),
            }
        }
        saved.input_xfrm = None;
        self.save(saved.clone())?;
        if config.hfunc != HASH_TOP {
            failures.push(format!(
                "key: the hash function is {}, not Toeplitz",
                hfunc_name(config.hfunc)
            ));
        } else if config.key.is_empty() {
            failures.push("key: the driver has no key to set".to_owned());
        } else {
            // Written with input_xfrm 0 (reserved before 6.8): it was none, or the hash would
            // be symmetric already (a symmetric transformation keeps the fields in pairs).
            saved.key = Some(config.key.clone());
            self.save(saved.clone())?;
            let key = woo_park_key(config.key.len());
            match nic.set_rxfh(iface, 0, &key) {
                Ok(()) => {
                    return Ok(format!(
                        "Woo & Park Toeplitz key 6d5a… of {} bytes",
                        key.len()
                    ))
                }
                Err(e) => failures.push(format!("key: {}", errno_text(e))),
            }
            saved.key = None;
            self.save(saved.clone())?;
        }
        Err(failures.join("; "))
    }

    /// Puts back what this run changed and stops the guard. A second call does nothing.
    /// Returns what could not be restored (the guard then retries, and the next run after it).
    pub fn restore(&mut self) -> Result<(), String> {
        if self.saved.is_none() && self.guard.is_none() {
            return Ok(());
        }
        let lock = lock().ok();
        let result = self.undo(&Ethtool);
        drop(lock);
        if let Some(guard) = self.guard.take() {
            guard.stop();
        }
        result
    }

    /// [`RssSetup::restore`] without the lock or the guard (the caller holds the lock):
    /// deletes the state file once everything is back.
    fn undo(&mut self, nic: &dyn Nic) -> Result<(), String> {
        let Some(saved) = self.saved.take() else {
            return Ok(());
        };
        let result = saved.restore(nic);
        if result.is_ok() {
            let _ = fs::remove_file(&self.path);
        }
        result.map(drop).map_err(|e| {
            format!(
                "could not restore the RSS setting of {}: {e} (set it back with ethtool -X/-N)",
                saved.interface
            )
        })
    }
}

impl Drop for RssSetup {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; the guard and the next run retry.
        let _ = self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of `struct ethtool_rxfh` and `struct ethtool_rxnfc`, and the constants, as
    /// include/uapi/linux/ethtool.h (Linux 6.17) has them; checked against gcc's offsetof on
    /// the machine's headers (which predate input_xfrm: rsvd8[0] sits at its offset).
    #[test]
    fn ioctl_constants_match_the_kernel() {
        assert_eq!((ETHTOOL_GRXFH, ETHTOOL_SRXFH), (0x29, 0x2a));
        assert_eq!((ETHTOOL_GRSSH, ETHTOOL_SRSSH), (0x46, 0x47));
        assert_eq!((TCP_V4_FLOW, TCP_V6_FLOW), (1, 5));
        assert_eq!(RXH_SDFN, 0xf0);
        assert_eq!((XFRM_SYM_XOR, XFRM_SYM_OR_XOR), (1, 2));
        assert_eq!((HASH_TOP, HASH_XOR, HASH_CRC32), (1, 2, 4));
        assert_eq!(INDIR_NO_CHANGE, u32::MAX);
        assert_eq!((RXFH_LEN, RXNFC_LEN), (24, 192));
    }

    #[test]
    fn rxfh_byte_layout() {
        // A write of the transformation alone: no table, no key, hfunc "no change".
        let b = rxfh(ETHTOOL_SRSSH, INDIR_NO_CHANGE, 0, XFRM_SYM_XOR, &[], 0);
        assert_eq!(b.len(), 24);
        let mut want = Vec::new();
        want.extend_from_slice(&0x47u32.to_ne_bytes()); // cmd
        want.extend_from_slice(&0u32.to_ne_bytes()); // rss_context
        want.extend_from_slice(&u32::MAX.to_ne_bytes()); // indir_size: no change
        want.extend_from_slice(&0u32.to_ne_bytes()); // key_size
        want.extend_from_slice(&[0, 1, 0, 0]); // hfunc, input_xfrm, rsvd8[2]
        want.extend_from_slice(&0u32.to_ne_bytes()); // rsvd32
        assert_eq!(b, want);

        // A key write: the key right after the header (no table).
        let key = woo_park_key(40);
        let b = rxfh(ETHTOOL_SRSSH, INDIR_NO_CHANGE, 0, 0, &key, key.len());
        assert_eq!(b.len(), 24 + 40);
        assert_eq!(get_u32(&b, 12), 40);
        assert_eq!(b[16..24], [0; 8]);
        assert_eq!(&b[24..], key.as_slice());

        // A read of the table and key: room for both, table first.
        let b = rxfh(ETHTOOL_GRSSH, 128, 0, 0, &[], 52);
        assert_eq!(b.len(), 24 + 128 * 4 + 52);
        assert_eq!(
            (get_u32(&b, 0), get_u32(&b, 8), get_u32(&b, 12)),
            (0x46, 128, 52)
        );
    }

    #[test]
    fn rxnfc_byte_layout() {
        let b = rxnfc(ETHTOOL_SRXFH, TCP_V6_FLOW, RXH_SDFN);
        assert_eq!(get_u32(&b, 0), 0x2a);
        assert_eq!(get_u32(&b, 4), 5);
        assert_eq!(b[8..16], 0xf0u64.to_ne_bytes());
        assert!(b[16..].iter().all(|&x| x == 0));
        assert_eq!(rxnfc_data(&b), 0xf0);
    }

    /// `GRSSH` answers as an ice NIC on 6.8 would, written into the buffer by hand.
    fn answered(hfunc: u8, xfrm: u8, key: &[u8]) -> Vec<u8> {
        let mut b = rxfh(ETHTOOL_GRSSH, 0, 0, 0, &[], key.len());
        put_u32(&mut b, RXFH_INDIR_SIZE, 512);
        b[RXFH_HFUNC] = hfunc;
        b[RXFH_INPUT_XFRM] = xfrm;
        b[RXFH_LEN..].copy_from_slice(key);
        b
    }

    fn config_of(image: &[u8], fields: u64) -> RssConfig {
        let key_len = get_u32(image, RXFH_KEY_SIZE) as usize;
        RssConfig {
            hfunc: image[RXFH_HFUNC],
            input_xfrm: image[RXFH_INPUT_XFRM],
            key: image[RXFH_LEN..RXFH_LEN + key_len].to_vec(),
            fields: [Some(fields); 2],
        }
    }

    /// Microsoft's default Toeplitz key (the one most drivers start from): not symmetric.
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    #[test]
    fn symmetric_decision() {
        let default = config_of(&answered(HASH_TOP, 0, &MS_KEY), RXH_SDFN);
        assert_eq!(default.symmetric(), None);
        assert!(default
            .asymmetry()
            .contains("xfrm none, Toeplitz key not symmetric"));

        let xor = config_of(&answered(HASH_TOP, XFRM_SYM_XOR, &MS_KEY), RXH_SDFN);
        assert_eq!(xor.symmetric().as_deref(), Some("xfrm symmetric-xor"));
        // mlx5 (6.15+): xor hash with symmetric-or-xor.
        let or_xor = config_of(&answered(HASH_XOR, XFRM_SYM_OR_XOR, &[]), RXH_SDFN);
        assert_eq!(or_xor.symmetric().as_deref(), Some("xfrm symmetric-or-xor"));

        // ixgbe (40 bytes) and i40e (52 bytes) with the Woo & Park key.
        for len in [40, 52] {
            let wp = config_of(&answered(HASH_TOP, 0, &woo_park_key(len)), RXH_SDFN);
            assert!(wp
                .symmetric()
                .is_some_and(|h| h.starts_with("Toeplitz key 6d5a6d5a")));
        }
        // The same key under another function does not count.
        let crc = config_of(&answered(HASH_CRC32, 0, &woo_park_key(40)), RXH_SDFN);
        assert_eq!(crc.symmetric(), None);

        // Fields not in pairs break any of them: source address only, or the L3 protocol.
        let src_only = config_of(&answered(HASH_TOP, XFRM_SYM_XOR, &MS_KEY), RXH_IP_SRC);
        assert_eq!(src_only.symmetric(), None);
        assert_eq!(src_only.unpaired_fields(), vec![(0, 0x10), (1, 0x10)]);
        assert!(!fields_paired(RXH_SDFN | (1 << 3)));
        assert!(fields_paired(RXH_IP_SRC | RXH_IP_DST));
        assert!(fields_paired(0));
        assert!(!fields_paired(RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1));
    }

    #[test]
    fn woo_park_key_repeats() {
        let k = woo_park_key(52);
        assert_eq!(k.len(), 52);
        assert_eq!(&k[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        assert!(key_symmetric(&k));
        assert!(!key_symmetric(&MS_KEY));
        assert!(!key_symmetric(&[]));
    }

    /// The Woo & Park key really gives swapped tuples the same Toeplitz hash (and Microsoft's
    /// does not): the property the decision relies on, computed.
    #[test]
    fn toeplitz_with_a_symmetric_key_is_symmetric() {
        fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
            let mut hash = 0u32;
            for (i, byte) in input.iter().enumerate() {
                for bit in 0..8 {
                    if byte & (0x80 >> bit) != 0 {
                        let start = i * 8 + bit;
                        let mut window = 0u32;
                        for j in 0..32 {
                            let k = start + j;
                            let set = key.get(k / 8).is_some_and(|b| b & (0x80 >> (k % 8)) != 0);
                            window = (window << 1) | u32::from(set);
                        }
                        hash ^= window;
                    }
                }
            }
            hash
        }
        let forward = [10, 0, 0, 1, 192, 168, 7, 9, 0xc3, 0x50, 0, 80];
        let reverse = [192, 168, 7, 9, 10, 0, 0, 1, 0, 80, 0xc3, 0x50];
        let wp = woo_park_key(40);
        assert_eq!(toeplitz(&wp, &forward), toeplitz(&wp, &reverse));
        assert_ne!(toeplitz(&MS_KEY, &forward), toeplitz(&MS_KEY, &reverse));
    }

    fn sample() -> Saved {
        Saved {
            pid: 4242,
            start_time: 99,
            guard_pid: 4243,
            guard_start_time: 100,
            netns: "net:[4026531840]".into(),
            interface: "eth0".into(),
            input_xfrm: Some(0),
            key: Some(MS_KEY[..8].to_vec()),
            fields: vec![(0, 0x30), (1, 0x10)],
        }
    }

    #[test]
    fn state_round_trips() {
        let s = sample();
        assert_eq!(Saved::parse(&s.render()), Some(s.clone()));
        let bare = Saved {
            input_xfrm: None,
            key: None,
            fields: Vec::new(),
            ..s
        };
        assert_eq!(Saved::parse(&bare.render()), Some(bare));
    }

    #[test]
    fn state_format_is_version_1() {
        assert_eq!(
            sample().render(),
            "# linewatch --interface: the RSS setting this run changed, as it was before \
             (restored on exit, by its guard, or by the next run)\nversion=1\npid=4242\n\
             start_time=99\nguard_pid=4243\nguard_start_time=100\nnetns=net:[4026531840]\n\
             interface=eth0\ninput_xfrm=0\nkey=6d5a56da255b0ec2\nfields=tcp4:0x30 tcp6:0x10\n"
        );
        let text = sample().render();
        assert_eq!(Saved::parse(&text.replace("version=1", "version=2")), None);
        assert_eq!(Saved::parse(&text.replace("eth0", "a/b")), None);
        assert_eq!(Saved::parse(&text.replace("tcp4:", "udp9:")), None);
        assert_eq!(Saved::parse(&text.replace("key=6d5a", "key=6d5")), None);
    }

    #[test]
    fn state_file_paths() {
        assert!(is_state_file(&state_path(12)));
        assert!(!is_state_file(Path::new("/run/linewatch/mirror-12.state")));
        assert!(!is_state_file(Path::new("/run/linewatch/rss-.state")));
        assert!(!is_state_file(Path::new("/tmp/rss-12.state")));
    }

    /// The ioctl plumbing against the kernel, no root needed: lo has no RSS (GRSSH answers
    /// EOPNOTSUPP), an interface that does not exist ENODEV.
    #[test]
    fn reading_interfaces_without_rss() {
        assert_eq!(read_config("lo"), Err(libc::EOPNOTSUPP));
        assert_eq!(read_config("lwnone0"), Err(libc::ENODEV));
        let setup = RssSetup::apply("lwnone0", RssPolicy::Symmetric);
        assert!(setup.lines().is_empty());
    }

    /// A driver in memory: what it holds, what it refuses, and every write in order.
    struct FakeNic {
        config: std::cell::RefCell<RssConfig>,
        /// The transformations it takes (`supported_input_xfrm`).
        xfrms: u8,
        writes: std::cell::RefCell<Vec<String>>,
    }

    impl Nic for FakeNic {
        fn read(&self, _: &str) -> Result<RssConfig, i32> {
            Ok(self.config.borrow().clone())
        }
        fn set_rxfh(&self, _: &str, xfrm: u8, key: &[u8]) -> Result<(), i32> {
            let mut c = self.config.borrow_mut();
            if xfrm & !self.xfrms != 0 {
                return Err(libc::EOPNOTSUPP);
            }
            c.input_xfrm = xfrm;
            if !key.is_empty() {
                c.key = key.to_vec();
            }
            self.writes
                .borrow_mut()
                .push(format!("xfrm {xfrm} key {}", hex(&key[..key.len().min(2)])));
            Ok(())
        }
        fn set_fields(&self, _: &str, flow: u32, fields: u64) -> Result<(), i32> {
            let i = FLOWS
                .iter()
                .position(|&(f, _)| f == flow)
                .ok_or(libc::EINVAL)?;
            self.config.borrow_mut().fields[i] = Some(fields);
            self.writes
                .borrow_mut()
                .push(format!("{} {fields:#x}", FLOWS[i].1));
            Ok(())
        }
    }

    /// Runs the change on `nic` with the state file in a scratch directory (no guard), checks
    /// what the file held while changed, restores, and returns the outcome and the writes.
    fn change_and_restore(
        nic: &FakeNic,
        file_holds: &str,
    ) -> (Result<String, String>, Vec<String>) {
        let dir = std::env::temp_dir().join(format!("lw-rss-{}-{file_holds}", std::process::id()));
        fs::create_dir_all(&dir).expect("scratch");
        let before = nic.config.borrow().clone();
        let mut setup = RssSetup {
            lines: Vec::new(),
            symmetric: None,
            saved: None,
            path: dir.join("rss-1.state"),
            guard: None,
        };
        setup
            .save(Saved {
                fields: Vec::new(),
                input_xfrm: None,
                key: None,
                ..sample()
            })
            .expect("save");
        let made = setup.make_symmetric(nic, "eth9", &before);
        if made.is_ok() {
            let text = fs::read_to_string(&setup.path).expect("the state file");
            assert!(text.contains(file_holds), "{text}");
            assert!(nic.config.borrow().symmetric().is_some());
        }
        setup.undo(nic).expect("restored");
        assert_eq!(*nic.config.borrow(), before, "everything is as it was");
        assert!(!setup.path.exists());
        let _ = fs::remove_dir_all(&dir);
        (made, nic.writes.borrow().clone())
    }

    fn fake(hfunc: u8, key: &[u8], fields: u64, xfrms: u8) -> FakeNic {
        FakeNic {
            config: std::cell::RefCell::new(RssConfig {
                hfunc,
                input_xfrm: 0,
                key: key.to_vec(),
                fields: [Some(fields); 2],
            }),
            xfrms,
            writes: std::cell::RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn ice_takes_the_transformation_and_gets_it_back() {
        let nic = fake(HASH_TOP, &MS_KEY, RXH_SDFN, XFRM_SYM_XOR);
        let (made, writes) = change_and_restore(&nic, "input_xfrm=0\nkey=-\nfields=\n");
        assert_eq!(made.as_deref(), Ok("xfrm symmetric-xor"));
        assert_eq!(writes, ["xfrm 1 key ", "xfrm 0 key "]);
    }

    #[test]
    fn mlx5_takes_symmetric_or_xor() {
        let nic = fake(HASH_XOR, &[], RXH_SDFN, XFRM_SYM_OR_XOR);
        let (made, writes) = change_and_restore(&nic, "input_xfrm=0\n");
        assert_eq!(made.as_deref(), Ok("xfrm symmetric-or-xor"));
        assert_eq!(writes, ["xfrm 2 key ", "xfrm 0 key "]);
    }

    #[test]
    fn ixgbe_without_xfrm_gets_the_woo_park_key_and_its_own_back() {
        let nic = fake(HASH_TOP, &MS_KEY, RXH_SDFN, 0);
        let (made, writes) = change_and_restore(&nic, "input_xfrm=-\nkey=6d5a56da");
        assert_eq!(
            made.as_deref(),
            Ok("Woo & Park Toeplitz key 6d5a… of 40 bytes")
        );
        assert_eq!(writes, ["xfrm 0 key 6d5a", "xfrm 0 key 6d5a"]);
    }

    #[test]
    fn unpaired_fields_are_paired_first_and_restored_last() {
        let nic = fake(HASH_TOP, &MS_KEY, RXH_IP_SRC, XFRM_SYM_XOR);
        let (made, writes) = change_and_restore(&nic, "fields=tcp4:0x10 tcp6:0x10");
        assert_eq!(
            made.as_deref(),
            Ok("flow hash fields sdfn, then xfrm symmetric-xor")
        );
        assert_eq!(
            writes,
            [
                "tcp4 0xf0",
                "tcp6 0xf0",
                "xfrm 1 key ",
                "xfrm 0 key ",
                "tcp6 0x10",
                "tcp4 0x10"
            ]
        );
    }

    #[test]
    fn a_driver_that_refuses_everything_is_left_as_it_was() {
        let nic = fake(HASH_CRC32, &MS_KEY, RXH_IP_SRC, 0);
        let (made, writes) = change_and_restore(&nic, "");
        let why = made.expect_err("nothing it could do");
        assert!(
            why.contains("xfrm symmetric-xor: Operation not supported"),
            "{why}"
        );
        assert!(
            why.contains("key: the hash function is crc32, not Toeplitz"),
            "{why}"
        );
        // The fields it paired on the way are back.
        assert_eq!(writes, ["tcp4 0xf0", "tcp6 0xf0", "tcp6 0x10", "tcp4 0x10"]);
    }

    #[test]
    fn policy_parses() {
        assert_eq!("keep".parse(), Ok(RssPolicy::Keep));
        assert_eq!("symmetric".parse(), Ok(RssPolicy::Symmetric));
        assert!("off".parse::<RssPolicy>().is_err());
    }
}
