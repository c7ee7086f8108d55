//! The `linewatch` command: parse → plan → run → summarise.
//!
//! - [`cli`]: the options and their value parsers;
//! - [`plan`]: what the options mean together, checked before anything is opened (pure);
//! - [`run`]: opens inputs and outputs, starts the replay or live capture ([`capture`]) and
//!   the metrics endpoint ([`metrics_server`]);
//! - [`output`]: prints what the engine reports, the status line and the exit summary;
//! - [`dashboard`]: `--dashboard`, the full-screen view.
//!
//! All counting happens in `linewatch-engine`; all formatting in `linewatch-report`. How the
//! command fails, and its exit codes: [`exit`].

#![forbid(unsafe_code)]

mod capture;
mod cli;
mod dashboard;
mod exit;
mod metrics_server;
mod output;
mod plan;
mod run;

use std::process::ExitCode;

use linewatch_engine::live::mirror;

use crate::exit::bad_input;
use crate::plan::Plan;

/// mimalloc: allocation is off the per-packet path, but the aggregator and report building
/// allocate every second, and mimalloc keeps that cheap and the heap compact.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The mirror's watchdog process (see `linewatch_engine::live::mirror`) is this binary too.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(mirror::WATCHDOG_ARG) {
        return mirror::watchdog_main(&args[2..]);
    }
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let plan = match Plan::from_cli(&cli, cpus) {
        Ok(plan) => plan,
        Err(e) => {
            return bad_input(match &cli.settings_from {
                Some(file) => format!("{e} (settings from {} included)", file.display()),
                None => e,
            })
        }
    };
    let top_n = plan.outputs.top;
    match run::run(plan) {
        Ok(done) => output::summarise(&done.result, &done.human, top_n, done.summary_file),
        Err(code) => code,
    }
}
