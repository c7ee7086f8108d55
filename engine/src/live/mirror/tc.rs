//! The tc vocabulary of a mirror, and reading what `tc` and `ip` print.
//!
//! A mirror hangs one filter per direction ([`Direction`]) on a `clsact` qdisc, each at a
//! preference of its own from [`FIRST_PREF`] up (see [`free_pref_pair`]): the steering BPF
//! program (`bpf ... da`, loaded from a file named by [`steer_object_name`]), or, where that
//! cannot load, a `u32` match-all with a `mirred egress mirror` action. Before adding them
//! and before removing anything, the mirror reads iproute2's listings: which qdisc is there
//! ([`clsact_kind`]), which preferences are taken ([`filter_prefs`]), whether the filters at a
//! preference are linewatch's ([`filters_are_ours`]), which veths exist ([`link_names`]).
//!
//! Everything here is a pure function of a command's output, so it is tested on captured
//! listings, without root. Nothing here runs a command.

/// First tc filter preference linewatch tries (ingress; egress uses the next number).
pub(super) const FIRST_PREF: u32 = 49001;

/// How many ingress/egress preference pairs linewatch tries before giving up.
pub(super) const PREF_PAIRS: u32 = 200;

/// Which tc hook a filter hangs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    /// Both directions, in the order filters are added.
    pub(super) const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// The word `tc` (and the state file) uses for it.
    pub(super) fn keyword(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    pub(super) fn from_keyword(word: &str) -> Option<Direction> {
        match word {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }
}

/// The kind of qdisc at `ffff:` in a `tc qdisc show` listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QdiscKind {
    Clsact,
    /// The older `ingress` qdisc, which takes clsact's place: the two cannot coexist.
    Ingress,
}

/// The qdisc at `ffff:` in a `tc qdisc show` listing, if it is one the mirror cares about.
pub(super) fn clsact_kind(show: &str) -> Option<QdiscKind> {
    show.lines().find_map(|l| {
        if l.starts_with("qdisc clsact ffff:") {
            Some(QdiscKind::Clsact)
        } else if l.starts_with("qdisc ingress ffff:") {
            Some(QdiscKind::Ingress)
        } else {
            None
        }
    })
}

/// The file name of the steering program configured for mirror veth `mirror`; tc prints it
/// with the filter (`lwm12-steer.o:[tc]`), which tells the filter as that run's.
pub(super) fn steer_object_name(mirror: &str) -> String {
    format!("{mirror}-steer.o")
}

/// True when `show` (the filters at one preference) has filters of linewatch's and nothing
/// else that acts: each action mirrors into `mirror` or into a device that no longer exists
/// (tc prints `*` for it), and each BPF filter is the steering program loaded for `mirror`.
pub(super) fn filters_are_ours(show: &str, mirror: &str) -> bool {
    let ours = format!("mirred (Egress Mirror to device {mirror})");
    let orphan = "mirred (Egress Mirror to device *)";
    let steer = format!(" {}:[", steer_object_name(mirror));
    let mut found = 0;
    for line in show.lines() {
        let is_action = line.contains("action order");
        let is_bpf =
            line.starts_with("filter") && line.contains(" bpf ") && line.contains(" handle ");
        if is_action && !line.contains(&ours) && !line.contains(orphan)
            || is_bpf && !line.contains(&steer)
        {
            return false;
        }
        found += usize::from(is_action || is_bpf);
    }
    found > 0
}

/// The preferences (`pref N`) in a `tc filter show` listing.
pub(super) fn filter_prefs(show: &str) -> Vec<u32> {
    let mut prefs = Vec::new();
    for line in show.lines().filter(|l| l.starts_with("filter")) {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "pref" {
                if let Some(p) = words.next().and_then(|p| p.parse().ok()) {
                    prefs.push(p);
                }
            }
        }
    }
    prefs
}

/// The first (ingress, egress) preference pair of which neither number is used. A pair of its
/// own keeps linewatch's filters from sharing a priority with anyone else's: u32 lists every
/// table of a qdisc at one priority together, whichever direction it hangs on.
pub(super) fn free_pref_pair(used: &[u32]) -> Option<(u32, u32)> {
    (0..PREF_PAIRS)
        .map(|k| (FIRST_PREF + 2 * k, FIRST_PREF + 2 * k + 1))
        .find(|(i, e)| !used.contains(i) && !used.contains(e))
}

/// Device names in `ip -o link show` output (`7: lwm12@lwc12: <...` → `lwm12`).
pub(super) fn link_names(show: &str) -> Vec<String> {
    show.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefs_and_pairs() {
        let show = "filter protocol all pref 49001 u32 chain 0 \n\
                    filter protocol all pref 49001 u32 chain 0 fh 800: ht divisor 1 \n  \
                    match 00000000/00000000 at 0\n\
                    filter protocol ip pref 100 u32 chain 0 \n";
        assert_eq!(filter_prefs(show), vec![49001, 49001, 100]);
        assert_eq!(free_pref_pair(&[]), Some((49001, 49002)));
        assert_eq!(free_pref_pair(&[49002]), Some((49003, 49004)));
        let all: Vec<u32> = (FIRST_PREF..FIRST_PREF + 2 * PREF_PAIRS)
            .step_by(2)
            .collect();
        assert_eq!(free_pref_pair(&all), None);
    }

    #[test]
    fn ownership_of_filters() {
        let ours = "filter protocol all u32 chain 0 fh 800::800 order 2048\n  \
                    match 00000000/00000000 at 0\n\
                    \taction order 1: mirred (Egress Mirror to device lwm9) pipe\n";
        assert!(filters_are_ours(ours, "lwm9"));
        assert!(!filters_are_ours(ours, "lwm91"));
        assert!(filters_are_ours(&ours.replace("lwm9)", "*)"), "lwm1"));
        let mixed = format!("{ours}\taction order 1: mirred (Egress Mirror to device eth9) pipe\n");
        assert!(!filters_are_ours(&mixed, "lwm9"));
        assert!(!filters_are_ours("", "lwm9"));
        assert!(!filters_are_ours(
            "filter protocol ip u32 fh 800::800 *flowid 1:1",
            "lwm9"
        ));
    }

    #[test]
    fn ownership_of_steering_filters() {
        // `tc filter show dev veth0 ingress pref 49001` with the steering program (iproute2 6.1).
        let ours = "filter protocol all bpf chain 0 \n\
                    filter protocol all bpf chain 0 handle 0x1 lwm77-steer.o:[tc] direct-action \
                    not_in_hw id 5059 name linewatch_steer tag 37bbd983ad1e6845 jited \n";
        assert!(filters_are_ours(ours, "lwm77"));
        assert!(!filters_are_ours(ours, "lwm7"));
        assert!(!filters_are_ours(ours, "lwm777"));
        let foreign = ours.replace("lwm77-steer.o", "other.o");
        assert!(!filters_are_ours(&foreign, "lwm77"));
        let mixed = format!("{ours}{foreign}");
        assert!(!filters_are_ours(&mixed, "lwm77"));
        assert!(!filters_are_ours(
            "filter protocol all bpf chain 0 \n",
            "lwm77"
        ));
    }

    #[test]
    fn qdisc_kinds() {
        assert_eq!(
            clsact_kind("qdisc noqueue 0: root refcnt 2 \nqdisc clsact ffff: parent ffff:fff1 \n"),
            Some(QdiscKind::Clsact)
        );
        assert_eq!(
            clsact_kind("qdisc ingress ffff: parent ffff:fff1 ----------------"),
            Some(QdiscKind::Ingress)
        );
        assert_eq!(clsact_kind("qdisc pfifo_fast 0: root refcnt 2"), None);
    }

    #[test]
    fn link_name_parsing() {
        let show = "2: b0@a0: <BROADCAST> mtu 1500\\    link/ether 82:76\n\
                    3: lwm12@if4: <BROADCAST> mtu 3000\n4: lo: <LOOPBACK> mtu 65536\n";
        assert_eq!(link_names(show), vec!["b0", "lwm12", "lo"]);
    }

    #[test]
    fn direction_keywords_round_trip() {
        for dir in Direction::BOTH {
            assert_eq!(Direction::from_keyword(dir.keyword()), Some(dir));
        }
        assert_eq!(Direction::from_keyword("sideways"), None);
    }
}
