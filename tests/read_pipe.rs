//! Captures from a pipe: `--read -` (standard input) and a FIFO, pcap and pcapng, give the
//! summary `--read FILE` gives for the same bytes, with one worker or several (a stream is
//! read by one thread that feeds the workers); a stream cut short (its writer killed) ends as
//! the same file cut there does; a run stopped while its writer is silent ends at once with
//! its summary; an empty stream is one line naming standard input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::same::comparable;
use common::scratch;
use linewatch_testkit::{corpus, tools};

/// Corpus captures read both ways: classic pcap and pcapng.
const CAPTURES: [&str; 3] = [
    "pcaps/sv__http-protocol-nodup.pcap",
    "pcaps/zeek__1000-requests-one-dropped-response.pcap",
    "pcaps/chrissanders__http_espn.pcapng",
];

/// The [`CAPTURES`] and where they are; `None` (skip, or fail in CI) without the corpus.
fn captures() -> Option<Vec<(&'static str, PathBuf)>> {
    CAPTURES
        .iter()
        .map(|name| match corpus::file(name) {
            Some(path) => Some((*name, path)),
            None => {
                tools::skip_or_fail(&format!("the corpus has no {name}"));
                None
            }
        })
        .collect()
}

fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the summary {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the summary is JSON")
}

/// `linewatch --read <input> --summary <summary>` plus `extra`, stdin as given, not waited for.
fn spawn(input: &str, summary: &Path, extra: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_linewatch"))
        .args(["--read", input, "--summary"])
        .arg(summary)
        .args(extra)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running linewatch")
}

fn succeeded(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--read FILE`: the summary.
fn from_file(capture: &Path, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let summary = dir.join("file-summary.json");
    let out = spawn(capture.to_str().unwrap(), &summary, extra, Stdio::null())
        .wait_with_output()
        .unwrap();
    succeeded(&out, &format!("--read {}", capture.display()));
    read_summary(&summary)
}

/// `--read -` with `bytes` written into its standard input through a pipe: the summary and
/// the run's output.
fn from_stdin(bytes: Vec<u8>, dir: &Path, extra: &[&str]) -> (serde_json::Value, Output) {
    let summary = dir.join("stdin-summary.json");
    let mut child = spawn("-", &summary, extra, Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    succeeded(&out, "--read -");
    (read_summary(&summary), out)
}

/// A FIFO made with mkfifo(1).
fn fifo(dir: &Path) -> PathBuf {
    let path = dir.join("capture.fifo");
    let status = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("running mkfifo");
    assert!(status.success());
    path
}

/// `--read FIFO` with `bytes` written into the FIFO: the summary.
fn from_fifo(bytes: Vec<u8>, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let path = fifo(dir);
    let summary = dir.join("fifo-summary.json");
    let child = spawn(path.to_str().unwrap(), &summary, extra, Stdio::null());
    let writer = {
        let path = path.clone();
        // Opening a FIFO for writing waits for its reader.
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            let _ = f.write_all(&bytes);
        })
    };
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    succeeded(&out, "--read FIFO");
    let _ = std::fs::remove_file(&path);
    read_summary(&summary)
}

#[test]
fn stdin_and_a_fifo_give_the_files_summary_pcap_and_pcapng_with_one_worker_or_several() {
    let dir = scratch("read-pipe-same");
    let Some(captures) = captures() else { return };
    for (name, capture) in captures {
        let bytes = std::fs::read(&capture).unwrap();
        for workers in ["1", "3"] {
            let extra = ["--workers", workers];
            let want = from_file(&capture, &dir, &extra);
            assert!(want["requests"].as_u64().unwrap() > 0, "{name}");
            let (piped, _) = from_stdin(bytes.clone(), &dir, &extra);
            assert_eq!(piped["source"], "standard input", "{name}");
            assert_eq!(
                comparable(piped),
                comparable(want.clone()),
                "{name}: --read - with {workers} workers"
            );
            let fifo = from_fifo(bytes.clone(), &dir, &extra);
            assert_eq!(
                comparable(fifo),
                comparable(want.clone()),
                "{name}: --read FIFO with {workers} workers"
            );
            // A regular file redirected in is read as the file itself (mapped, and re-opened
            // per worker).
            let summary = dir.join("redirected.json");
            let out = spawn(
                "-",
                &summary,
                &extra,
                Stdio::from(std::fs::File::open(&capture).unwrap()),
            )
            .wait_with_output()
            .unwrap();
            succeeded(&out, "--read - < FILE");
            assert_eq!(
                comparable(read_summary(&summary)),
                comparable(want),
                "{name}: --read - < FILE with {workers} workers"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stream_cut_short_ends_as_the_same_file_cut_there() {
    let dir = scratch("read-pipe-cut");
    let Some(captures) = captures() else { return };
    for (name, capture) in captures {
        let bytes = std::fs::read(&capture).unwrap();
        // Inside a record, well past the headers: the writer killed mid-packet.
        let cut = &bytes[..bytes.len() * 2 / 3 + 7];
        let cut_file = dir.join(capture.file_name().unwrap());
        std::fs::write(&cut_file, cut).unwrap();
        let want = from_file(&cut_file, &dir, &[]);
        assert_eq!(want["truncated"], true, "{name}: the cut file");
        let (piped, out) = from_stdin(cut.to_vec(), &dir, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("standard input is truncated"),
            "{name}: {stderr}"
        );
        assert_eq!(comparable(piped), comparable(want.clone()), "{name}: piped");
        assert_eq!(
            comparable(from_fifo(cut.to_vec(), &dir, &[])),
            comparable(want),
            "{name}: through a FIFO"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stop must end a wait for a silent writer this soon (the wait gives up every 100 ms).
const STOP_WITHIN: Duration = Duration::from_secs(3);

#[test]
fn sigterm_while_the_writer_is_silent_ends_the_run_with_its_summary() {
    let dir = scratch("read-pipe-stop");
    let Some(capture) = corpus::file(CAPTURES[1]) else {
        tools::skip_or_fail(&format!("the corpus has no {}", CAPTURES[1]));
        return;
    };
    let bytes = std::fs::read(&capture).unwrap();
    let summary = dir.join("summary.json");
    let mut child = spawn("-", &summary, &[], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes).unwrap();
    stdin.flush().unwrap();
    // Every packet is in; the writer stays open and says nothing more.
    std::thread::sleep(Duration::from_secs(1));
    let sent = Instant::now();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(STOP_WITHIN * 4);
        // Only if the run is still there: a hung test should fail, not hang.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    drop(stdin);
    drop(watchdog);
    succeeded(&out, "--read - stopped by SIGTERM");
    assert!(took < STOP_WITHIN, "SIGTERM took {took:?} to end the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    let got = read_summary(&summary);
    let want = from_file(&capture, &dir, &[]);
    assert_eq!(
        got["requests"], want["requests"],
        "every request sent counted"
    );
    assert_eq!(got["packets"], want["packets"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_empty_stream_or_one_that_is_no_capture_is_one_line_naming_standard_input() {
    for (bytes, says) in [
        (&b""[..], "the stream ended before its first byte"),
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "unknown magic number"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linewatch"))
            .args(["--read", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(bytes);
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("linewatch: standard input is not a pcap or pcapng capture"),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn a_summary_that_is_the_capture_redirected_in_is_refused() {
    let dir = scratch("read-pipe-same-file");
    let Some(captures) = captures() else { return };
    let (_, original) = &captures[0];
    let capture = dir.join("capture.pcap");
    std::fs::copy(original, &capture).unwrap();
    let before = std::fs::read(&capture).unwrap();
    let out = spawn(
        "-",
        &capture,
        &[],
        Stdio::from(std::fs::File::open(&capture).unwrap()),
    )
    .wait_with_output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is the capture being read (standard input)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&capture).unwrap(),
        before,
        "the capture untouched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
