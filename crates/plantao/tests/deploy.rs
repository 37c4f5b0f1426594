//! The deployment files of `examples/` and docs/deploy.md, checked by the tools that read them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The unit as shipped, with its binary pointed at the one under test, checked by
/// `systemd-analyze verify` (every key known, every command there, `man:plantao(1)` found among
/// the pages `plantao man` writes) and scored by `systemd-analyze security`.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo().join("examples/systemd/plantao.service")).unwrap();
    assert!(unit.contains("/usr/local/bin/plantao healthcheck"));
    let unit = unit.replace("/usr/local/bin/plantao", env!("CARGO_BIN_EXE_plantao"));
    let path = dir.path().join("plantao.service");
    std::fs::write(&path, unit).unwrap();
    let man = dir.path().join("man");
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .args(["man", "--dir"])
        .arg(man.join("man1"))
        .output()
        .unwrap();
    assert!(out.status.success());

    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", &man)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{said}");
    assert_eq!(said, "", "every key known, every command found");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for plantao.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    // systemd rates 0–10; below 2 is "OK", the best band it has for a service that runs
    // arbitrary commands on the network.
    assert!(level < 2.0, "exposure {level}:\n{text}");
}
