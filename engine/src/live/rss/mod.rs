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
//! Files: `config` (what a NIC reports, and whether it is symmetric), `ethtool` (the ioctls),
//! `saved` (the state file and the guard that restores after a crash), `uapi` (the ethtool
//! constants), here the set-up.

mod config;
mod ethtool;
mod saved;
mod uapi;

use std::fs;
use std::path::PathBuf;

use super::mirror::STATE_DIR;
use super::statefile;
use super::sys::{errno_text, ifindex, rx_queues};
use config::*;
use ethtool::*;
use saved::*;
use uapi::*;

pub use saved::{is_state_file, restore_state_file};

/// What the line ends with when flows are not kept together.
const UNPAIRED: &str =
    "a connection's directions may reach different queues: each worker hands segments to the \
     worker that owns their connection (the crossing fallback)";

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
    use std::path::Path;

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
