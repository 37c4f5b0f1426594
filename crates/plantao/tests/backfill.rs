//! `plantao backfill` end to end: the real binary, real processes and a SQLite file in a temp
//! folder; killed halfway and resumed.

#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // the test polls a real process's log between checks

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A pipeline whose step logs `start`/`end` lines with the period and a timestamp (ns) to
/// `periods.log`, sleeping `pause` seconds in between.
struct Bed {
    dir: tempfile::TempDir,
}

impl Bed {
    fn new(pause: &str) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(dir.path().join("plantao.toml"), "").unwrap();
        std::fs::write(
            dir.path().join("pipelines/reprocess.toml"),
            format!(
                r#"working_dir = "."
[[steps]]
name = "load"
run = """
echo "start $PLANTAO_PERIOD_START $PLANTAO_PERIOD_END $(date +%s%N)" >> periods.log
sleep {pause}
echo "end $PLANTAO_PERIOD_START $PLANTAO_PERIOD_END $(date +%s%N)" >> periods.log
"""
"#
            ),
        )
        .unwrap();
        Bed { dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plantao"));
        cmd.arg("--config")
            .arg(self.dir.path().join("plantao.toml"))
            .arg("backfill")
            .arg("reprocess")
            .args(args)
            .env_remove("PLANTAO_CONFIG");
        cmd
    }

    fn backfill(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        (out.status.code().unwrap_or(-1), format!("{text}{err}"))
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("periods.log")
    }

    /// (kind, period start, period end, ns) per line.
    fn lines(&self) -> Vec<(String, String, String, u128)> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[0].into(), f[1].into(), f[2].into(), f[3].parse().unwrap())
            })
            .collect()
    }

    fn ends(&self) -> usize {
        self.lines().iter().filter(|l| l.0 == "end").count()
    }
}

fn count(out: &str, what: &str) -> usize {
    out.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn an_interrupted_backfill_resumes_where_it_stopped() {
    let bed = Bed::new("0.2");
    let args = ["--from", "2024-01-01", "--to", "2024-01-12"];
    let mut child = bed
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while bed.ends() < 4 {
        assert!(Instant::now() < deadline, "four periods never ended");
        assert!(child.try_wait().unwrap().is_none(), "it ended by itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let ended_before: Vec<String> = bed
        .lines()
        .into_iter()
        .filter(|l| l.0 == "end")
        .map(|l| l.1)
        .collect();
    assert!(ended_before.len() < 12, "killed before the end");

    let (code, out) = bed.backfill(&args);
    assert_eq!(code, 0, "{out}");
    let skipped = count(&out, "skipped: checkpoint");
    // The period whose end was logged just before the kill may not have recorded its success.
    assert!(skipped + 1 >= ended_before.len() && skipped >= 3, "{out}");
    assert!(
        out.contains(&format!(
            "12 periods — {} succeeded, 0 failed, {skipped} skipped",
            12 - skipped
        )),
        "{out}"
    );
    // Every day ran to its end, and the ones checkpointed before the kill ran once.
    let lines = bed.lines();
    for day in 1..=12 {
        let date = format!("2024-01-{day:02}");
        let ends = lines.iter().filter(|l| l.0 == "end" && l.1 == date).count();
        assert!((1..=2).contains(&ends), "{date}: {ends} ends");
        assert_eq!(
            lines.iter().find(|l| l.1 == date).unwrap().2,
            date,
            "a day is its own period"
        );
    }
    let twice = (1..=12)
        .filter(|day| {
            let date = format!("2024-01-{day:02}");
            lines.iter().filter(|l| l.0 == "end" && l.1 == date).count() == 2
        })
        .count();
    assert!(twice <= 1, "only a period caught by the kill runs again");

    let (code, out) = bed.backfill(&["--from", "2024-01-01", "--to", "2024-01-12", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, "skip: checkpoint"), 12, "{out}");
}

#[test]
fn ignore_checkpoint_runs_every_period_again_and_months_are_calendar_months() {
    let bed = Bed::new("0");
    let args = [
        "--from",
        "2024-01-20",
        "--to",
        "2024-03-05",
        "--every",
        "month",
    ];
    let (code, out) = bed.backfill(&args);
    assert_eq!(code, 0, "{out}");
    let periods: Vec<(String, String)> = bed
        .lines()
        .into_iter()
        .filter(|l| l.0 == "start")
        .map(|l| (l.1, l.2))
        .collect();
    assert_eq!(
        periods,
        [
            ("2024-01-20".to_owned(), "2024-01-31".to_owned()),
            ("2024-02-01".to_owned(), "2024-02-29".to_owned()),
            ("2024-03-01".to_owned(), "2024-03-05".to_owned()),
        ]
    );
    let (_, out) = bed.backfill(&args);
    assert_eq!(count(&out, "skipped: checkpoint"), 3, "{out}");
    let (code, out) = bed.backfill(&[&args[..], &["--ignore-checkpoint"]].concat());
    assert_eq!(code, 0, "{out}");
    assert_eq!(count(&out, " succeeded in "), 3, "{out}");
    assert_eq!(bed.ends(), 6);
}

#[test]
fn parallel_periods_overlap_and_sleep_spaces_their_starts() {
    let bed = Bed::new("3");
    let (code, out) = bed.backfill(&[
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--parallel",
        "2",
    ]);
    assert_eq!(code, 0, "{out}");
    let lines = bed.lines();
    let kinds: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(kinds, ["start", "start", "end", "end"], "both ran at once");

    let bed = Bed::new("0");
    let (code, out) = bed.backfill(&[
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--sleep",
        "1s",
    ]);
    assert_eq!(code, 0, "{out}");
    let starts: Vec<u128> = bed
        .lines()
        .into_iter()
        .filter(|l| l.0 == "start")
        .map(|l| l.3)
        .collect();
    // The step sees its own start after its process spawned, a few ms either way; without
    // --sleep the two start milliseconds apart.
    assert!(starts[1] - starts[0] >= 900_000_000, "{starts:?}");
}

#[test]
fn mistakes_are_told_before_anything_runs() {
    let bed = Bed::new("0");
    let (code, out) = bed.backfill(&["--from", "2024-02-01", "--to", "2024-01-01"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("--from 2024-02-01 is after --to 2024-01-01"),
        "{out}"
    );
    let (code, out) = bed.backfill(&[
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--every",
        "year",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("use day, week or month"), "{out}");
    let (code, out) = bed.backfill(&["--from", "2024-01-01", "--to", "2024-01-02", "-p", "x=1"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("has no parameter `x`"), "{out}");
    assert!(!bed.log().exists());
}
