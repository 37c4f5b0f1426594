//! `plantao validate` and `plantao config example`, run as a user runs them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SECRET: &str = "planted-fake-secret-77a1e0";

fn plantao(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plantao"));
    cmd.args(args).env_remove("PLANTAO_CONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("plantao runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/plantao.toml")
}

#[test]
fn the_quickstart_validates() {
    let q = quickstart();
    let out = plantao(&["validate", "--config", q.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "ok: 4 pipelines, 4 alert rules, 0 channels, 1 heartbeat, 1 probe\n"
    );
}

#[test]
fn plantao_config_env_var_names_the_file() {
    let q = quickstart();
    let out = plantao(&["validate"], &[("PLANTAO_CONFIG", q.to_str().unwrap())]);
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn mistakes_exit_2_with_every_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plantao.toml"), "[server]\nlistn = \"x\"\n").unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/p.toml"),
        "schedule = \"0 25 * * *\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
    )
    .unwrap();
    let config = dir.path().join("plantao.toml");
    let out = plantao(&["validate", "-c", config.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("plantao.toml:2:1: error: unknown key `listn` in [server]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("p.toml:1:12: error: invalid schedule: the hour field `25`"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("2 errors in the configuration\n"),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_exits_2_and_says_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nope.toml");
    let out = plantao(&["validate", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .1
            .contains("plantao config example > plantao.toml")
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = plantao(&["validate", "--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_printed_examples_validate() {
    let dir = tempfile::tempdir().unwrap();
    let config = plantao(&["config", "example"], &[]);
    assert!(config.status.success());
    std::fs::write(dir.path().join("plantao.toml"), &config.stdout).unwrap();
    let pipeline = plantao(&["config", "example", "--pipeline"], &[]);
    assert!(pipeline.status.success());
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/reports.toml"), &pipeline.stdout).unwrap();
    let path = dir.path().join("plantao.toml");
    let out = plantao(&["validate", "--config", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        text(&out).0,
        "ok: 1 pipeline, 6 alert rules, 1 channel, 1 pattern\n"
    );
}

#[test]
fn a_planted_secret_never_reaches_the_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plantao.toml"),
        "[server]\nlisten = \"${env:PLANTED}\"\n[defaults]\ntimezone = \"${env:PLANTED}\"\n\
         [connections.db]\nurl = \"mysql://app:${env:PLANTED}@db/app\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/p.toml"),
        "timeout = \"${env:PLANTED}\"\nschedule = \"${env:PLANTED}\"\n[[steps]]\nname = \"a\"\n\
         run = \"echo ${env:PLANTED}\"\nhttp = { url = \"${env:PLANTED}\" }\n",
    )
    .unwrap();
    let path = dir.path().join("plantao.toml");
    let out = plantao(
        &["validate", "--config", path.to_str().unwrap()],
        &[("PLANTED", SECRET)],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.matches("error:").count() >= 5, "{stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "leaked:\n{stdout}\n{stderr}"
    );
}
