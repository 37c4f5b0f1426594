//! The operator's documents held to the code: every `plantao …` command they show exists with
//! the options written after it, every configuration key they name or show in a TOML example
//! is one plantao reads (`plantao_config::keys_of`, the reader's own lists), and every
//! `PLANTAO_…` variable is one the code uses.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use plantao_config::{ConfigFile, keys_of};

/// The documents checked: the runbook, the deployment guide, the README and the complete
/// example's.
const DOCUMENTS: &[&str] = &[
    "docs/operations.md",
    "docs/deploy.md",
    "README.md",
    "examples/biz-reports/README.md",
];
/// The tables a key may be named by in running text, as `server.listen`.
const SECTIONS: &[&str] = &[
    "server",
    "storage",
    "defaults",
    "engine",
    "routing",
    "pings",
    "self_heartbeat",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The code in a Markdown text: fenced blocks (with their language) and inline spans.
fn code(markdown: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut spans = Vec::new();
    let mut fence: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match (&mut fence, trimmed.strip_prefix("```")) {
            (None, Some(language)) => fence = Some((language.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.push(fence.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {
                let mut parts = line.split('`');
                parts.next();
                while let Some(inside) = parts.next() {
                    spans.push(inside.to_owned());
                    parts.next();
                }
            }
        }
    }
    (blocks, spans)
}

/// Each `plantao …` command in `text` (a line of shell or an inline span): its words up to the
/// first that is not a subcommand's, and the `--options` that follow on the same line.
fn commands(text: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            // `docker exec plantao plantao …`: the first is the container's name.
            if *word != "plantao" || words.get(i + 1) == Some(&"plantao") {
                continue;
            }
            let path: Vec<String> = words[i + 1..]
                .iter()
                .take_while(|w| {
                    !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                })
                .take(2)
                .map(|w| (*w).to_owned())
                .collect();
            if path.is_empty() {
                continue;
            }
            let options = words[i + 1..]
                .iter()
                .take_while(|w| !matches!(**w, "|" | "&&" | ";" | ">" | "#"))
                .filter_map(|w| w.strip_prefix("--"))
                .map(|w| {
                    w.split(['=', '`', ')', ']', '|'])
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .filter(|w| !w.is_empty())
                .collect();
            out.push((path, options));
        }
    }
    out
}

/// Whether `plantao PATH --help` works, and the help it printed (the longest path that works:
/// `plantao next biz-reports` is `next` with an argument).
fn help(path: &[String]) -> Option<String> {
    for n in (1..=path.len()).rev() {
        let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
            .args(&path[..n])
            .arg("--help")
            .output()
            .unwrap();
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    None
}

/// The keys of a TOML example that plantao does not read, as `path.key`.
fn unknown_keys(file: ConfigFile, path: &str, table: &toml::Table, out: &mut Vec<String>) {
    let Some(known) = keys_of(file, path) else {
        out.push(format!("[{path}] (no such table)"));
        return;
    };
    for (key, value) in table {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if !known.allows(key) {
            out.push(here);
            continue;
        }
        let inner = if known == plantao_config::Keys::Any {
            format!("{path}.*")
        } else {
            here
        };
        match value {
            toml::Value::Table(t) => unknown_keys(file, &inner, t, out),
            toml::Value::Array(items) => {
                for item in items {
                    if let toml::Value::Table(t) = item {
                        unknown_keys(file, &inner, t, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Every Rust source file's text, to look for the variables the documents name.
fn sources() -> String {
    let mut all = String::new();
    let mut folders = vec![repo().join("crates")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                all.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    all
}

#[test]
fn the_documents_name_only_commands_options_keys_and_variables_that_exist() {
    let sources = sources();
    let mut wrong = Vec::new();
    let mut checked = BTreeSet::new();
    for doc in DOCUMENTS {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        let (blocks, spans) = code(&text);
        let shell = blocks
            .iter()
            .filter(|(language, _)| matches!(language.as_str(), "sh" | "bash" | ""))
            .map(|(_, body)| body.as_str());
        for piece in shell.chain(spans.iter().map(String::as_str)) {
            for (path, options) in commands(piece) {
                let Some(help) = help(&path) else {
                    wrong.push(format!("{doc}: `plantao {}` is no command", path.join(" ")));
                    continue;
                };
                for option in options {
                    if !help.contains(&format!("--{option}")) {
                        wrong.push(format!(
                            "{doc}: `plantao {}` has no --{option}",
                            path.join(" ")
                        ));
                    }
                }
                checked.insert(path.join(" "));
            }
        }
        for (language, body) in &blocks {
            if language != "toml" {
                continue;
            }
            let table: toml::Table = match body.parse() {
                Ok(t) => t,
                Err(e) => {
                    wrong.push(format!("{doc}: a TOML example does not parse: {e}"));
                    continue;
                }
            };
            let file = if table.contains_key("steps") || table.contains_key("schedule") {
                ConfigFile::Pipeline
            } else {
                ConfigFile::Main
            };
            let mut unknown = Vec::new();
            unknown_keys(file, "", &table, &mut unknown);
            wrong.extend(unknown.into_iter().map(|k| format!("{doc}: no key `{k}`")));
        }
        for span in &spans {
            if let Some((section, key)) = span.split_once('.')
                && SECTIONS.contains(&section)
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !keys_of(ConfigFile::Main, section).unwrap().allows(key)
            {
                wrong.push(format!("{doc}: no key `{span}`"));
            }
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("PLANTAO_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !sources.contains(&format!("\"{name}")) {
                wrong.push(format!("{doc}: no variable `{name}` in the code"));
            }
            rest = &rest[at + name.len()..];
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for must in [
        "serve",
        "backup",
        "restore",
        "doctor",
        "token create",
        "healthcheck",
    ] {
        assert!(checked.contains(must), "{must} not found in {checked:?}");
    }
}

/// The other way round: the README's configuration reference names every key plantao reads
/// (in its code spans: `http = { method, url }` names `method` and `url`).
#[test]
fn the_configuration_reference_names_every_key() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("## Configuration reference").unwrap();
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 1 + e);
    let (_, spans) = code(&readme[start..end]);
    let named: BTreeSet<&str> = spans
        .iter()
        .flat_map(|s| {
            s.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        })
        .collect();
    let mut missing = Vec::new();
    for (file, path) in plantao_config::TABLES {
        let Some(plantao_config::Keys::Only(keys)) = keys_of(*file, path) else {
            unreachable!("TABLES lists tables with fixed keys");
        };
        missing.extend(
            keys.iter()
                .filter(|k| !named.contains(**k))
                .map(|k| format!("{file:?} [{path}] {k}")),
        );
    }
    assert!(
        missing.is_empty(),
        "not in the README's reference:\n{}",
        missing.join("\n")
    );
}
