//! Heads cut by the capture, not by the client (issue 15, item 4), through the `linewatch`
//! binary: a request whose request line was captured but whose rest of the head fell into a
//! capture hole (a sequence gap, or a frame cut at the snap length) is counted at its request
//! line with the fields seen whole (Host `-` when unseen) and under `incomplete_heads`; one
//! whose request line itself was cut is not counted.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{map_of, scratch, summary_of};
use linewatch_testkit::frame::{pcap, Frame, TcpFlags, TcpRepr};

const T0: u64 = 1_700_000_000_000_000_000;
const SERVER_PORT: u16 = 80;
const CLIENT_SEQ: u32 = 1_000;
/// Bytes the capture missed between two segments of a connection.
const HOLE: u32 = 500;

/// Client `port`'s segment at `offset` bytes into its stream.
fn segment(port: u16, offset: u32, payload: &[u8]) -> Vec<u8> {
    Frame::tcp(
        IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
        TcpRepr {
            src_port: port,
            dst_port: SERVER_PORT,
            seq: CLIENT_SEQ + offset,
            ack: 1,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            payload,
            ..TcpRepr::default()
        },
    )
    .to_vec()
}

#[test]
fn heads_cut_by_the_capture_are_counted_at_their_request_line() {
    let dir = scratch("incomplete-heads");
    let gap_head = b"GET /gap/1 HTTP/1.1\r\nHost: gap.example\r\nAcc";
    let after = b"GET /after HTTP/1.1\r\nHost: gap.example\r\n\r\n";
    let gap_at = u32::try_from(gap_head.len()).unwrap() + HOLE;
    let line_only = b"GET /nohost HTTP/1.1\r\nHo";
    let line_cut = b"GET /lost HT";
    let whole = b"GET /cut/2 HTTP/1.1\r\nHost: cut.example\r\nUser-Agent: t\r\n\r\n";
    let seen = b"GET /cut/2 HTTP/1.1\r\nHost: cut.example\r\nUs".len();
    let mut frames = vec![
        // A sequence gap inside the head, then the next request after the hole.
        segment(40_001, 0, gap_head),
        segment(40_001, gap_at, after),
        // Only the request line seen.
        segment(40_002, 0, line_only),
        segment(40_002, 1_000, b"\r\n\r\n"),
        // The request line itself cut by the hole: nothing to count.
        segment(40_003, 0, line_cut),
        segment(40_003, 1_000, b"\r\n\r\n"),
    ];
    let cut_frame = segment(40_004, 0, whole);
    let cut_len = cut_frame.len() - (whole.len() - seen);
    frames.push(cut_frame);
    let timed: Vec<(u64, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (T0 + i as u64 * 1_000, f.as_slice()))
        .collect();
    let mut file = pcap(&timed);
    // The last record as `tcpdump -s` writes it: captured length below the frame's length.
    let last_record = file.len() - frames.last().unwrap().len() - 16;
    let caplen = u32::try_from(cut_len).unwrap();
    file[last_record + 8..last_record + 12].copy_from_slice(&caplen.to_le_bytes());
    file.truncate(last_record + 16 + cut_len);
    let capture = dir.join("incomplete.pcap");
    std::fs::write(&capture, file).expect("writing the capture");

    for workers in ["1", "2"] {
        let (summary, _) = summary_of(&capture, &["--workers", workers]);
        assert_eq!(summary["packets"], 7, "workers {workers}: {summary}");
        assert_eq!(summary["requests"], 4, "workers {workers}: {summary}");
        let errors = &summary["errors"];
        assert_eq!(errors["incomplete_heads"], 3, "workers {workers}: {errors}");
        assert_eq!(errors["sequence_gaps"], 3, "workers {workers}: {errors}");
        let hosts = map_of(&summary, "hosts");
        assert_eq!(hosts.get("gap.example"), Some(&2), "{hosts:?}");
        assert_eq!(hosts.get("cut.example"), Some(&1), "{hosts:?}");
        assert_eq!(hosts.get("-"), Some(&1), "{hosts:?}");
        let sections = map_of(&summary, "sections");
        for (section, n) in [("/gap", 1), ("/after", 1), ("/nohost", 1), ("/cut", 1)] {
            assert_eq!(sections.get(section), Some(&n), "{sections:?}");
        }
        assert_eq!(sections.get("/lost"), None, "{sections:?}");
        // No User-Agent line was seen whole (the snap length cut the last one).
        assert_eq!(map_of(&summary, "user_agents").get("-"), Some(&4));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
