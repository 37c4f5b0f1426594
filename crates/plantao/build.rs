//! Lays out the functions `plantao serve` runs while it starts, idles and serves next to each
//! other in the program (`startup.order`, made by `scripts/startup-order`), so that the pages
//! of code a daemon keeps resident are few: the kernel maps 64 KiB around each page of code
//! first run, and scattered, those runs touched most of the program (docs/benchmarks.md,
//! Memory).
//!
//! Only for release builds for x86_64 Linux, where Rust links with its own LLD, which reads the
//! order; a name in the file that the program no longer has is passed over.

fn main() {
    println!("cargo::rerun-if-changed=startup.order");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // Another linker chosen by hand (Cargo's `linker` setting or the flags) may not know the
    // option.
    let linker_chosen =
        !var("RUSTC_LINKER").is_empty() || var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" || linker_chosen {
        return;
    }
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("startup.order");
    println!(
        "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
