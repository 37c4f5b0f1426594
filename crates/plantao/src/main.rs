//! `plantao`: the command line. Parses arguments, loads the configuration, and hands over to
//! one command; every command maps its failure to an exit code in one place (`Failure`).

// Printing is this crate's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod failure;
mod format;

use std::process::ExitCode;

use clap::Parser;
use plantao_engine::report;

use crate::cli::{
    AlertsCommand, BenchCommand, ChannelCommand, Cli, Command, ConfigCommand, ReportCommand,
    SilenceCommand, StateCommand, TokenCommand,
};

async fn ping(config: &std::path::Path, args: cli::PingArgs) -> Result<(), failure::Failure> {
    use commands::ping::{Signal, Target};
    let signal = match (args.start, args.fail, args.log, args.exit) {
        (true, ..) => Signal::Start,
        (_, true, ..) => Signal::Fail,
        (_, _, true, _) => Signal::Log,
        (.., Some(code)) => Signal::Exit(code),
        _ => Signal::Success,
    };
    if !args.command.is_empty() && (args.start || args.fail || args.log || args.exit.is_some()) {
        return Err(failure::Failure::Usage(
            "around a command the pings are start and its exit status: drop --start, --fail, --log and --exit".into(),
        ));
    }
    let target = Target::resolve(config, &args.slug, args.url.as_deref(), args.key.as_deref())?;
    commands::ping::run(&target, signal, args.body, &args.command).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Validate => commands::validate::run(&config),
            Command::Serve { log_format } => commands::serve::run(&config, log_format).await,
            Command::Run(args) => commands::run::run(&config, args).await,
            Command::Prune {
                older_than,
                dry_run,
            } => commands::prune::run(&config, older_than, dry_run).await,
            Command::Doctor { send_test } => commands::doctor::run(&config, send_test).await,
            Command::Backfill(args) => commands::backfill::run(&config, args).await,
            Command::Backup { to, keep } => commands::backup::backup(&config, to, keep).await,
            Command::Restore { file, force } => {
                commands::backup::restore(&config, &file, force).await
            }
            Command::Trigger {
                pipeline,
                params,
                force,
            } => commands::control::trigger(&config, &pipeline, params, force).await,
            Command::Pause { pipeline } => {
                commands::control::set_paused(&config, &pipeline, true).await
            }
            Command::Resume { pipeline } => {
                commands::control::set_paused(&config, &pipeline, false).await
            }
            Command::Next { pipeline, count } => {
                commands::control::next(&config, &pipeline, count).await
            }
            Command::Status { json } => commands::status::run(&config, json).await,
            Command::Ping(args) => ping(&config, args).await,
            Command::Checks { json } => commands::checks::list(&config, json).await,
            Command::Report { command } => match command {
                ReportCommand::Sla {
                    window,
                    format,
                    out,
                } => {
                    commands::checks::report_sla(&config, window.as_deref(), format, out.as_deref())
                        .await
                }
                ReportCommand::Daily(args) => {
                    commands::report::run(&config, report::Period::Daily, args).await
                }
                ReportCommand::Weekly(args) => {
                    commands::report::run(&config, report::Period::Weekly, args).await
                }
                ReportCommand::Monthly(args) => {
                    commands::report::run(&config, report::Period::Monthly, args).await
                }
            },
            Command::Stats { pipeline, json } => {
                commands::stats::run(&config, pipeline.as_deref(), json).await
            }
            Command::Runs(args) => commands::runs::list(&config, args).await,
            Command::Show { run, json } => commands::runs::show(&config, &run, json).await,
            Command::Logs { run, stage, follow } => {
                if follow {
                    commands::runs::follow_logs(&config, &run, stage).await
                } else {
                    commands::runs::logs(&config, &run, stage.as_deref()).await
                }
            }
            Command::State { command } => match command {
                StateCommand::List { pipeline, json } => {
                    commands::state::list(&config, &pipeline, json).await
                }
                StateCommand::Get { pipeline, key } => {
                    commands::state::get(&config, &pipeline, &key).await
                }
                StateCommand::Set {
                    pipeline,
                    key,
                    value,
                } => commands::state::set(&config, &pipeline, &key, Some(&value)).await,
                StateCommand::Unset { pipeline, key } => {
                    commands::state::set(&config, &pipeline, &key, None).await
                }
            },
            Command::Token { command } => match command {
                TokenCommand::Create { name, role } => {
                    commands::access::create_token(&config, &name, role).await
                }
                TokenCommand::List { json } => commands::access::list_tokens(&config, json).await,
                TokenCommand::Revoke { name } => {
                    commands::access::revoke_token(&config, &name).await
                }
            },
            Command::Audit { limit, json } => commands::access::audit(&config, limit, json).await,
            Command::Alerts {
                command,
                dismissed,
                json,
            } => match command {
                None => commands::alerts::active(&config, dismissed, json).await,
                Some(AlertsCommand::History { limit, json }) => {
                    commands::alerts::history(&config, limit, json).await
                }
                Some(AlertsCommand::Ack { id }) => {
                    commands::alerts::acknowledge(&config, &id, false).await
                }
                Some(AlertsCommand::Dismiss { id }) => {
                    commands::alerts::acknowledge(&config, &id, true).await
                }
                Some(AlertsCommand::Check { notify, json }) => {
                    commands::alerts::check(&config, notify, json).await
                }
            },
            Command::Silence { command } => match command {
                SilenceCommand::Add(args) => commands::silences::add(&config, args).await,
                SilenceCommand::List { all, json } => {
                    commands::silences::list(&config, all, json).await
                }
                SilenceCommand::Expire { id } => commands::silences::expire(&config, &id).await,
            },
            Command::Channel {
                command: ChannelCommand::Test { name },
            } => commands::alerts::test_channel(&config, &name).await,
            Command::Healthcheck { address } => {
                commands::access::healthcheck(&config, address.as_deref()).await
            }
            Command::Openapi => {
                commands::access::openapi();
                Ok(())
            }
            Command::Completions { shell } => commands::manual::completions(shell),
            Command::Man { dir } => commands::manual::man(dir.as_deref()),
            Command::Config {
                command: ConfigCommand::Example { pipeline },
            } => {
                commands::config::example(pipeline);
                Ok(())
            }
            Command::Bench { command } => match command {
                BenchCommand::Api {
                    runs,
                    pipelines,
                    days,
                    seconds,
                    connections,
                    postgres,
                    only,
                    file,
                } => {
                    commands::apibench::run(commands::apibench::ApiBench {
                        runs,
                        pipelines,
                        days,
                        seconds,
                        connections,
                        postgres,
                        only,
                        file,
                    })
                    .await
                }
                BenchCommand::Pings {
                    checks,
                    seconds,
                    connections,
                    postgres,
                } => {
                    commands::pingbench::run(commands::pingbench::PingBench {
                        checks,
                        seconds,
                        connections,
                        postgres,
                    })
                    .await
                }
                BenchCommand::Probes {
                    probes,
                    every,
                    seconds,
                } => {
                    commands::probebench::run(commands::probebench::ProbeBench {
                        probes,
                        every,
                        seconds,
                    })
                    .await
                }
                BenchCommand::Alerts {
                    rules,
                    runs,
                    pipelines,
                    days,
                    failures,
                    notifications,
                    postgres,
                    file,
                } => {
                    commands::alertbench::run(commands::alertbench::AlertBench {
                        rules,
                        runs,
                        pipelines,
                        days,
                        failures,
                        notifications,
                        postgres,
                        file,
                    })
                    .await
                }
                BenchCommand::Steps {
                    runs,
                    steps,
                    postgres,
                } => commands::bench::steps(runs, steps, postgres.as_deref()).await,
                BenchCommand::Lag { seconds, old_runs } => {
                    commands::bench::lag(seconds, old_runs).await
                }
                BenchCommand::Throughput {
                    runs,
                    parallel,
                    postgres,
                } => commands::bench::throughput(runs, parallel, postgres.as_deref()).await,
                BenchCommand::Failover { postgres, runs } => {
                    commands::bench::failover(&postgres, runs).await
                }
                BenchCommand::Memory { pipelines, runs } => {
                    commands::memory::run(pipelines, runs).await
                }
                BenchCommand::Burst { pipelines } => commands::bursts::burst(pipelines).await,
                BenchCommand::Spread { pipelines, seconds } => {
                    commands::bursts::spread(pipelines, seconds).await
                }
                BenchCommand::Startup { pipelines, runs } => {
                    commands::bench::startup(pipelines, runs).await
                }
            },
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.silent() {
                eprintln!("{failure}");
            }
            failure.exit_code()
        }
    }
}
