//! `plantao run`: one run, here and now, shown as it goes.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plantao_config::{Action, Pipeline};
use plantao_engine::{Lease, Observer, Plan, Planned, RunReport, RunRequest, Runner, StageReport};
use plantao_model::{RunId, RunStatus, StageStatus, Trigger};

use crate::cli::RunArgs;
use crate::commands::{find_pipeline, load_config, open_store};
use crate::failure::Failure;
use crate::format;

pub async fn run(config_path: &Path, args: RunArgs) -> Result<(), Failure> {
    let config = Arc::new(load_config(config_path)?);
    let pipeline = find_pipeline(&config, &args.pipeline)?;
    let request = RunRequest {
        params: args.params.iter().cloned().collect::<BTreeMap<_, _>>(),
        skip: args.skip.clone(),
        only: args.only.clone(),
        force: args.force,
        period: None,
    };
    let plan = Plan::new(pipeline, &request).map_err(|e| Failure::Usage(e.to_string()))?;
    if args.dry_run {
        print_plan(&plan);
        return Ok(());
    }
    let store = open_store(&config).await?;
    let lease = Lease::acquire(store.clone(), "run").await?;
    let runner = Runner::new(config.clone(), store.clone(), Some(lease.id().to_owned()));
    let cancel = crate::commands::stop_on_ctrl_c();
    let printer = Printer::new(!args.json);
    let report = runner.run(&plan, Trigger::Manual, cancel, &printer).await;
    printer.stop();
    lease.release().await?;
    let report = report?;
    if args.json {
        let detail = store.run_detail(report.run_id).await?;
        crate::commands::runs::print_detail_json(&detail, &report.metrics);
    } else {
        print_summary(&report);
    }
    match report.status {
        // Nothing to do is no failure for whoever runs this from cron.
        RunStatus::Succeeded | RunStatus::Skipped => Ok(()),
        other => Err(Failure::Ended(other)),
    }
}

fn print_plan(plan: &Plan<'_>) {
    let p: &Pipeline = plan.pipeline;
    println!(
        "plan for {} (dry run: nothing runs, nothing is recorded)",
        p.name
    );
    if let Some(t) = p.timeout {
        println!("  pipeline timeout: {} s", t.as_secs());
    }
    for (name, value) in &plan.recorded_params {
        println!("  param {name} = {value}");
    }
    let show = |list: &[Planned<'_>], title: &str| {
        if list.is_empty() {
            return;
        }
        println!("{title}:");
        for (i, planned) in list.iter().enumerate() {
            let s = planned.step;
            let what = match &s.action {
                Action::Shell(run) => format!("run: {}", run.shown()),
                Action::Argv(argv) => format!(
                    "argv: {}",
                    argv.iter().map(|a| a.shown()).collect::<Vec<_>>().join(" ")
                ),
                Action::Http(h) => format!("http: {} {}", h.method, h.url.shown()),
                Action::Sql(q) => format!("sql on {}: {}", q.connection, q.query.shown()),
            };
            let after: Vec<&str> = planned
                .after
                .iter()
                .map(|&j| list[j].step.name.as_str())
                .collect();
            println!("  {}. {}  {what}", i + 1, s.name);
            if let Some(why) = planned.skipped {
                println!("     skipped: {why}");
            }
            if !after.is_empty() {
                println!("     after: {}", after.join(", "));
            }
            let mut limits = Vec::new();
            if let Some(t) = s.timeout {
                limits.push(format!("timeout {} s", t.as_secs()));
            }
            if s.retries > 0 {
                limits.push(format!("retries {}", s.retries));
            }
            if s.continue_on_error {
                limits.push("continue on error".to_owned());
            }
            if !limits.is_empty() {
                println!("     {}", limits.join(", "));
            }
            let env: Vec<&str> = p
                .env
                .iter()
                .chain(&s.env)
                .map(|(k, _)| k.as_str())
                .collect();
            if !env.is_empty() {
                println!("     env: {}", env.join(", "));
            }
        }
    };
    show(&plan.steps, "steps");
    show(&plan.finally, "finally");
}

fn print_summary(report: &RunReport) {
    println!();
    let rows: Vec<Vec<String>> = report
        .stages
        .iter()
        .map(|s| {
            vec![
                if s.finally {
                    format!("{} (finally)", s.step)
                } else {
                    s.step.clone()
                },
                s.status.to_string(),
                format!("{}/{}", s.attempt, s.attempts),
                format::duration_ms(s.duration_ms),
                format::counters(&s.counters),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(
            &["stage", "status", "attempt", "duration", "counters"],
            &rows
        )
    );
    if !report.metrics.is_empty() {
        let m: Vec<String> = report
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={}", format::metric(v)))
            .collect();
        println!("metrics: {}", m.join(" "));
    }
    let mut last = format!(
        "run {} {} in {}",
        report.run_id,
        report.status,
        format::duration_ms(report.duration_ms)
    );
    if let (Some(stage), Some(message)) = (&report.error_stage, &report.error_message) {
        last.push_str(&format!(" — {stage}: {message}"));
    } else if let Some(message) = report.reason.as_ref().or(report.error_message.as_ref()) {
        last.push_str(&format!(" — {message}"));
    }
    println!("{last}");
}

/// Prints each stage as it starts and ends; on a terminal a spinner shows what is running.
struct Printer {
    enabled: bool,
    spinner: Option<Arc<Mutex<Spin>>>,
}

struct Spin {
    running: BTreeMap<String, Instant>,
    stopped: bool,
}

impl Printer {
    fn new(enabled: bool) -> Self {
        let spinner = (enabled && std::io::stdout().is_terminal()).then(|| {
            let spin = Arc::new(Mutex::new(Spin {
                running: BTreeMap::new(),
                stopped: false,
            }));
            let shared = spin.clone();
            tokio::spawn(async move { spin_loop(&shared).await });
            spin
        });
        Printer { enabled, spinner }
    }

    fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.spinner.is_some() {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{text}");
    }

    fn spin(&self, change: impl FnOnce(&mut Spin)) {
        if let Some(s) = &self.spinner
            && let Ok(mut s) = s.lock()
        {
            change(&mut s);
        }
    }

    fn stop(&self) {
        self.spin(|s| s.stopped = true);
        if self.spinner.is_some() {
            print!("\r\x1b[2K");
        }
    }
}

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

async fn spin_loop(spin: &Mutex<Spin>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for frame in FRAMES.iter().cycle() {
        tick.tick().await;
        let text = match spin.lock() {
            Ok(s) if s.stopped => return,
            Ok(s) => s
                .running
                .iter()
                .map(|(step, since)| {
                    let ms = i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX);
                    format!("{step} {}", format::duration_ms(ms))
                })
                .collect::<Vec<_>>()
                .join(", "),
            Err(_) => return,
        };
        if !text.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K{frame} {text}");
            let _ = out.flush();
        }
    }
}

impl Observer for Printer {
    fn run_started(&self, run: RunId, pipeline: &str) {
        self.line(&format!("▶ {pipeline}  run {run}"));
    }

    fn stage_started(&self, step: &str, attempt: u32, attempts: u32) {
        self.spin(|s| {
            s.running.insert(step.to_owned(), Instant::now());
        });
        if attempt == 1 {
            self.line(&format!("  · {step} started"));
        } else {
            self.line(&format!("  · {step} attempt {attempt}/{attempts} started"));
        }
    }

    fn stage_finished(&self, r: &StageReport) {
        self.spin(|s| {
            s.running.remove(&r.step);
        });
        let mark = match r.status {
            StageStatus::Succeeded => "✓",
            StageStatus::Skipped => "-",
            _ => "✗",
        };
        let mut text = format!(
            "  {mark} {} {} in {}",
            r.step,
            r.status,
            format::duration_ms(r.duration_ms)
        );
        if !r.counters.is_empty() {
            text.push_str(&format!("  {}", format::counters(&r.counters)));
        }
        if let Some(e) = &r.error {
            text.push_str(&format!("  ({e})"));
        }
        self.line(&text);
    }

    fn retrying(&self, step: &str, failed_attempt: u32, error: &str, delay: Duration) {
        self.spin(|s| {
            s.running.remove(step);
        });
        self.line(&format!(
            "  ✗ {step} attempt {failed_attempt} failed ({error}); retrying in {:.1}s",
            delay.as_secs_f64()
        ));
    }
}
