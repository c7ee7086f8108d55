//! Compiles linewatch's BPF programs with clang into `$OUT_DIR`, where the crate embeds them
//! with `include_bytes!`: the XDP program (`bpf/linewatch.bpf.c`, for `live::xdp`) and the tc
//! program that steers `--mirror`'s copies (`bpf/mirror_steer.bpf.c`, for `live::mirror`).
//! Without clang the build stops with one line saying how to get it.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

/// Each program's source and the object file it becomes in `$OUT_DIR`.
const PROGRAMS: [(&str, &str); 2] = [
    ("bpf/linewatch.bpf.c", "linewatch.bpf.o"),
    ("bpf/mirror_steer.bpf.c", "mirror_steer.bpf.o"),
];

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    for (source, object) in PROGRAMS {
        println!("cargo:rerun-if-changed={source}");
        compile(&clang, source, &out_dir.join(object));
    }
}

fn compile(clang: &str, source: &str, out: &PathBuf) {
    let result = Command::new(clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c", source, "-o",
        ])
        .arg(out)
        .output();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "error: clang could not compile the BPF program {source}:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            exit(1);
        }
        Err(e) => {
            eprintln!(
                "error: cannot run `{clang}` ({e}): clang is needed to build linewatch's BPF \
                 programs; install it (Debian/Ubuntu: apt-get install clang) or set CLANG=/path/to/clang"
            );
            exit(1);
        }
    }
}
