//! `plantao backup` and `plantao restore`: a checked copy of the database, taken while `serve`
//! runs, with old copies pruned; and putting one back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use plantao_store::backup::{self, BackupError};

use crate::commands::load_config;
use crate::failure::Failure;

/// How backup files are named: the instant they were taken, in UTC, sorts by name.
const STAMP: &str = "%Y%m%dT%H%M%SZ";
const PREFIX: &str = "plantao-";

fn failure(e: BackupError) -> Failure {
    match e {
        BackupError::Usage(m) => Failure::Usage(m),
        other => Failure::Missing(other.to_string()),
    }
}

fn mb(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1_048_576.0;
    format!("{mb:.1} MB")
}

pub async fn backup(
    config_path: &Path,
    to: Option<PathBuf>,
    keep: Option<Duration>,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let url = config.storage.url.expose();
    let kind = backup::backend(url).map_err(failure)?;
    let dir = to.unwrap_or_else(|| {
        config
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join("backups")
    });
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::Missing(format!(
            "cannot make the backup folder {}: {e}",
            dir.display()
        ))
    })?;
    let now = Utc::now();
    let file = dir.join(format!(
        "{PREFIX}{}.{}",
        now.format(STAMP),
        backup::extension(kind)
    ));
    let checked = backup::backup(url, &file).await.map_err(failure)?;
    let runs = checked
        .runs
        .map(|n| format!(", {n} runs"))
        .unwrap_or_default();
    println!(
        "backup written and checked: {} ({}{runs})",
        checked.path.display(),
        mb(checked.bytes)
    );
    if let Some(keep) = keep {
        let cutoff = now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let mut removed = 0;
        for (path, taken) in backups_in(&dir) {
            if taken < cutoff && path != checked.path {
                std::fs::remove_file(&path).map_err(|e| {
                    Failure::Missing(format!(
                        "cannot remove the old backup {}: {e}",
                        path.display()
                    ))
                })?;
                removed += 1;
            }
        }
        println!(
            "removed {removed} backup(s) taken before {} (--keep)",
            cutoff.format("%Y-%m-%d %H:%M UTC")
        );
    }
    Ok(())
}

/// The backups in `dir` named as `plantao backup` names them, with when each was taken; other
/// files are never touched.
fn backups_in(dir: &Path) -> Vec<(PathBuf, DateTime<Utc>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (stem, ext) = name.strip_prefix(PREFIX)?.rsplit_once('.')?;
            if ext != "sqlite" && ext != "dump" {
                return None;
            }
            let taken = NaiveDateTime::parse_from_str(stem, STAMP).ok()?.and_utc();
            Some((e.path(), taken))
        })
        .collect()
}

pub async fn restore(config_path: &Path, file: &Path, force: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let url = config.storage.url.expose();
    let checked = backup::restore(url, file, force).await.map_err(failure)?;
    let runs = checked
        .runs
        .map(|n| format!(" ({n} runs)"))
        .unwrap_or_default();
    println!(
        "restored {}{runs} into {}",
        file.display(),
        plantao_store::redact_url(url)
    );
    Ok(())
}
