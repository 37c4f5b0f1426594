//! `plantao completions` and `plantao man`, used as a user would: the bash script sourced by a
//! real bash and asked to complete, the manual pages rendered by groff (with `-k`, as `man`
//! does: the help texts hold UTF-8 such as "…").

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn plantao(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plantao"))
        .args(args)
        .env_remove("PLANTAO_CONFIG")
        .output()
        .expect("plantao runs")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// What bash's completion offers for `words`, the last one being completed.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_plantao plantao '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    stdout(&out).lines().map(str::to_owned).collect()
}

/// The top-level commands, as the manual pages name them (plantao-serve.1 → serve).
fn commands(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| {
            let name = f.strip_prefix("plantao-")?.strip_suffix(".1")?;
            (!name.contains('-')).then(|| name.to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn bash_completes_commands_and_their_options_and_the_other_shells_know_every_command() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&plantao(&["man", "--dir", dir.path().to_str().unwrap()]));
    let all = commands(dir.path());
    assert!(all.len() > 30, "{all:?}");
    let script = dir.path().join("plantao.bash");
    std::fs::write(&script, stdout(&plantao(&["completions", "bash"]))).unwrap();

    assert_eq!(complete(&script, &["plantao", "ser"]), ["serve"]);
    let offered = complete(&script, &["plantao", ""]);
    for name in &all {
        assert!(offered.contains(name), "{name} not offered: {offered:?}");
    }
    assert_eq!(
        complete(&script, &["plantao", "token", "create", "--r"]),
        ["--role"]
    );
    assert!(complete(&script, &["plantao", "run", "--dry"]).contains(&"--dry-run".to_owned()));

    for shell in ["zsh", "fish"] {
        let text = stdout(&plantao(&["completions", shell]));
        for name in &all {
            assert!(text.contains(name.as_str()), "{shell}: {name} missing");
        }
    }
    let bad = plantao(&["completions", "powershell"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bash, zsh, fish"));
}

#[test]
fn every_manual_page_renders_without_a_warning() {
    let whole = stdout(&plantao(&["man"]));
    assert!(whole.contains(".TH plantao 1"), "{whole}");
    let dir = tempfile::tempdir().unwrap();
    let said = stdout(&plantao(&["man", "--dir", dir.path().to_str().unwrap()]));
    let pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(said.starts_with(&format!("{} pages written", pages.len())));
    for page in &pages {
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(page)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", page.display());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{}",
            page.display()
        );
    }
    let create = dir.path().join("plantao-token-create.1");
    let out = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-P-cbou"])
        .arg(&create)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("plantao token create"), "{text}");
    assert!(text.contains("--role"), "{text}");
    assert!(text.contains("admin"), "{text}");
}
