//! Compiles the XDP program (`bpf/linewatch.bpf.c`) with clang into `$OUT_DIR`, where
//! `live::xdp` embeds it with `include_bytes!`. Without clang the build stops with one line
//! saying how to get it.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

fn main() {
    let source = "bpf/linewatch.bpf.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("linewatch.bpf.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let result = Command::new(&clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c", source, "-o",
        ])
        .arg(&out)
        .output();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "error: clang could not compile the XDP program {source}:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            exit(1);
        }
        Err(e) => {
            eprintln!(
                "error: cannot run `{clang}` ({e}): clang is needed to build linewatch's XDP \
                 program; install it (Debian/Ubuntu: apt-get install clang) or set CLANG=/path/to/clang"
            );
            exit(1);
        }
    }
}
