//! Link options for the pyblogd binary: packed relative relocations (DT_RELR) when the
//! toolchain supports them.
//!
//! A position-independent binary carries one relocation entry per pointer in its data; DT_RELR
//! packs them into bitmaps (754 KB of entries → 10 KB), which ld.so reads at every start and
//! which stayed resident in the master and each worker: the master drops ~0.6 MiB, towards
//! its < 5 MiB target. It needs glibc ≥ 2.36 where the binary runs; see [`OPT_OUT`].

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACK_RELOCS: &str = "-Wl,-z,pack-relative-relocs";

/// Set (to anything) to build without DT_RELR, e.g. on a glibc ≥ 2.36 host for hosts with an
/// older glibc: such a binary names the `GLIBC_ABI_DT_RELR` version and refuses to start there.
const OPT_OUT: &str = "PYBLOGD_NO_PACK_RELATIVE_RELOCS";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={OPT_OUT}");
    if env::var_os(OPT_OUT).is_some() || env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    if toolchain_packs_relocs() {
        println!("cargo:rustc-link-arg-bins={PACK_RELOCS}");
    }
}

/// Links a tiny Rust program with the flag through the same rustc, target, linker and
/// RUSTFLAGS as this build (rustc may link with GNU ld or its own lld), and on a native build
/// also runs it, so the build host's loader has accepted the result. Linker warnings are
/// fatal in the probe, since older linkers only warn about an unknown `-z` option. Any
/// failure means no: the probe never fails the build.
fn toolchain_packs_relocs() -> bool {
    let (Some(out_dir), Some(rustc)) = (env::var_os("OUT_DIR"), env::var_os("RUSTC")) else {
        return false;
    };
    let out_dir = PathBuf::from(out_dir);
    let source = out_dir.join("relr_probe.rs");
    let binary = out_dir.join("relr_probe");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    if !links(&rustc, &source, &binary) {
        return false;
    }
    let native = env::var("TARGET").ok() == env::var("HOST").ok();
    !native || Command::new(&binary).status().is_ok_and(|s| s.success())
}

fn links(rustc: &OsString, source: &Path, binary: &Path) -> bool {
    let mut command = Command::new(rustc);
    command
        .arg("--crate-name=relr_probe")
        .arg("-Cdebuginfo=0")
        .arg("-Clink-arg=-Wl,--fatal-warnings")
        .arg(format!("-Clink-arg={PACK_RELOCS}"))
        .arg("-o")
        .arg(binary)
        .arg(source);
    if let Ok(target) = env::var("TARGET") {
        command.arg(format!("--target={target}"));
    }
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        command.arg("-C").arg({
            let mut arg = OsString::from("linker=");
            arg.push(linker);
            arg
        });
    }
    if let Ok(flags) = env::var("CARGO_ENCODED_RUSTFLAGS") {
        command.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    }
    command.output().is_ok_and(|out| out.status.success())
}
