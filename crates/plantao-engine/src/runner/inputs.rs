//! A pipeline's input files: found by its `inputs` patterns and hashed (SHA-256) when a run
//! starts, so that a run whose files are all as its pipeline's last success found them has
//! nothing to do.

use std::io::Read;
use std::path::{Path, PathBuf};

use plantao_config::Inputs;
use plantao_store::InputFile;
use sha2::{Digest, Sha256};

/// The files the patterns match now, by path (shown relative to the patterns' base when under
/// it), each hashed. A file that cannot be read is an error naming it.
pub(crate) fn hash(inputs: &Inputs) -> Result<Vec<InputFile>, String> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for pattern in &inputs.patterns {
        let full = if Path::new(pattern).is_absolute() {
            pattern.clone()
        } else {
            let base = glob::Pattern::escape(&inputs.base.display().to_string());
            format!("{}/{pattern}", base.trim_end_matches('/'))
        };
        let paths = glob::glob(&full).map_err(|e| format!("input pattern `{pattern}`: {e}"))?;
        for path in paths {
            let path = path.map_err(|e| format!("cannot read the input folder {e}"))?;
            if !path.is_file() {
                continue;
            }
            let shown = path
                .strip_prefix(&inputs.base)
                .unwrap_or(&path)
                .display()
                .to_string();
            if !found.iter().any(|(s, _)| s == &shown) {
                found.push((shown, path));
            }
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|(shown, path)| {
            let (sha256, bytes) = digest(&path)
                .map_err(|e| format!("cannot read the input file {}: {e}", path.display()))?;
            Ok(InputFile {
                path: shown,
                sha256,
                bytes,
            })
        })
        .collect()
}

fn digest(path: &Path) -> std::io::Result<(String, i64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes: u64 = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, i64::try_from(bytes).unwrap_or(i64::MAX)))
}

/// Whether a run has nothing to do: files were found and each is what the last success found
/// (no file more, none less). No files at all is never "unchanged": the steps then decide.
pub(crate) fn unchanged(now: &[InputFile], last: &[InputFile]) -> bool {
    !now.is_empty() && now == last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(dir: &Path, patterns: &[&str]) -> Inputs {
        Inputs {
            base: dir.to_owned(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn patterns_find_files_once_each_and_hash_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("exports")).unwrap();
        std::fs::write(dir.path().join("exports/b.csv"), "b").unwrap();
        std::fs::write(dir.path().join("exports/a.csv"), "").unwrap();
        std::fs::write(dir.path().join("exports/notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join("Folha.xlsx"), "abc").unwrap();
        let found = hash(&inputs(
            dir.path(),
            &["Folha.xlsx", "exports/*.csv", "exports/a.csv"],
        ))
        .unwrap();
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["Folha.xlsx", "exports/a.csv", "exports/b.csv"]);
        // SHA-256 of "abc" and of nothing.
        assert_eq!(
            found[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(found[0].bytes, 3);
        assert_eq!(
            found[1].sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn one_changed_byte_added_or_removed_file_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let i = inputs(dir.path(), &["*.csv"]);
        assert!(
            !unchanged(&hash(&i).unwrap(), &[]),
            "no files is never unchanged"
        );
        std::fs::write(dir.path().join("a.csv"), "1,2").unwrap();
        let first = hash(&i).unwrap();
        assert!(unchanged(&hash(&i).unwrap(), &first));
        std::fs::write(dir.path().join("a.csv"), "1,3").unwrap();
        assert!(!unchanged(&hash(&i).unwrap(), &first));
        std::fs::write(dir.path().join("a.csv"), "1,2").unwrap();
        std::fs::write(dir.path().join("b.csv"), "").unwrap();
        assert!(!unchanged(&hash(&i).unwrap(), &first));
    }

    #[test]
    fn a_base_with_glob_characters_is_taken_literally() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("data [2024]");
        std::fs::create_dir(&odd).unwrap();
        std::fs::write(odd.join("x.csv"), "x").unwrap();
        assert_eq!(hash(&inputs(&odd, &["*.csv"])).unwrap().len(), 1);
    }
}
