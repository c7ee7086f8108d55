//! The settings file (`--config FILE`, TOML): defaults < the file < the command line.
//!
//! Contract:
//! - Every long option is a key, spelled as the option without its dashes (`port = "80,8080"`,
//!   `workers = 4`, `report-interval = 5`); the key set is read from clap's `Command`, so an
//!   option added to [`super::Cli`] is a key with nothing more to write. A switch takes
//!   `true` or `false`; a repeatable option (`allow`) takes an array or one value. Only
//!   `config`, `no-config` and `print-config` (and `help`, `version`) are not keys.
//! - A value is checked by the option's own clap value parser, so it is accepted or refused
//!   exactly as on the command line. An unknown key, a value of the wrong shape, a bad value
//!   or a TOML syntax error is one line naming the file, the line and the key (exit 2).
//! - A key the command line also sets is left out, and so is a key that conflicts with an
//!   option the command line gives (`read` in the file, `--interface` on the command line):
//!   the command line wins, a repeatable option's list included (it replaces the file's).
//! - Without `--config`, the first file that exists of `$XDG_CONFIG_HOME/linewatch/config.toml`
//!   (or `~/.config/linewatch/config.toml`) and `/etc/linewatch/config.toml` is read, and one
//!   line on stderr says so. `--no-config`, or `LINEWATCH_NO_CONFIG` set to anything but
//!   empty or `0`, skips them (the tests set it: a machine's file must not change them).
//! - `--print-config` writes the effective settings as a file `--config` reads back to the
//!   same settings: each key with its value and where it came from, unset options commented.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::{first_line, Cli};
use crate::exit::bad_input;

/// Options about the settings file itself: never keys in it.
const NOT_KEYS: [&str; 5] = ["config", "no-config", "print-config", "help", "version"];

/// The environment variable that skips the usual places, as `--no-config` does.
pub(crate) const NO_CONFIG_ENV: &str = "LINEWATCH_NO_CONFIG";

/// The file under a configuration directory (`$XDG_CONFIG_HOME`, `~/.config`).
const USER_FILE: &str = "linewatch/config.toml";
/// The system-wide file, read when the user has none.
const SYSTEM_FILE: &str = "/etc/linewatch/config.toml";

/// What the command line asks for.
pub(super) enum Parsed {
    /// A run with these options.
    Run(Box<Cli>),
    /// `--print-config`: this settings file.
    Print(String),
}

/// Parses `args` (the program's name first) with the settings file's below them: the command
/// line alone first (what it sets, the file may not), then the file's words before it.
pub(super) fn parse_from(args: Vec<OsString>) -> Result<Parsed, ExitCode> {
    let cmd = Cli::command();
    let given = cmd.clone().try_get_matches_from(&args).map_err(clap_exit)?;
    let explicit = given.get_one::<PathBuf>("config").map(PathBuf::as_path);
    let file = locate(explicit, given.get_flag("no_config"));
    let mut all = args.clone();
    if let Some((path, found)) = &file {
        if *found {
            eprintln!(
                "linewatch: settings from {} (--no-config to skip it)",
                path.display()
            );
        }
        let settings = file_args(&cmd, path, &given).map_err(bad_input)?;
        // After the program's name.
        let at = all.len().min(1);
        all.splice(at..at, settings);
    }
    let matches = cmd.clone().try_get_matches_from(&all).map_err(|e| {
        match &file {
            // What one key needs from another (`block-for` needs `block-scanners`).
            Some((path, _)) if all.len() > args.len() => bad_input(format!(
                "{} (settings from {} included)",
                first_line(&e.render().to_string()),
                path.display()
            )),
            _ => clap_exit(e),
        }
    })?;
    if matches.get_flag("print_config") {
        let file = file.as_ref().map(|(p, _)| p.as_path());
        return Ok(Parsed::Print(print(&cmd, &matches, &given, file)));
    }
    let added = all.len() > args.len();
    Cli::from_arg_matches(&matches)
        .map(|mut cli| {
            // The plan's own checks then say the file took part in what they refuse.
            if added {
                cli.settings_from = file.map(|(path, _)| path);
            }
            Parsed::Run(Box::new(cli))
        })
        .map_err(clap_exit)
}

/// Writes `text` to stdout: success, also when the reader went away (`| head`); a stdout that
/// fails otherwise is one line, exit 1.
pub(super) fn write_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linewatch: cannot write the settings to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The exit for a clap error: `--help` and `--version` print and succeed, anything else is one
/// line, exit 2.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    bad_input(format!(
        "{} (see linewatch --help)",
        first_line(&e.render().to_string())
    ))
}

/// The options that are keys: every long option but [`NOT_KEYS`].
pub(crate) fn keys(cmd: &Command) -> impl Iterator<Item = (&str, &Arg)> {
    cmd.get_arguments().filter_map(|arg| {
        let long = arg.get_long()?;
        (!NOT_KEYS.contains(&long)).then_some((long, arg))
    })
}

/// Where the settings come from: the `--config` file, or the first of the usual places that
/// exists unless skipped. The flag is true for a file found in the usual places (whose
/// reading is announced).
pub(crate) fn locate(explicit: Option<&Path>, skip_usual: bool) -> Option<(PathBuf, bool)> {
    if let Some(path) = explicit {
        return Some((path.to_path_buf(), false));
    }
    let skip_env = std::env::var_os(NO_CONFIG_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    if skip_usual || skip_env {
        return None;
    }
    usual_places()
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| (p, true))
}

/// The usual places, in the order they are tried.
fn usual_places() -> Vec<PathBuf> {
    let mut places = Vec::new();
    // The XDG base directory rule: an unset, empty or relative $XDG_CONFIG_HOME means
    // ~/.config.
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    if let Some(dir) = xdg.or_else(|| home.map(|h| h.join(".config"))) {
        places.push(dir.join(USER_FILE));
    }
    places.push(PathBuf::from(SYSTEM_FILE));
    places
}

/// The file's settings as command-line words (`--key=value`, `--switch`), for the keys the
/// command line (`given`) leaves to it; `Err` is the one line that says what is wrong.
pub(crate) fn file_args(
    cmd: &Command,
    path: &Path,
    given: &ArgMatches,
) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the settings file {}: {e}", path.display()))?;
    let at = |offset: usize| format!("{} line {}", path.display(), line_of(&text, offset));
    // The spans say where each key is; the typed table says what each value is.
    let spans = toml::de::DeTable::parse(&text).map_err(|e| {
        let line = e
            .span()
            .map_or_else(|| path.display().to_string(), |span| at(span.start));
        format!("{line}: not valid TOML: {}", e.message().trim())
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!("{}: not valid TOML: {}", path.display(), e.message().trim())
    })?;
    let mut entries: Vec<(usize, &str)> = spans
        .get_ref()
        .iter()
        .map(|(key, _)| (key.span().start, key.get_ref().as_ref()))
        .collect();
    entries.sort_unstable();

    let keys: Vec<(&str, &Arg)> = keys(cmd).collect();
    let on_command_line: Vec<&Arg> = keys
        .iter()
        .filter(|(_, arg)| {
            given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
        })
        .map(|(_, arg)| *arg)
        .collect();
    let mut args = Vec::new();
    for (offset, key) in entries {
        let where_ = at(offset);
        let Some((long, arg)) = keys.iter().find(|(long, _)| *long == key) else {
            return Err(format!("{where_}: {}", unknown_key(key, &keys)));
        };
        let value = &table[key];
        let words = words(long, arg, value).map_err(|why| format!("{where_}: `{key}`: {why}"))?;
        check(cmd, &words).map_err(|why| format!("{where_}: `{key}`: {why}"))?;
        let overridden = on_command_line.iter().any(|c| {
            c.get_id() == arg.get_id()
                || cmd
                    .get_arg_conflicts_with(c)
                    .iter()
                    .any(|x| x.get_id() == arg.get_id())
                || cmd
                    .get_arg_conflicts_with(arg)
                    .iter()
                    .any(|x| x.get_id() == c.get_id())
        });
        if !overridden {
            args.extend(words);
        }
    }
    Ok(args)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// What to say about a key that is no option, with the nearest one when it is a near miss.
fn unknown_key(key: &str, keys: &[(&str, &Arg)]) -> String {
    if NOT_KEYS.contains(&key) {
        return format!("`{key}` is a command-line option only, not a setting");
    }
    /// At most this many edits away is a near miss worth naming.
    const NEAR: usize = 2;
    let nearest = keys
        .iter()
        .map(|(long, _)| (edit_distance(key, long), *long))
        .min()
        .filter(|(d, _)| *d <= NEAR);
    match nearest {
        Some((_, long)) => format!("unknown key `{key}` (did you mean `{long}`?)"),
        None => format!("unknown key `{key}` (the keys are the long options of linewatch --help)"),
    }
}

/// Levenshtein distance (both strings are short option names).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The command-line words for `key = value`, or why the value has the wrong shape.
fn words(long: &str, arg: &Arg, value: &toml::Value) -> Result<Vec<OsString>, String> {
    match arg.get_action() {
        ArgAction::SetTrue => match value {
            toml::Value::Boolean(true) => Ok(vec![format!("--{long}").into()]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            other => Err(format!(
                "a switch takes true or false, not {}",
                shape(other)
            )),
        },
        ArgAction::Append => {
            let items = match value {
                toml::Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            items
                .into_iter()
                .map(|v| scalar(v).map(|s| format!("--{long}={s}").into()))
                .collect()
        }
        _ => Ok(vec![format!("--{long}={}", scalar(value)?).into()]),
    }
}

/// A string, number or boolean as the command line would spell it.
fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("takes a string or a number, not {}", shape(other))),
    }
}

fn shape(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array (only a repeatable option takes one)",
        toml::Value::Table(_) => "a table (the settings are top-level keys)",
    }
}

/// Checks one key's words with clap's own parsers (alone: what it needs from other options,
/// such as `block-for`'s `block-scanners`, is checked with the whole command line).
fn check(cmd: &Command, words: &[OsString]) -> Result<(), String> {
    let argv = std::iter::once(OsString::from("linewatch")).chain(words.iter().cloned());
    match cmd.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => Ok(()),
        Err(e) => Err(super::first_line(&e.render().to_string())),
    }
}

/// The effective settings (`matches`) as a settings file: a header, then per key its help's
/// first line as a comment and `key = value` with where the value came from; an option with no
/// value is a commented line. `given` holds the command line's own options, `file` is where
/// the rest came from, if anywhere.
pub(crate) fn print(
    cmd: &Command,
    matches: &ArgMatches,
    given: &ArgMatches,
    file: Option<&Path>,
) -> String {
    let mut out = String::from(
        "# linewatch settings: defaults < this file (--config FILE) < command-line options.\n\
         # Written by linewatch --print-config; every key is a long option of linewatch --help.\n",
    );
    for (long, arg) in keys(cmd) {
        let id = arg.get_id().as_str();
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let _ = write!(out, "\n# {}.\n", first_sentence(&help));
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let from = match (given.value_source(id), matches.value_source(id), file) {
            (Some(ValueSource::CommandLine), _, _) => "  # command line".to_owned(),
            (_, Some(ValueSource::CommandLine), Some(file)) => {
                format!("  # {}", file.display())
            }
            (_, Some(ValueSource::DefaultValue), _) => "  # default".to_owned(),
            _ => String::new(),
        };
        match arg.get_action() {
            ArgAction::SetTrue => {
                let on = matches.get_flag(id);
                let _ = writeln!(out, "{long} = {on}{from}");
            }
            ArgAction::Append => {
                let items: Vec<String> = raw.iter().map(|v| toml_value(v)).collect();
                let _ = writeln!(out, "{long} = [{}]{from}", items.join(", "));
            }
            _ => match raw.first() {
                Some(v) => {
                    let _ = writeln!(out, "{long} = {}{from}", toml_value(v));
                }
                None => {
                    let _ = writeln!(out, "# {long} =   (not set)");
                }
            },
        }
    }
    out
}

/// The help text up to its first full stop that ends a sentence (not `e.g.`'s), without it.
fn first_sentence(help: &str) -> &str {
    let mut from = 0;
    while let Some(at) = help[from..].find(". ").map(|i| from + i) {
        if help[at + 2..].starts_with(|c: char| c.is_uppercase()) {
            return &help[..at];
        }
        from = at + 2;
    }
    help.trim_end_matches('.')
}

/// `raw` as a TOML value: a plain number as a number, anything else as a string.
fn toml_value(raw: &str) -> String {
    let plain_number = !raw.is_empty()
        && raw.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !raw.starts_with('.')
        && !raw.ends_with('.')
        && raw.matches('.').count() <= 1
        && (raw == "0" || !raw.starts_with('0') || raw.starts_with("0."));
    if plain_number {
        raw.to_owned()
    } else {
        toml::Value::String(raw.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_toml_that_reads_back_as_written() {
        for (raw, number) in [
            ("4", true),
            ("12.5", true),
            ("0", true),
            ("80,8080", false),
            ("007", false),
            ("1.", false),
            ("hybrid", false),
            ("a\"b'c\\", false),
            ("", false),
        ] {
            let printed = toml_value(raw);
            let back: toml::Table = format!("x = {printed}").parse().unwrap();
            let text = match &back["x"] {
                toml::Value::String(s) => {
                    assert!(!number, "{raw:?} printed as a string");
                    s.clone()
                }
                other => {
                    assert!(number, "{raw:?} printed as {other}");
                    printed.clone()
                }
            };
            assert_eq!(text, raw);
        }
    }

    #[test]
    fn a_near_miss_names_the_key_and_help_keeps_its_first_sentence() {
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("workers", "workers"), 0);
        assert_eq!(edit_distance("", "top"), 3);
        assert_eq!(
            first_sentence("The rx queues, e.g. 0,1 or 0-3. Default: all."),
            "The rx queues, e.g. 0,1 or 0-3"
        );
        assert_eq!(first_sentence("One sentence."), "One sentence");
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 0), 1);
    }

    /// A valid value for each option whose default cannot show that the file's value arrived
    /// (a switch is set to `true`, an option with a default gets it from clap). A new option
    /// with neither needs one here: the round-trip test names it.
    const SAMPLES: &[(&str, &str)] = &[
        ("read", r#""capture.pcap""#),
        ("interface", r#""eth9""#),
        ("mirror", r#""eth8""#),
        ("port", r#""80,8080""#),
        ("dst", r#"["192.0.2.0/24", "2001:db8::1"]"#),
        ("queues", r#""0-3""#),
        ("cores", r#""1,2,3,4""#),
        ("ring", "4096"),
        ("idle", r#""poll""#),
        ("rss", r#""keep""#),
        ("duration", "30"),
        ("threshold", "12.5"),
        ("window", "60"),
        ("baseline", "30"),
        ("alert-log", r#""alerts.log""#),
        ("summary", r#""summary.json""#),
        ("workers", "3"),
        ("top", "7"),
        ("top-by", r#"["client", "header:referer"]"#),
        ("retention", r#""24h""#),
        ("allow", r#"["10.0.0.0/8", "2001:db8::/32"]"#),
        ("block-for", "600"),
        ("metrics", r#""127.0.0.1:9920""#),
        ("speed", "2.5"),
    ];

    /// The TOML value a file sets `arg` to in the round-trip test.
    fn sample(long: &str, arg: &Arg) -> String {
        if let Some((_, v)) = SAMPLES.iter().find(|(k, _)| *k == long) {
            return (*v).to_owned();
        }
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            return "true".to_owned();
        }
        let default = arg.get_default_values();
        assert!(
            !default.is_empty(),
            "option `{long}` has no default: give it a sample in SAMPLES"
        );
        let values: Vec<String> = default
            .iter()
            .map(|v| toml_value(&v.to_string_lossy()))
            .collect();
        match arg.get_action() {
            ArgAction::Append => format!("[{}]", values.join(", ")),
            _ => values.join(""),
        }
    }

    fn conflict(cmd: &Command, a: &Arg, b: &Arg) -> bool {
        let names = |x: &Arg, y: &Arg| {
            cmd.get_arg_conflicts_with(x)
                .iter()
                .any(|c| c.get_id() == y.get_id())
        };
        names(a, b) || names(b, a)
    }

    /// `--config FILE --print-config`, in process.
    fn printed(file: &Path) -> String {
        let args = [
            "linewatch",
            "--config",
            file.to_str().unwrap(),
            "--print-config",
        ];
        match parse_from(args.iter().map(OsString::from).collect()) {
            Ok(Parsed::Print(text)) => text,
            Ok(Parsed::Run(_)) => panic!("--print-config ran"),
            Err(code) => panic!("--config {} failed: {code:?}", file.display()),
        }
    }

    #[test]
    fn every_option_in_a_file_round_trips_through_print_config() {
        let cmd = Cli::command();
        let keys: Vec<(&str, &Arg)> = keys(&cmd).collect();
        assert!(keys.len() >= 30, "{} keys", keys.len());
        let dir = std::env::temp_dir().join(format!("linewatch-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Files of options that may go together (a run reads, captures or mirrors), until
        // every option has been in one: the first holds all but what conflicts with them.
        let mut left: Vec<&str> = keys.iter().map(|(long, _)| *long).collect();
        let mut files = 0;
        while !left.is_empty() {
            let mut chosen: Vec<(&str, &Arg)> = Vec::new();
            for &(long, arg) in keys.iter().filter(|(l, _)| left.contains(l)) {
                if chosen.iter().all(|(_, c)| !conflict(&cmd, c, arg)) {
                    chosen.push((long, arg));
                }
            }
            left.retain(|l| !chosen.iter().any(|(c, _)| c == l));
            let text: String = chosen
                .iter()
                .map(|(long, arg)| format!("{long} = {}\n", sample(long, arg)))
                .collect();
            let file = dir.join(format!("every-{files}.toml"));
            std::fs::write(&file, &text).unwrap();
            let want: toml::Table = text.parse().unwrap();
            let first = printed(&file);
            let got: toml::Table = first.parse().unwrap();
            for (key, value) in &want {
                assert_eq!(got.get(key), Some(value), "`{key}` printed\n{first}");
            }
            let again = dir.join(format!("printed-{files}.toml"));
            std::fs::write(&again, &first).unwrap();
            let second: toml::Table = printed(&again).parse().unwrap();
            assert_eq!(second, got, "read back to the same settings\n{first}");
            files += 1;
        }
        assert!(
            files >= 3,
            "read, interface and mirror go in separate files"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_user_file_comes_before_the_system_one() {
        let places = usual_places();
        assert_eq!(
            places.last().map(PathBuf::as_path),
            Some(Path::new(SYSTEM_FILE))
        );
        if places.len() == 2 {
            assert!(places[0].ends_with(USER_FILE));
        }
    }
}
