//! The runner's processes: time limits, cancellation, parallel branches, floods of output and
//! crashes, with real processes and a real SQLite file.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Bed, stage_statuses};
use plantao_engine::{Plan, Quiet, RunRequest};
use plantao_model::{RunStatus, StageStatus, Trigger};
use tokio::sync::watch;

/// The PIDs a step wrote that still run (a zombie waiting for its new parent to reap it has
/// stopped running).
fn alive(pids: &str) -> Vec<String> {
    pids.split_whitespace()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
            })
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let bed = Bed::in_folder(|dir| {
        format!(
            "[[steps]]\nname = \"hang\"\nrun = \"sleep 100 & echo $! >> {p}; sleep 100 & echo $! >> {p}; echo $$ >> {p}; wait\"\ntimeout = \"1s\"\n\n[[finally]]\nname = \"after\"\nrun = \"echo finally ran\"\n",
            p = dir.join("pids").display()
        )
    })
    .await;
    let pids = bed.scratch.as_ref().unwrap().path().join("pids");
    let started = Instant::now();
    let report = bed.run().await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report.status, RunStatus::TimedOut);
    assert_eq!(
        stage_statuses(&report),
        [
            ("hang".into(), StageStatus::TimedOut),
            ("after".into(), StageStatus::Succeeded)
        ]
    );
    let written = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(written.split_whitespace().count(), 3);
    assert!(
        alive(&written).is_empty(),
        "left behind: {:?}",
        alive(&written)
    );
}

#[tokio::test]
async fn the_pipeline_timeout_stops_the_run_and_skips_the_rest() {
    let bed = Bed::simple(
        "timeout = \"1s\"\n[[steps]]\nname = \"slow\"\nrun = \"sleep 30\"\n\n[[steps]]\nname = \"next\"\nrun = \"true\"\n",
    )
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::TimedOut);
    assert_eq!(
        stage_statuses(&report),
        [
            ("slow".into(), StageStatus::TimedOut),
            ("next".into(), StageStatus::Skipped)
        ]
    );
}

#[tokio::test]
async fn cancelling_stops_the_step_and_runs_finally() {
    let bed = Bed::simple(
        "[[steps]]\nname = \"long\"\nrun = \"sleep 60\"\n\n[[finally]]\nname = \"tidy\"\nrun = \"echo tidy\"\n",
    )
    .await;
    let plan = Plan::new(bed.config.pipeline("p").unwrap(), &RunRequest::default()).unwrap();
    let (cancel_tx, cancel) = watch::channel(None);
    let store = bed.store.clone();
    tokio::spawn(async move {
        // Cancel once the step is recorded as running.
        loop {
            let runs = store
                .runs(&plantao_store::RunFilter {
                    limit: 1,
                    ..Default::default()
                })
                .await
                .unwrap();
            if let Some(r) = runs.first()
                && store
                    .run_detail(r.id)
                    .await
                    .unwrap()
                    .stages
                    .iter()
                    .any(|s| s.status == StageStatus::Running)
            {
                cancel_tx.send(Some(plantao_engine::Stop::Cancel)).unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let report = bed
        .runner
        .run(&plan, Trigger::Manual, cancel, &Quiet)
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(
        stage_statuses(&report),
        [
            ("long".into(), StageStatus::Cancelled),
            ("tidy".into(), StageStatus::Succeeded)
        ]
    );
    assert_eq!(
        bed.detail(&report).await.run.reason.as_deref(),
        Some("cancelled")
    );
}

/// Each step appends "start <name> <ns>" and "end <name> <ns>" to a file; returns intervals.
fn intervals(text: &str) -> BTreeMap<String, (u128, u128)> {
    let mut out: BTreeMap<String, (u128, u128)> = BTreeMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let t: u128 = parts[2].parse().unwrap();
        let e = out.entry(parts[1].to_owned()).or_default();
        if parts[0] == "start" {
            e.0 = t
        } else {
            e.1 = t
        }
    }
    out
}

fn dag(file: &std::path::Path, parallel: u32) -> String {
    // The branches sleep 2 s: starting both takes far less, even on a busy machine.
    let step = |name: &str, needs: &str| {
        let pause = if name.len() == 1 { "2" } else { "0.1" };
        format!(
            "[[steps]]\nname = \"{name}\"\nneeds = [{needs}]\nrun = \"echo start {name} $(date +%s%N) >> {f}; sleep {pause}; echo end {name} $(date +%s%N) >> {f}\"\n\n",
            f = file.display()
        )
    };
    format!(
        "max_parallel_steps = {parallel}\n{}{}{}{}",
        step("login", ""),
        step("a", "\"login\""),
        step("b", "\"login\""),
        step("merge", "\"a\", \"b\"")
    )
}

#[tokio::test]
async fn a_graph_runs_independent_branches_in_parallel() {
    for (parallel, overlap) in [(4, true), (1, false)] {
        let bed = Bed::in_folder(|dir| dag(&dir.join("times"), parallel)).await;
        let file = bed.scratch.as_ref().unwrap().path().join("times");
        let report = bed.run().await;
        assert_eq!(report.status, RunStatus::Succeeded);
        let t = intervals(&std::fs::read_to_string(&file).unwrap());
        assert!(
            t["a"].0 >= t["login"].1 && t["b"].0 >= t["login"].1,
            "branches waited for login"
        );
        assert!(
            t["merge"].0 >= t["a"].1.max(t["b"].1),
            "merge waited for both"
        );
        let overlapped = t["a"].0 < t["b"].1 && t["b"].0 < t["a"].1;
        assert_eq!(
            overlapped, overlap,
            "max_parallel_steps = {parallel}: {t:?}"
        );
    }
}

#[tokio::test]
async fn a_gigabyte_flood_keeps_a_bounded_log_and_flat_memory() {
    let bed = Bed::simple("[[steps]]\nname = \"flood\"\nrun = \"head -c 100000000 /dev/zero | tr '\\\\0' 'x'; echo; echo the end\"\n").await;
    let before = peak_rss_kb();
    let report = bed.run().await;
    let after = peak_rss_kb();
    assert_eq!(report.status, RunStatus::Succeeded);
    let d = bed.detail(&report).await;
    let log = &d.stages[0].log;
    assert!(
        log.len() <= plantao_engine::runner::DEFAULT_LOG_LIMIT + 200,
        "log is {} bytes",
        log.len()
    );
    assert!(log.starts_with("xxxx") && log.ends_with("the end\n"));
    assert!(log.contains("bytes cut"));
    // 100 MB went through; the process grew by far less than that.
    assert!(
        after - before < 30 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}

fn peak_rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_crash_mid_run_leaves_finished_stages_recorded() {
    let bed = Bed::simple(
        "[[steps]]\nname = \"done\"\nrun = \"echo n=1 >> $PLANTAO_OUTPUT\"\n[[steps]]\nname = \"slow\"\nrun = \"sleep 60\"\n",
    )
    .await;
    let plan = Plan::new(bed.config.pipeline("p").unwrap(), &RunRequest::default()).unwrap();
    let (_k, cancel) = watch::channel(None);
    // The run is abandoned mid-way, as a crash would leave it: the store already holds it.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        bed.runner.run(&plan, Trigger::Manual, cancel, &Quiet),
    )
    .await;
    let runs = bed
        .store
        .runs(&plantao_store::RunFilter {
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    let d = bed.store.run_detail(runs[0].id).await.unwrap();
    assert_eq!(d.run.status, RunStatus::Running);
    let steps: Vec<(&str, StageStatus)> = d
        .stages
        .iter()
        .map(|s| (s.step.as_str(), s.status))
        .collect();
    assert_eq!(
        steps,
        [
            ("done", StageStatus::Succeeded),
            ("slow", StageStatus::Running)
        ]
    );
    assert_eq!(d.counters.len(), 1);
}
