//! `bench-rig`: the bench and the demo; see `linewatch_bench_rig::cli`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    linewatch_bench_rig::cli::main()
}
