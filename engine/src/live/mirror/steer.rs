//! The flow-steering tc program (`engine/bpf/mirror_steer.bpf.c`), made ready for `tc`.
//!
//! # Contract
//!
//! - [`prepare`] writes the embedded object, configured for one mirror veth (its ifindex and
//!   its number of queues, written into the object's `.rodata`), to
//!   `/run/linewatch/<mirror veth>-steer.o` ([`object_path`]), for
//!   `tc filter add ... bpf da obj FILE sec tc` ([`STEER_SECTION`]). tc prints the file's
//!   name with each filter (`lwm12-steer.o:[tc]`), which is how a tear-down knows the filter
//!   as this run's ([`super::tc::filters_are_ours`]). The file is removed once the filters
//!   are in (the kernel holds the program), and by every tear-down.
//! - It also keeps XPS off on the mirror veth ([`xps_off`]): an XPS map would pick the tx
//!   queue before the queue the program writes is looked at (`netdev_pick_tx` calls
//!   `get_xps_queue` first, `skb_tx_hash` only when that finds nothing).
//! - Nothing here adds a filter: [`super::Mirror`] does, with its preferences and state file.

use std::fs;
use std::path::{Path, PathBuf};

use super::command::Tools;
use super::state::STATE_DIR;
use super::tc::steer_object_name;

/// The program, compiled by build.rs.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mirror_steer.bpf.o"));

/// The ELF section of the program, for `tc ... sec`.
pub(super) const STEER_SECTION: &str = "tc";

/// First field of the program's `struct steer_config` ("LwmSteer" in little-endian bytes):
/// the configuration follows it (u32 ifindex, u32 queues, native byte order).
const STEER_MAGIC: u64 = 0x7265_6574_536d_774c;

/// Bytes of the configuration after the magic.
const CONFIG_BYTES: usize = 8;

/// Where the configured object for mirror veth `mirror` is written.
pub(super) fn object_path(mirror: &str) -> PathBuf {
    Path::new(STATE_DIR).join(steer_object_name(mirror))
}

/// Writes the object configured for the mirror veth `mirror` of `queues` queues to
/// [`object_path`] and turns XPS off on `mirror`; returns the path.
pub(super) fn prepare(tools: &Tools, mirror: &str, queues: u32) -> Result<PathBuf, String> {
    let ifindex = ifindex(tools, mirror)?;
    xps_off(mirror)?;
    let object = configured(OBJECT, ifindex, queues)?;
    let path = object_path(mirror);
    fs::write(&path, object).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// `object` with the configuration after [`STEER_MAGIC`] set; the magic must occur once.
fn configured(object: &[u8], ifindex: u32, queues: u32) -> Result<Vec<u8>, String> {
    let magic = STEER_MAGIC.to_ne_bytes();
    let mut found = object
        .windows(magic.len())
        .enumerate()
        .filter(|(_, w)| *w == magic)
        .map(|(i, _)| i);
    let (Some(at), None) = (found.next(), found.next()) else {
        return Err("the embedded steering program has no single configuration block".into());
    };
    let start = at + magic.len();
    if object.len() < start + CONFIG_BYTES {
        return Err("the embedded steering program's configuration is cut short".into());
    }
    let mut out = object.to_vec();
    out[start..start + 4].copy_from_slice(&ifindex.to_ne_bytes());
    out[start + 4..start + CONFIG_BYTES].copy_from_slice(&queues.to_ne_bytes());
    Ok(out)
}

/// The ifindex of `dev`, from `ip -o link show dev DEV` (`12: lwm7@lwc7: <...`).
fn ifindex(tools: &Tools, dev: &str) -> Result<u32, String> {
    let out = tools
        .ip(&["-o", "link", "show", "dev", dev])
        .map_err(|f| f.describe())?;
    out.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("cannot read the ifindex of {dev} from `ip -o link show`"))
}

/// Clears any XPS map (by CPU or by rx queue) on `dev`'s tx queues: with one, the kernel
/// would not look at the queue the program writes. A fresh veth has none; nothing is written
/// then. Without sysfs for this network namespace there is nothing to read, and nothing done.
fn xps_off(dev: &str) -> Result<(), String> {
    let dir = Path::new("/sys/class/net").join(dev).join("queues");
    let Ok(queues) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for queue in queues.flatten() {
        if !queue.file_name().to_string_lossy().starts_with("tx-") {
            continue;
        }
        for map in ["xps_cpus", "xps_rxqs"] {
            let path = queue.path().join(map);
            let Ok(mask) = fs::read_to_string(&path) else {
                continue; // a kernel without XPS
            };
            if mask_is_set(&mask) {
                fs::write(&path, "0")
                    .map_err(|e| format!("cannot turn XPS off ({}): {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// True when a sysfs CPU or queue mask (`00000000,00000003`) has any bit set.
fn mask_is_set(mask: &str) -> bool {
    mask.chars().any(|c| c.is_ascii_hexdigit() && c != '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_takes_its_configuration() {
        let out = configured(OBJECT, 0x0102_0304, 4).expect("embedded object");
        let magic = STEER_MAGIC.to_ne_bytes();
        let at = out.windows(8).position(|w| w == magic).expect("magic") + 8;
        assert_eq!(&out[at..at + 4], &0x0102_0304u32.to_ne_bytes());
        assert_eq!(&out[at + 4..at + 8], &4u32.to_ne_bytes());
        assert_eq!(out.len(), OBJECT.len());
        // Only the eight configuration bytes change.
        let changed = out.iter().zip(OBJECT).filter(|(a, b)| a != b).count();
        assert!(changed <= CONFIG_BYTES, "{changed} bytes changed");

        let mut twice = OBJECT.to_vec();
        twice.extend_from_slice(&magic);
        twice.extend_from_slice(&[0; CONFIG_BYTES]);
        assert!(configured(&twice, 1, 1).is_err());
        assert!(configured(&magic, 1, 1).is_err(), "cut short");
        assert!(configured(b"no magic here", 1, 1).is_err());
    }

    #[test]
    fn xps_masks() {
        assert!(!mask_is_set("0\n"));
        assert!(!mask_is_set("00000000,00000000\n"));
        assert!(mask_is_set("00000000,00000003\n"));
        assert!(mask_is_set("a"));
    }

    #[test]
    fn object_lives_in_the_state_directory() {
        assert_eq!(
            object_path("lwm12"),
            PathBuf::from("/run/linewatch/lwm12-steer.o")
        );
    }
}
