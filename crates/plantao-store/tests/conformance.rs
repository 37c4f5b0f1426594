//! The story every backend must tell the same way. Each test runs on SQLite, and on PostgreSQL
//! when PLANTAO_TEST_POSTGRES_URL is set (always, in CI).

// Story functions are not #[test] items themselves, so say it for the whole test crate.
#![allow(clippy::unwrap_used)]

mod harness;

#[path = "conformance/alerts.rs"]
mod alerts;
#[path = "conformance/api.rs"]
mod api;
#[path = "conformance/checks.rs"]
mod checks;
#[path = "conformance/common.rs"]
mod common;
#[path = "conformance/daemon.rs"]
mod daemon;
#[path = "conformance/history.rs"]
mod history;
#[path = "conformance/runs.rs"]
mod runs;
#[path = "conformance/toolkit.rs"]
mod toolkit;

use alerts::*;
use api::*;
use checks::*;
use daemon::*;
use history::*;
use runs::*;
use toolkit::*;

conformance!(
    migrations_are_idempotent_and_a_newer_schema_is_refused,
    a_run_round_trips_field_for_field,
    an_unknown_run_is_not_found,
    a_tick_gets_exactly_one_run,
    concurrent_nodes_create_a_tick_once,
    a_run_lives_through_its_stages,
    transitions_out_of_order_are_conflicts,
    a_batch_is_all_or_nothing,
    runs_list_newest_first_with_filters_and_pages,
    pipelines_follow_the_configuration,
    everything_survives_a_reopen,
    nodes_hold_leases_they_renew,
    the_queue_is_claimed_oldest_first_and_counted_per_pipeline,
    nodes_never_claim_the_same_run,
    runs_of_dead_nodes_are_found_and_closed_as_interrupted,
    a_run_can_be_asked_to_stop,
    pipelines_pause_and_resume,
    ticks_remember_the_latest_and_lags_are_kept,
    finished_runs_add_up_by_hour_and_by_local_day,
    percentiles_from_rollups_match_and_outlive_pruning,
    pruning_keeps_open_and_recent_runs,
    one_node_owns_a_task_until_its_hold_lapses,
    tokens_are_found_by_hash_and_revoked,
    the_audit_log_lists_newest_first_in_pages,
    a_queued_run_keeps_the_steps_it_was_asked_to_run,
    runs_are_listed_by_when_they_were_queued,
    an_alert_opens_once_per_fingerprint_and_moves_by_its_rules,
    notifications_are_claimed_by_one_deliverer_and_every_attempt_is_kept,
    thresholds_are_overridden_and_restored,
    only_the_node_that_opens_an_alert_queues_its_notifications,
    pruning_takes_old_resolved_alerts_and_finished_notifications,
    a_group_is_claimed_whole_and_deferred_until_its_interval,
    silences_are_listed_until_they_end_and_expire_early,
    pings_keep_each_checks_last_start_success_and_failure,
    results_without_runs_add_to_the_rollups_and_probes_keep_their_state,
    incidents_open_once_close_and_are_listed_newest_first,
    pipeline_state_is_set_replaced_and_removed,
    inputs_are_kept_per_run_and_the_last_success_is_replaced,
    checkpoints_and_run_options_round_trip,
    a_backup_taken_while_writing_restores_into_an_empty_database,
    a_damaged_backup_is_refused_before_anything_changes,
    the_last_success_is_the_latest_succeeded_finish,
    runs_ended_together_add_up_as_runs_ended_one_by_one,
    a_run_born_finished_is_recorded_as_one_opened_and_ended_at_once,
    histograms_kept_as_rows_are_carried_over_by_the_migration,
);
