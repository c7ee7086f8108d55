//! Reading `../shared/corpus` (found by [`linewatch_testkit::corpus`], which also decides
//! what a missing corpus means), shared by the integration tests: llhttp's cases, the capture
//! files and their frames.
//!
//! The corpus is real material no one here wrote; it is referenced in place, never copied into
//! the repository.

#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use linewatch_parser::wire::{decode_frame, LinkType};
use linewatch_testkit::corpus;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// Decodes standard base64 (RFC 4648 §4, with padding), as the corpus' `input_b64` uses.
///
/// # Panics
/// On a byte outside the alphabet: the corpus is trusted test data.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .unwrap_or_else(|| panic!("not base64: {byte:#x}"));
        acc = acc << 6 | u32::try_from(value).expect("index < 64");
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits).to_le_bytes()[0]);
        }
    }
    out
}

/// One llhttp case from `parser/llhttp_*.jsonl`.
#[derive(Debug)]
pub struct LlhttpCase {
    /// `path:line` in llhttp's test suite.
    pub id: String,
    /// llhttp's test name.
    pub name: String,
    /// Whether llhttp ran it with its default (strict) settings.
    pub strict: bool,
    /// The exact input bytes.
    pub input: Vec<u8>,
    /// The whole expectation object.
    pub expect: serde_json::Value,
    /// The first message's fields as llhttp reported them (null when none).
    pub first: serde_json::Value,
}

/// The cases of `parser/{file}`, or `None` when the corpus is absent outside CI.
pub fn llhttp_cases(file: &str) -> Option<Vec<LlhttpCase>> {
    let path = corpus::file(&format!("parser/{file}"))?;
    let text = std::fs::read_to_string(&path).expect("corpus file is readable");
    let cases = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
            LlhttpCase {
                id: v["id"].as_str().expect("id").to_owned(),
                name: v["name"].as_str().expect("name").to_owned(),
                strict: v["strict_default"].as_bool().expect("strict_default"),
                input: base64_decode(v["input_b64"].as_str().expect("input_b64")),
                expect: v["expect"].clone(),
                first: v["first"].clone(),
            }
        })
        .collect();
    Some(cases)
}

/// The capture files (`.pcap`, `.pcapng`) in `dir`, in file-name order.
pub fn capture_paths(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).expect("corpus directory");
    let mut paths: Vec<_> = entries.map(|e| e.expect("entry").path()).collect();
    paths.retain(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        )
    });
    paths.sort();
    paths
}

/// Every packet of one capture, in capture order, with the link type its capture names (for
/// pcapng, the link type of the interface it was captured on). Index `i` is tshark's
/// `frame.number` `i + 1`: pcapng blocks other than Enhanced and Simple Packet Blocks are not
/// packets and are not counted.
///
/// # Panics
/// On an unreadable file or a link type linewatch does not read: the corpus is trusted.
pub fn capture_frames(path: &Path) -> Vec<(LinkType, Vec<u8>)> {
    let link = |l| LinkType::from_pcap(u32::from(l)).expect("a link type linewatch reads");
    let reader = BufReader::new(File::open(path).expect("capture file"));
    let mut frames = Vec::new();
    match path.extension().and_then(|e| e.to_str()) {
        Some("pcap") => {
            let mut reader = PcapReader::new(reader).expect("pcap header");
            let link = link(reader.header().datalink);
            while let Some(packet) = reader.next_packet() {
                frames.push((link, packet.expect("pcap packet").data.into_owned()));
            }
        }
        Some("pcapng") => {
            let mut reader = PcapNgReader::new(reader).expect("pcapng header");
            let mut links = Vec::new(); // by interface id, in Interface Description order
            while let Some(block) = reader.next_block() {
                match block.expect("pcapng block") {
                    Block::InterfaceDescription(i) => links.push(link(i.linktype)),
                    Block::EnhancedPacket(p) => {
                        let id = usize::try_from(p.interface_id).expect("interface id");
                        frames.push((links[id], p.data.into_owned()));
                    }
                    Block::SimplePacket(p) => frames.push((links[0], p.data.into_owned())),
                    _ => {}
                }
            }
        }
        _ => panic!("not a capture file: {}", path.display()),
    }
    frames
}

/// Every frame of every capture in `dir` (in file-name order), and the TCP payloads they carry
/// under the link type their capture names.
pub fn corpus_frames(dir: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut frames, mut payloads) = (Vec::new(), Vec::new());
    for path in capture_paths(dir) {
        for (link, frame) in capture_frames(&path) {
            if let Ok(segment) = decode_frame(link, &frame) {
                payloads.push(segment.payload.to_vec());
            }
            frames.push(frame);
        }
    }
    (frames, payloads)
}
