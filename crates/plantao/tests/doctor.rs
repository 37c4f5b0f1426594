//! `plantao doctor` end to end: passing on a good setup, failing on each broken prerequisite
//! with its fix.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

fn folder(root: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
    std::fs::write(
        dir.path().join("pipelines/ingest.toml"),
        "[[steps]]\nname = \"load\"\nrun = \"true\"\n",
    )
    .unwrap();
    dir
}

fn doctor(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .arg("--config")
        .arg(dir.join("plantao.toml"))
        .arg("doctor")
        .args(args)
        .env_remove("PLANTAO_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap()
        ),
    )
}

/// The line of check `name` that failed, and the fix given for it.
fn failed<'a>(out: &'a str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(&format!("✗ {name}")))
        .unwrap_or_else(|| panic!("no failed {name} check in:\n{out}"));
    let fix = lines[i + 1..]
        .iter()
        .take_while(|l| !l.starts_with(['✓', '!', '✗']))
        .find(|l| l.trim_start().starts_with("fix: "))
        .unwrap_or_else(|| panic!("no fix for {name} in:\n{out}"));
    (lines[i], fix)
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A webhook receiver that answers 200 to one request.
fn receiver() -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let n = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (port, handle)
}

#[test]
fn a_good_setup_passes_and_sends_a_test_message() {
    let (port, received) = receiver();
    let listen = closed_port();
    let dir = folder(&format!(
        "[server]\nlisten = \"127.0.0.1:{listen}\"\n\n\
         [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    ));
    let (code, out) = doctor(dir.path(), &["--send-test"]);
    assert_eq!(code, 0, "{out}");
    for line in [
        "✓ config",
        "✓ database     SQLite",
        "✓ migrations   at head",
        "✓ disk         the database:",
        "✓ channel      `ops` accepted a test message",
        "✓ listen",
        "checks passed",
    ] {
        assert!(out.contains(line), "{line} missing in:\n{out}");
    }
    assert!(received.join().unwrap().starts_with("POST /hook"));
}

#[test]
fn each_broken_prerequisite_fails_with_its_fix() {
    let dir = folder("[server\nlisten = 1");
    let (code, out) = doctor(dir.path(), &[]);
    assert_eq!(code, 1, "{out}");
    let (line, fix) = failed(&out, "config");
    assert!(line.contains("is not valid"), "{out}");
    assert!(fix.contains("plantao validate"), "{out}");

    let dead = closed_port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = folder(&format!(
        "[server]\nlisten = \"{}\"\n\n\
         [storage]\nurl = \"postgres://plantao:hunter2secret@127.0.0.1:{dead}/ops\"\n\n\
         [connections.warehouse]\nurl = \"postgres://127.0.0.1:{dead}/dw\"\n\n\
         [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/hook\"\n",
        taken.local_addr().unwrap()
    ));
    let (code, out) = doctor(dir.path(), &["--send-test"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        !out.contains("hunter2secret"),
        "the password never shows: {out}"
    );
    let (_, fix) = failed(&out, "database");
    assert!(fix.contains("storage.url"), "{out}");
    let (line, fix) = failed(&out, "connection");
    assert!(
        line.contains("`warehouse`") && fix.contains("connections.warehouse.url"),
        "{out}"
    );
    let (line, _) = failed(&out, "channels");
    assert!(line.contains("database is unreachable"), "{out}");
    let (line, fix) = failed(&out, "listen");
    assert!(
        line.contains("taken by another program") && fix.contains("server.listen"),
        "{out}"
    );
    assert!(out.contains("checks failed"), "{out}");
    drop(taken);
}

#[test]
fn a_channel_that_refuses_the_test_fails() {
    let dead = closed_port();
    let dir = folder(&format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\n\n\
         [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/hook\"\ntimeout = \"2s\"\n",
        closed_port()
    ));
    let (code, out) = doctor(dir.path(), &["--send-test"]);
    assert_eq!(code, 1, "{out}");
    let (line, fix) = failed(&out, "channel");
    assert!(line.contains("`ops` did not accept the test"), "{out}");
    assert!(fix.contains("address and credentials"), "{out}");
}
