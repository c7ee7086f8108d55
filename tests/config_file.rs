//! The settings file (`--config FILE`), through the binary: a file round-trips through
//! `--print-config` (one with every option does in `cli::config`'s unit tests); defaults <
//! file < command line; a bad key or value is one line naming the file, the line and the key
//! (exit 2); the usual places are read (and said so) unless `--no-config` or
//! `LINEWATCH_NO_CONFIG` skips them.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::scratch;

/// The environment variable that skips the usual places (set for every test by
/// `.cargo/config.toml`).
const NO_CONFIG_ENV: &str = "LINEWATCH_NO_CONFIG";

/// A settings file for a replay with a value for most options (every option, with the
/// mode options kept apart, is round-tripped in process: `cli::config`'s unit tests).
const RICH: &str = r#"# a replay, most options set
read = "capture.pcap"
port = "80,8080"
idle = "poll"
threshold = 12.5
window = 60
report-interval = 5
baseline = 30
margin = 20
alert-log = "alerts.log"
json = true
summary = "summary.json"
workers = 3
top = 7
flows = 1000
scan-ports = 5
scan-window = 30
allow = ["10.0.0.0/8", "2001:db8::/32"]
no-allow-self = true
block-scanners = true
block-for = 600
metrics = "127.0.0.1:9920"
"#;

/// Runs linewatch with `args` in `dir`, the usual places skipped unless `env` says otherwise.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linewatch"));
    cmd.args(args).current_dir(dir).env(NO_CONFIG_ENV, "1");
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.output().expect("running linewatch")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `--print-config` output, parsed.
fn settings(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("--print-config wrote no TOML ({e}):\n{text}"))
}

#[test]
fn a_file_round_trips_through_print_config() {
    let dir = scratch("config-round-trip");
    let path = dir.join("rich.toml");
    std::fs::write(&path, RICH).unwrap();
    let first = stdout(&run_in(
        &dir,
        &["--config", path.to_str().unwrap(), "--print-config"],
        &[],
    ));
    let got = settings(&first);
    for (key, value) in &settings(RICH) {
        assert_eq!(got.get(key), Some(value), "`{key}` printed:\n{first}");
    }
    for meta in ["config", "no-config", "print-config", "help", "version"] {
        assert!(
            !first.contains(&format!("{meta} =")),
            "{meta} is no setting"
        );
    }
    // Unset options are there, commented.
    assert!(first.contains("\n# interface =   (not set)\n"), "{first}");
    let again = dir.join("printed.toml");
    std::fs::write(&again, &first).unwrap();
    let second = stdout(&run_in(
        &dir,
        &["--config", again.to_str().unwrap(), "--print-config"],
        &[],
    ));
    assert_eq!(settings(&second), got, "read back to the same settings");
    // The defaults alone read back to the defaults.
    let defaults = stdout(&run_in(&dir, &["--print-config"], &[]));
    let path = dir.join("defaults.toml");
    std::fs::write(&path, &defaults).unwrap();
    let back = stdout(&run_in(
        &dir,
        &["--config", path.to_str().unwrap(), "--print-config"],
        &[],
    ));
    assert_eq!(settings(&back), settings(&defaults));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_command_line_overrides_the_file_which_overrides_the_defaults() {
    let dir = scratch("config-precedence");
    let file = dir.join("linewatch.toml");
    std::fs::write(
        &file,
        "threshold = 12.5\ntop = 5\nallow = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n\
         read = \"capture.pcap\"\nblock-scanners = true\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let printed = stdout(&run_in(
        &dir,
        &[
            "--config",
            f,
            "--top",
            "7",
            "--allow",
            "172.16.0.0/12",
            "--print-config",
        ],
        &[],
    ));
    let s = settings(&printed);
    assert_eq!(s["threshold"].as_float(), Some(12.5), "file over default");
    assert_eq!(s["top"].as_integer(), Some(7), "command line over file");
    assert_eq!(s["window"].as_integer(), Some(120), "the default");
    assert_eq!(
        s["allow"],
        toml::Value::Array(vec![toml::Value::String("172.16.0.0/12".into())]),
        "a repeatable option on the command line replaces the file's list"
    );
    assert!(printed.contains("top = 7  # command line"), "{printed}");
    assert!(
        printed.contains(&format!("threshold = 12.5  # {f}")),
        "{printed}"
    );
    assert!(printed.contains("window = 120  # default"), "{printed}");
    // A mode on the command line replaces the file's (which would conflict with it).
    let printed = stdout(&run_in(
        &dir,
        &["--config", f, "--mirror", "eth0", "--print-config"],
        &[],
    ));
    let s = settings(&printed);
    assert_eq!(s["mirror"].as_str(), Some("eth0"));
    assert!(!s.contains_key("read"), "{printed}");
    assert_eq!(s["block-scanners"].as_bool(), Some(true));

    // The file's settings drive a real run: its summary file and its --top.
    let capture = linewatch_testkit::corpus::file("pcaps/sv__http-protocol-nodup.pcap");
    let Some(capture) = capture else {
        linewatch_testkit::tools::skip_or_fail("the corpus has no sv__http-protocol-nodup.pcap");
        return;
    };
    let summary = dir.join("from-file.json");
    std::fs::write(
        &file,
        format!(
            "read = {}\nsummary = {}\ntop = 1\n",
            toml::Value::String(capture.display().to_string()),
            toml::Value::String(summary.display().to_string()),
        ),
    )
    .unwrap();
    let out = run_in(&dir, &["--config", f], &[]);
    let text = stdout(&out);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert!(json["requests"].as_u64().unwrap() > 0);
    assert_eq!(
        json["hosts"].as_object().unwrap().len(),
        1,
        "top = 1 from the file: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file's `realtime` or `dashboard` yields to a command line that asks for what excludes it
/// (`--speed`, `--json`), as any file key yields to the command line: the run goes ahead.
#[test]
fn a_file_key_that_the_command_line_excludes_yields() {
    let dir = scratch("config-yields");
    let Some(capture) = linewatch_testkit::corpus::file("pcaps/sv__http-protocol-nodup.pcap")
    else {
        linewatch_testkit::tools::skip_or_fail("the corpus has no sv__http-protocol-nodup.pcap");
        return;
    };
    let capture = capture.display().to_string();
    let file = dir.join("linewatch.toml");
    let f = file.to_str().unwrap();
    for (key, flags) in [
        ("realtime = true", &["--speed", "10000"][..]),
        ("dashboard = true", &["--json"][..]),
    ] {
        std::fs::write(&file, format!("{key}\n")).unwrap();
        let mut args = vec!["--config", f, "--read", &capture];
        args.extend_from_slice(flags);
        let out = run_in(&dir, &args, &[]);
        assert!(
            out.status.success(),
            "{key} in the file with {flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asserts exit 2 and one line on stderr holding every one of `says`.
fn assert_refused(out: &Output, says: &[&str], what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("linewatch: "), "{what}: {stderr}");
    for s in says {
        assert!(stderr.contains(s), "{what}: `{s}` not in {stderr}");
    }
    assert!(out.stdout.is_empty(), "{what}: wrote to stdout");
}

#[test]
fn a_bad_key_or_value_is_one_line_naming_the_file_line_and_key() {
    let dir = scratch("config-errors");
    let path = dir.join("bad.toml");
    let p = path.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "prot = 80",
            &["line 3", "unknown key `prot`", "did you mean `port`"],
        ),
        ("nonsense = 1", &["line 3", "unknown key `nonsense`"]),
        ("port = \"80,http\"", &["line 3", "`port`", "http"]),
        ("port = 0", &["line 3", "`port`", "port 0"]),
        (
            "workers = 0",
            &["line 3", "`workers`", "0 is not in 1..=256"],
        ),
        ("threshold = -1", &["line 3", "`threshold`", "non-negative"]),
        ("idle = \"busy\"", &["line 3", "`idle`", "idle policy"]),
        ("json = \"yes\"", &["line 3", "`json`", "true or false"]),
        ("port = [80, 8080]", &["line 3", "`port`", "an array"]),
        ("[port]\nx = 1", &["line 3", "`port`", "a table"]),
        (
            "config = \"other.toml\"",
            &["line 3", "command-line option only"],
        ),
        ("top = 5\ntop = 6", &["line 4", "not valid TOML"]),
        ("top = = 5", &["line 3", "not valid TOML"]),
    ];
    for (body, says) in cases {
        std::fs::write(&path, format!("# a comment\nwindow = 60\n{body}\n")).unwrap();
        let mut all = says.to_vec();
        all.push(p);
        assert_refused(&run_in(&dir, &["--config", p], &[]), &all, body);
    }
    // What one key needs from another is checked with the whole command line.
    std::fs::write(&path, "read = \"x.pcap\"\nblock-for = 60\n").unwrap();
    assert_refused(
        &run_in(&dir, &["--config", p], &[]),
        &["--block-scanners", p],
        "block-for without block-scanners",
    );
    assert_refused(
        &run_in(&dir, &["--config", "/nonexistent/linewatch.toml"], &[]),
        &["cannot read the settings file /nonexistent/linewatch.toml"],
        "a missing --config file",
    );
    assert_refused(
        &run_in(&dir, &["--config", p, "--no-config"], &[]),
        &["--no-config"],
        "--config with --no-config",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_usual_places_are_read_and_said_so_unless_skipped() {
    let dir = scratch("config-usual-places");
    let home = dir.join("home");
    let xdg = dir.join("xdg");
    for (base, top) in [(home.join(".config"), "3"), (xdg.clone(), "4")] {
        std::fs::create_dir_all(base.join("linewatch")).unwrap();
        std::fs::write(base.join("linewatch/config.toml"), format!("top = {top}\n")).unwrap();
    }
    let (h, x) = (home.to_str().unwrap(), xdg.to_str().unwrap());
    let printed = |env: &[(&str, Option<&str>)], extra: &[&str]| {
        let mut args = vec!["--print-config"];
        args.extend_from_slice(extra);
        let out = run_in(&dir, &args, env);
        let top = settings(&stdout(&out))["top"].as_integer().unwrap();
        (top, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let reading = [(NO_CONFIG_ENV, None), ("HOME", Some(h))];
    // ~/.config when XDG_CONFIG_HOME is unset.
    let env: Vec<_> = reading
        .iter()
        .copied()
        .chain([("XDG_CONFIG_HOME", None)])
        .collect();
    let (top, stderr) = printed(&env, &[]);
    assert_eq!(top, 3, "{stderr}");
    let said = format!(
        "linewatch: settings from {}/.config/linewatch/config.toml (--no-config to skip it)\n",
        h
    );
    assert_eq!(stderr, said);
    // $XDG_CONFIG_HOME first.
    let env: Vec<_> = reading
        .iter()
        .copied()
        .chain([("XDG_CONFIG_HOME", Some(x))])
        .collect();
    let (top, stderr) = printed(&env, &[]);
    assert_eq!(top, 4, "{stderr}");
    assert!(
        stderr.contains(&format!("{x}/linewatch/config.toml")),
        "{stderr}"
    );
    // Skipped by --no-config, by the environment, and by an explicit --config.
    let (top, stderr) = printed(&env, &["--no-config"]);
    assert_eq!((top, stderr.as_str()), (10, ""), "--no-config");
    let skip: Vec<_> = env
        .iter()
        .copied()
        .chain([(NO_CONFIG_ENV, Some("1"))])
        .collect();
    let (top, stderr) = printed(&skip, &[]);
    assert_eq!((top, stderr.as_str()), (10, ""), "{NO_CONFIG_ENV}=1");
    let own = dir.join("own.toml");
    std::fs::write(&own, "top = 9\n").unwrap();
    let (top, stderr) = printed(&env, &["--config", own.to_str().unwrap()]);
    assert_eq!((top, stderr.as_str()), (9, ""), "--config");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tests_run_with_the_usual_places_skipped() {
    // Every test that runs linewatch inherits this from .cargo/config.toml: a settings file
    // on the machine cannot change what they see.
    assert_eq!(
        std::env::var(NO_CONFIG_ENV).ok().as_deref(),
        Some("1"),
        "cargo's [env] did not reach the tests"
    );
}
