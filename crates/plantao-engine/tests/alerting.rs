//! Alerting with real parts: a real SQLite file, real processes, and an HTTP receiver on
//! loopback standing in for each channel's server. Time is a `ManualClock` where retries and
//! `for` are concerned, so no test waits for the machine.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use plantao_engine::alerts::{self, Gate, Observation, Verdict, conditions, lifecycle};
use plantao_engine::clock::{Clock, ManualClock, SystemClock};
use plantao_engine::daemon::Daemon;
use plantao_engine::notify::channels::{hex, hmac_sha256};
use plantao_engine::notify::deliver_due;
use plantao_engine::telemetry::Telemetry;
use plantao_model::{AlertState, DeliveryState, RunStatus, Trigger};
use plantao_store::{CounterTotal, NewRun, Outcome, Store, Summary, Write};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

mod common;
use common::Rig;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP/1.1 server on loopback that records every request and answers 200, except the first
/// request when `stall` is set: that one waits `stall` before answering.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    async fn start(stall: Option<Duration>) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), stall)
    }

    fn on(listener: TcpListener, stall: Option<Duration>) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = answer(socket, seen, stall).await;
                });
            }
        });
        Receiver { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.got.lock().unwrap().clone()
    }

    fn events(&self, event: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.json()["event"] == event)
            .count()
    }
}

async fn answer(
    socket: tokio::net::TcpStream,
    seen: Arc<Mutex<Vec<Request>>>,
    stall: Option<Duration>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let first = {
            let mut all = seen.lock().unwrap();
            all.push(Request {
                method,
                path,
                headers,
                body,
            });
            all.len() == 1
        };
        if let (true, Some(wait)) = (first, stall) {
            tokio::time::sleep(wait).await;
        }
        reader
            .get_mut()
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok",
            )
            .await?;
    }
}

impl Rig {
    /// Fires rule `rule` for the labels `pipeline=NAME` as a failed run of NAME would.
    async fn fire(&self, rule: &str, pipeline: &str, now: chrono::DateTime<Utc>) {
        let rule = self.config.alert_rule(rule).unwrap();
        let obs = Observation {
            labels: BTreeMap::from([("pipeline".to_owned(), pipeline.to_owned())]),
            pipeline: Some(pipeline.to_owned()),
            verdict: Verdict::Holds,
            value: None,
            annotations: BTreeMap::from([
                ("run".to_owned(), "0190-run".to_owned()),
                ("status".to_owned(), "failed".to_owned()),
                ("stage".to_owned(), "send".to_owned()),
                ("error".to_owned(), "exit status 1".to_owned()),
            ]),
        };
        let open = self.store.open_alerts().await.unwrap();
        let current = open
            .iter()
            .find(|a| a.fingerprint == alerts::fingerprint(&rule.name, &obs.labels));
        let gate = Gate::new(self.store.silences(now, 100).await.unwrap(), &open, now);
        let writes = lifecycle::decide(&self.config, rule, &obs, current, &gate, now);
        alerts::commit(self.store.as_ref(), vec![writes])
            .await
            .unwrap();
    }

    /// The condition of `rule` no longer holds for `pipeline`.
    async fn clear(&self, rule: &str, pipeline: &str, now: chrono::DateTime<Utc>) {
        let rule = self.config.alert_rule(rule).unwrap();
        let labels = BTreeMap::from([("pipeline".to_owned(), pipeline.to_owned())]);
        let open = self.store.open_alerts().await.unwrap();
        let current = open
            .iter()
            .find(|a| a.fingerprint == alerts::fingerprint(&rule.name, &labels))
            .unwrap();
        let obs = Observation {
            labels,
            pipeline: Some(pipeline.to_owned()),
            verdict: Verdict::Clear,
            value: None,
            annotations: BTreeMap::new(),
        };
        let gate = Gate::new(Vec::new(), &open, now);
        let writes = lifecycle::decide(&self.config, rule, &obs, Some(current), &gate, now);
        alerts::commit(self.store.as_ref(), vec![writes])
            .await
            .unwrap();
    }

    /// One periodic evaluation at `now`, committed.
    async fn evaluate(&self, now: chrono::DateTime<Utc>) {
        let e = alerts::evaluate(self.store.as_ref(), &self.config, now)
            .await
            .unwrap();
        alerts::commit(self.store.as_ref(), e.batches)
            .await
            .unwrap();
    }

    async fn deliver(&self, clock: &dyn Clock) -> usize {
        deliver_due(
            self.store.as_ref(),
            &self.config,
            clock,
            &Telemetry::default(),
        )
        .await
        .unwrap()
    }
}

const BIZ: &str = "[[steps]]\nname = \"send\"\nrun = \"true\"\n";

#[tokio::test]
async fn each_channel_sends_exactly_its_request() {
    let receiver = Receiver::start(None).await;
    let root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"s3cret\"\nheaders = {{ X-Team = \"ops\" }}\n\n\
         [[channels]]\nname = \"team-slack\"\nkind = \"slack\"\nurl = \"{}\"\n\n\
         [[channels]]\nname = \"admin-whatsapp\"\nkind = \"whatsapp\"\nurl = \"{}\"\ninstance = \"ops\"\napi_key = \"evo-key\"\nto = \"5511999990000\"\nlanguage = \"pt-BR\"\n\n\
         [[alerts]]\nname = \"biz-failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nrunbook = \"Check the send stage\"\nchannels = [\"hook\", \"team-slack\", \"admin-whatsapp\"]\n",
        receiver.url("/hook"),
        receiver.url("/services/T0/B0/XYZ"),
        receiver.url("/evo/"),
    );
    let rig = Rig::new(&root, &[("biz-reports", BIZ)]).await;
    rig.fire("biz-failed", "biz-reports", Utc::now()).await;
    assert_eq!(rig.deliver(&SystemClock).await, 3);

    let log = rig.store.notifications(None, 10).await.unwrap();
    let id_of = |channel: &str| {
        log.iter()
            .find(|r| r.notification.channel == channel)
            .unwrap()
            .notification
            .id
            .to_string()
    };
    let got = receiver.requests();
    assert_eq!(got.len(), 3);
    let to = |path: &str| got.iter().find(|r| r.path == path).unwrap().clone();

    let hook = to("/hook");
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.header("content-type"), "application/json");
    assert_eq!(hook.header("idempotency-key"), id_of("hook"));
    assert_eq!(hook.header("x-plantao-event"), "firing");
    assert_eq!(hook.header("x-team"), "ops");
    assert_eq!(
        hook.header("x-plantao-signature"),
        format!("sha256={}", hex(&hmac_sha256(b"s3cret", &hook.body))),
        "the signature is the HMAC-SHA256 of the body as sent"
    );
    let body = hook.json();
    assert_eq!(body["id"], id_of("hook"));
    assert_eq!(body["event"], "firing");
    assert_eq!(body["channel"], "hook");
    assert_eq!(body["alert"]["rule"], "biz-failed");
    assert_eq!(body["alert"]["severity"], "critical");
    assert_eq!(body["alert"]["state"], "firing");
    assert_eq!(body["alert"]["labels"], json!({"pipeline": "biz-reports"}));
    let english = "[CRITICAL] FIRING · biz-failed\n\
                   Pipeline biz-reports: run 0190-run ended failed at stage send: exit status 1\n\
                   Suggested action: Check the send stage";
    assert_eq!(body["text"], english);

    let slack = to("/services/T0/B0/XYZ");
    assert_eq!(slack.method, "POST");
    assert_eq!(slack.header("content-type"), "application/json");
    assert_eq!(slack.json(), json!({ "text": english }));

    let whatsapp = to("/evo/message/sendText/ops");
    assert_eq!(whatsapp.method, "POST");
    assert_eq!(whatsapp.header("apikey"), "evo-key");
    assert_eq!(
        whatsapp.json(),
        json!({
            "number": "5511999990000",
            "text": "[CRÍTICO] DISPARADO · biz-failed\n\
                     Pipeline biz-reports: a execução 0190-run terminou como falha na etapa send: exit status 1\n\
                     Ação sugerida: Check the send stage"
        })
    );

    for r in &log {
        assert_eq!(r.notification.state, DeliveryState::Delivered);
        assert_eq!(r.attempts_log.len(), 1);
        assert_eq!(r.attempts_log[0].status, Some(200));
    }
    assert_eq!(rig.store.outbox_depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_channel_down_for_30_seconds_gets_every_notification_once_when_back() {
    // The receiver's port, not listening yet: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = port.local_addr().unwrap();
    drop(port);
    let root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{addr}/hook\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n"
    );
    let pipelines: Vec<(String, &str)> = (0..5).map(|i| (format!("p{i}"), BIZ)).collect();
    let named: Vec<(&str, &str)> = pipelines.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let rig = Rig::new(&root, &named).await;
    let start = Utc::now();
    let clock = ManualClock::new(start);
    for (name, _) in &named {
        rig.fire("failed", name, start).await;
    }
    let mut receiver = None;
    for second in 0..=60 {
        if second == 30 {
            receiver = Some(Receiver::on(TcpListener::bind(addr).await.unwrap(), None));
        }
        rig.deliver(&clock).await;
        clock.advance(TimeDelta::seconds(1));
    }
    let receiver = receiver.unwrap();
    let mut keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").to_owned())
        .collect();
    keys.sort();
    let log = rig.store.notifications(None, 10).await.unwrap();
    let mut ids: Vec<String> = log.iter().map(|r| r.notification.id.to_string()).collect();
    ids.sort();
    assert_eq!(keys, ids, "every notification delivered exactly once");
    for r in &log {
        assert_eq!(r.notification.state, DeliveryState::Delivered);
        let (last, failed) = r.attempts_log.split_last().unwrap();
        assert_eq!(last.outcome, Outcome::Delivered);
        assert!(last.at >= start + TimeDelta::seconds(30));
        assert!(failed.len() >= 4, "retried while down: {failed:?}");
        for a in failed {
            assert!(
                a.error.as_deref().unwrap().starts_with("cannot connect"),
                "{a:?}"
            );
            assert!(matches!(a.outcome, Outcome::Retry(_)));
        }
    }
}

#[tokio::test]
async fn an_answer_lost_to_a_timeout_is_resent_with_the_same_key() {
    let receiver = Receiver::start(Some(Duration::from_secs(5))).await;
    let root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"1s\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n",
        receiver.url("/hook")
    );
    let rig = Rig::new(&root, &[("biz", BIZ)]).await;
    let clock = ManualClock::new(Utc::now());
    rig.fire("failed", "biz", clock.now()).await;
    rig.deliver(&clock).await;
    let first = rig.store.notifications(None, 1).await.unwrap().remove(0);
    assert_eq!(first.notification.state, DeliveryState::Pending);
    assert!(
        first.attempts_log[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("no answer within the channel's timeout"),
        "{:?}",
        first.attempts_log
    );
    clock.advance(TimeDelta::seconds(1));
    rig.deliver(&clock).await;
    let got = receiver.requests();
    assert_eq!(got.len(), 2, "the message, then its resend");
    assert_eq!(
        got[0].header("idempotency-key"),
        first.notification.id.to_string()
    );
    assert_eq!(
        got[1].header("idempotency-key"),
        got[0].header("idempotency-key")
    );
    assert_eq!(got[0].body, got[1].body);
    let done = rig.store.notifications(None, 1).await.unwrap().remove(0);
    assert_eq!(done.notification.state, DeliveryState::Delivered);
    assert_eq!(done.attempts_log.len(), 2);
}

#[tokio::test]
async fn a_notification_older_than_max_age_is_given_up() {
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = port.local_addr().unwrap();
    drop(port);
    let root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{addr}/\"\nmax_age = \"10s\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n"
    );
    let rig = Rig::new(&root, &[("biz", BIZ)]).await;
    let clock = ManualClock::new(Utc::now());
    rig.fire("failed", "biz", clock.now()).await;
    for _ in 0..20 {
        rig.deliver(&clock).await;
        clock.advance(TimeDelta::seconds(1));
    }
    let r = rig.store.notifications(None, 1).await.unwrap().remove(0);
    assert_eq!(r.notification.state, DeliveryState::Failed);
    assert_eq!(r.attempts_log.last().unwrap().outcome, Outcome::GaveUp);
    assert_eq!(rig.store.outbox_depth().await.unwrap(), 0);
}

fn approval(approved: f64, failed: f64) -> Summary {
    Summary {
        runs: 1,
        by_status: BTreeMap::from([("succeeded".to_owned(), 1)]),
        counters: BTreeMap::from([
            (
                "process.approved".to_owned(),
                CounterTotal {
                    sum: approved,
                    runs: 1,
                },
            ),
            (
                "process.failed".to_owned(),
                CounterTotal {
                    sum: failed,
                    runs: 1,
                },
            ),
        ]),
        ..Summary::default()
    }
}

const APPROVAL: &str = "[[steps]]\nname = \"process\"\nrun = \"true\"\n\
    [metrics]\napproval_rate = \"process.approved / (process.approved + process.failed) * 100\"\n\
    [[alerts]]\nname = \"low_approval_rate\"\nwhen = \"approval_rate < threshold\"\nthreshold = 70\nwindow = \"24h\"\nfor = \"10m\"\n";

#[tokio::test]
async fn a_rule_on_a_counter_shows_the_counters_sum() {
    let counter_rule = "[[steps]]\nname = \"process\"\nrun = \"true\"\n\
        [[alerts]]\nname = \"failures\"\nwhen = \"process.failed >= threshold\"\nthreshold = 1\nwindow = \"today\"\n";
    let rig = Rig::new("", &[("biz", counter_rule)]).await;
    let rule = rig.config.alert_rule("failures").unwrap();
    let p = rig.config.pipeline("biz").unwrap();
    let seen = conditions::on_window(rule, p, &approval(699.0, 301.0), Some(1.0)).unwrap();
    assert_eq!(seen.verdict, Verdict::Holds);
    assert_eq!(seen.annotations["values"], "process.failed = 301");
    assert_eq!(seen.value, Some(301.0));
}

#[tokio::test]
async fn thresholds_for_and_no_data_at_their_boundaries() {
    let rig = Rig::new("", &[("biz", APPROVAL)]).await;
    let rule = rig.config.alert_rule("low_approval_rate").unwrap();
    let p = rig.config.pipeline("biz").unwrap();
    let judge =
        |s: &Summary, threshold| conditions::on_window(rule, p, s, Some(threshold)).unwrap();

    let below = judge(&approval(699.0, 301.0), 70.0);
    assert_eq!(below.verdict, Verdict::Holds, "69.9 < 70");
    assert_eq!(below.value, Some(69.9));
    assert_eq!(below.annotations["values"], "approval_rate = 69.9");
    assert_eq!(
        judge(&approval(700.0, 300.0), 70.0).verdict,
        Verdict::Clear,
        "70.0 is not < 70"
    );
    assert_eq!(
        judge(&approval(700.0, 300.0), 70.1).verdict,
        Verdict::Holds,
        "a runtime override moves the line"
    );
    let none = judge(&approval(0.0, 0.0), 70.0);
    assert_eq!(
        none.verdict,
        Verdict::NoData,
        "0 / 0 is no data, not a firing"
    );
    assert_eq!(none.value, None);
    assert_eq!(
        judge(&Summary::default(), 70.0).verdict,
        Verdict::NoData,
        "no runs at all"
    );

    // `for = "10m"`: pending at first, firing once ten minutes have passed, not a moment before.
    let start = Utc::now();
    let open = lifecycle::decide(&rig.config, rule, &below, None, &Gate::default(), start);
    let [Write::OpenAlert(pending)] = open.as_slice() else {
        panic!("{open:?}")
    };
    assert_eq!(pending.state, AlertState::Pending);
    let early = start + TimeDelta::minutes(10) - TimeDelta::milliseconds(1);
    assert!(
        lifecycle::decide(
            &rig.config,
            rule,
            &below,
            Some(pending),
            &Gate::default(),
            early
        )
        .is_empty()
    );
    let due = lifecycle::decide(
        &rig.config,
        rule,
        &below,
        Some(pending),
        &Gate::default(),
        start + TimeDelta::minutes(10),
    );
    assert!(matches!(
        due.first(),
        Some(Write::ChangeAlert {
            change: plantao_store::AlertChange::Fire { .. },
            ..
        })
    ));
    // No data neither resolves nor fires.
    assert!(
        lifecycle::decide(
            &rig.config,
            rule,
            &none,
            Some(pending),
            &Gate::default(),
            early
        )
        .is_empty()
    );
    let cleared = judge(&approval(700.0, 300.0), 70.0);
    assert!(
        matches!(
            lifecycle::decide(
                &rig.config,
                rule,
                &cleared,
                Some(pending),
                &Gate::default(),
                early
            )
            .as_slice(),
            [Write::ChangeAlert {
                change: plantao_store::AlertChange::Resolve { .. },
                ..
            }]
        ),
        "a pending alert that clears resolves without a word to anyone"
    );
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_fires_reminds_survives_a_restart_and_resolves() {
    let receiver = Receiver::start(None).await;
    let root = format!(
        "[engine]\nevaluate_every = \"100ms\"\n\n\
         [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        receiver.url("/hook")
    );
    let flaky = "[params.code]\ndefault = \"3\"\n\
        [[steps]]\nname = \"send\"\nrun = \"exit $PLANTAO_PARAM_CODE\"\n\
        [[alerts]]\nname = \"flaky-failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nrepeat_interval = \"1s\"\nchannels = [\"hook\"]\n";
    let rig = Rig::new(&root, &[("flaky", flaky)]).await;
    let queue = |code: &str| {
        let mut run = NewRun::queued("flaky", Trigger::Manual, Utc::now());
        run.params.insert("code".into(), code.into());
        let store = rig.store.clone();
        async move {
            store.apply(vec![Write::InsertRun(run)]).await.unwrap();
        }
    };
    let start =
        |rig: &Rig| Daemon::start(rig.config.clone(), rig.store.clone(), Arc::new(SystemClock));

    let daemon = start(&rig).await.unwrap();
    queue("3").await;
    wait_for("the firing notification", || receiver.events("firing") == 1).await;
    let alert = rig.store.open_alerts().await.unwrap().remove(0);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.annotations["status"], RunStatus::Failed.as_str());
    wait_for("a reminder", || receiver.events("reminder") >= 1).await;

    daemon.shut_down().await.unwrap();
    let reminders = receiver.events("reminder");
    let daemon = start(&rig).await.unwrap();
    wait_for("reminders after the restart", || {
        receiver.events("reminder") > reminders
    })
    .await;
    assert_eq!(
        receiver.events("firing"),
        1,
        "a restart does not fire it again"
    );
    assert_eq!(rig.store.open_alerts().await.unwrap().len(), 1);

    rig.store
        .apply(alerts::acknowledge(alert.id, "maria", false, Utc::now()))
        .await
        .unwrap();
    // A reminder claimed just before the acknowledgement may still land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_ack = receiver.events("reminder");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.events("reminder"),
        after_ack,
        "no reminders once acknowledged"
    );

    queue("0").await;
    wait_for("the resolution", || receiver.events("resolved") == 1).await;
    let resolution = receiver
        .requests()
        .into_iter()
        .find(|r| r.json()["event"] == "resolved")
        .unwrap()
        .json();
    let text = resolution["text"].as_str().unwrap();
    assert!(
        text.starts_with("[CRITICAL] RESOLVED · flaky-failed\nResolved after ")
            && text.contains(" s. It was: Pipeline flaky: run "),
        "{text}"
    );
    assert!(rig.store.open_alerts().await.unwrap().is_empty());
    let resolved = rig.store.alert(alert.id).await.unwrap();
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.acknowledged_by.as_deref(), Some("maria"));
    daemon.shut_down().await.unwrap();
}

/// A finished run of `pipeline` that took `seconds`, ending now; successful unless `failed`.
async fn finished(
    store: &dyn Store,
    pipeline: &str,
    seconds: i64,
    failed: bool,
) -> plantao_model::RunId {
    let end = Utc::now();
    let mut run = NewRun::queued(pipeline, Trigger::Manual, end - TimeDelta::seconds(seconds));
    run.status = RunStatus::Running;
    run.started_at = Some(end - TimeDelta::seconds(seconds));
    let id = run.id;
    store
        .apply(vec![
            Write::InsertRun(run),
            Write::FinishRun(plantao_store::RunEnd {
                id,
                status: if failed {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                },
                at: end,
                reason: None,
                error_stage: None,
                error_message: None,
            }),
        ])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn slower_than_usual_compares_with_the_p95_of_the_last_successful_runs() {
    let slow = "[[steps]]\nname = \"s\"\nrun = \"true\"\n\
        [[alerts]]\nname = \"slow\"\nkind = \"duration\"\nfactor = 2\nlast = 10\n";
    let rig = Rig::new("", &[("batch", slow)]).await;
    let verdict = |id| {
        let (store, config) = (rig.store.clone(), rig.config.clone());
        async move {
            let e = alerts::evaluate_run(store.as_ref(), &config, id, Utc::now())
                .await
                .unwrap();
            (
                e.findings[0].observation.verdict,
                e.findings[0].observation.annotations.clone(),
            )
        }
    };
    let store = rig.store.as_ref();
    for _ in 0..3 {
        finished(store, "batch", 10, false).await;
    }
    let early = finished(store, "batch", 100, true).await;
    assert_eq!(
        verdict(early).await.0,
        Verdict::NoData,
        "three successful runs are not enough to know what is usual"
    );
    // Ten more successes of 10 s to 19 s: the p95 of the last ten is 19 s. The runs judged
    // below failed, so they do not move it.
    for seconds in 10..20 {
        finished(store, "batch", seconds, false).await;
    }
    let (v, notes) = verdict(finished(store, "batch", 39, true).await).await;
    assert_eq!(v, Verdict::Holds, "39 s > 2 × 19 s");
    assert_eq!(
        notes["max"],
        "38 s (2 × the p95 of the last 10 successful runs)"
    );
    let (v, _) = verdict(finished(store, "batch", 38, true).await).await;
    assert_eq!(v, Verdict::Clear, "38 s is not slower than 2 × 19 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_notify_each_alert_once() {
    let Some(url) = common::postgres_database("alerting_two_nodes").await else {
        return;
    };
    let receiver = Receiver::start(None).await;
    let root = format!(
        "[storage]\nurl = \"{url}\"\n[engine]\nevaluate_every = \"100ms\"\n\n\
         [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n\n\
         [[alerts]]\nname = \"rate\"\nkind = \"failure_rate\"\nseverity = \"critical\"\nthreshold = 10\nwindow = \"24h\"\nchannels = [\"hook\"]\n",
        receiver.url("/hook")
    );
    let names: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    let failing = "[[steps]]\nname = \"s\"\nrun = \"exit 1\"\n";
    let pipelines: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), failing)).collect();
    let rig = Rig::new(&root, &pipelines).await;
    let second: Arc<dyn Store> = plantao_store::open(&url).await.unwrap().into();
    let one = Daemon::start(rig.config.clone(), rig.store.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let two = Daemon::start(rig.config.clone(), second.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    let runs: Vec<Write> = names
        .iter()
        .map(|n| Write::InsertRun(NewRun::queued(n, Trigger::Manual, Utc::now())))
        .collect();
    rig.store.apply(runs).await.unwrap();
    wait_for("a firing per pipeline and rule", || {
        receiver.events("firing") >= 2 * names.len()
    })
    .await;
    // Both nodes evaluate every 100 ms: a second copy would have come by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut fired: Vec<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["event"] == "firing")
        .map(|b| {
            (
                b["alert"]["rule"].as_str().unwrap().to_owned(),
                b["alert"]["pipeline"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fired.sort();
    let mut expected: Vec<(String, String)> = ["failed", "rate"]
        .iter()
        .flat_map(|r| names.iter().map(|n| ((*r).to_owned(), n.clone())))
        .collect();
    expected.sort();
    assert_eq!(fired, expected, "each alert notified once, by one node");
    let mut keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").to_owned())
        .collect();
    let all = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all, "no notification sent twice");
    one.shut_down().await.unwrap();
    two.shut_down().await.unwrap();
    rig.store.close().await;
    second.close().await;
    common::drop_database(&url).await;
}

#[tokio::test]
async fn telegram_and_command_channels_send_what_they_say() {
    let receiver = Receiver::start(None).await;
    let scratch = tempfile::tempdir().unwrap();
    let got = scratch.path().join("got.json");
    let root = format!(
        "[[channels]]\nname = \"tg\"\nkind = \"telegram\"\nurl = \"{}\"\ntoken = \"123:abc\"\nchat_id = \"-100200\"\nlanguage = \"pt-BR\"\n\n\
         [[channels]]\nname = \"script\"\nkind = \"command\"\nrun = \"cat > '{}'; echo \\\"$PLANTAO_EVENT $PLANTAO_NOTIFICATION_ID\\\" >> '{}'\"\n\n\
         [[channels]]\nname = \"broken\"\nkind = \"command\"\nrun = \"echo boom >&2; exit 3\"\n\n\
         [[channels]]\nname = \"slow\"\nkind = \"command\"\nrun = \"sleep 30\"\ntimeout = \"1s\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"tg\", \"script\", \"broken\", \"slow\"]\n",
        receiver.url("/tg"),
        got.display(),
        scratch.path().join("env").display(),
    );
    let rig = Rig::new(&root, &[("biz", BIZ)]).await;
    rig.fire("failed", "biz", Utc::now()).await;
    let started = Instant::now();
    assert_eq!(rig.deliver(&SystemClock).await, 4);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the slow command was stopped"
    );

    let log = rig.store.notifications(None, 10).await.unwrap();
    let of = |channel: &str| {
        log.iter()
            .find(|r| r.notification.channel == channel)
            .unwrap()
            .clone()
    };
    let tg = receiver.requests().remove(0);
    assert_eq!(tg.method, "POST");
    assert_eq!(tg.path, "/tg/bot123:abc/sendMessage");
    assert_eq!(
        tg.json(),
        json!({
            "chat_id": "-100200",
            "text": "[CRÍTICO] DISPARADO · failed\n\
                     Pipeline biz: a execução 0190-run terminou como falha na etapa send: exit status 1"
        })
    );
    assert_eq!(of("tg").notification.state, DeliveryState::Delivered);

    let script = of("script");
    assert_eq!(script.notification.state, DeliveryState::Delivered);
    let stdin: Value = serde_json::from_str(&std::fs::read_to_string(&got).unwrap()).unwrap();
    assert_eq!(stdin["id"], script.notification.id.to_string());
    assert_eq!(stdin["alert"]["rule"], "failed");
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("env")).unwrap(),
        format!("firing {}\n", script.notification.id)
    );

    let broken = of("broken").attempts_log.remove(0);
    assert_eq!(broken.status, Some(3));
    let error = broken.error.unwrap();
    assert!(
        error.contains("exit status: 3") && error.contains("boom"),
        "{error}"
    );
    let slow = of("slow").attempts_log.remove(0);
    assert!(
        slow.error
            .unwrap()
            .starts_with("the command did not end within the channel's timeout"),
    );
    assert!(matches!(slow.outcome, Outcome::Retry(_)));
}

/// One message an SMTP sink took: the envelope and the data as sent.
#[derive(Clone, Debug, Default)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// An SMTP server on loopback that takes every message (no TLS, no authentication).
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let kept = mails.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut s = BufReader::new(socket);
                let mut mail = Mail::default();
                let _ = s.get_mut().write_all(b"220 sink ESMTP\r\n").await;
                loop {
                    let mut line = String::new();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = line[10..].trim().to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to.push(line[8..].trim().to_owned());
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = s.get_mut().write_all(b"354 go ahead\r\n").await;
                        loop {
                            let mut l = String::new();
                            if s.read_line(&mut l).await.unwrap_or(0) == 0 || l == ".\r\n" {
                                break;
                            }
                            mail.data.push_str(&l);
                        }
                        kept.lock().unwrap().push(std::mem::take(&mut mail));
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = s.get_mut().write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = s.get_mut().write_all(answer).await;
                }
            });
        }
    });
    (port, mails)
}

#[tokio::test]
async fn an_email_goes_over_a_real_smtp_exchange_with_both_parts() {
    let (port, mails) = smtp_sink().await;
    let root = format!(
        "[[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         from = \"plantao <ops@example.com>\"\nto = [\"oncall@example.com\", \"lead@example.com\"]\n\n\
         [[alerts]]\nname = \"biz-failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nrunbook = \"Check <send> & retry\"\nchannels = [\"mail\"]\n"
    );
    let rig = Rig::new(&root, &[("biz", BIZ)]).await;
    rig.fire("biz-failed", "biz", Utc::now()).await;
    assert_eq!(rig.deliver(&SystemClock).await, 1);
    let record = rig.store.notifications(None, 1).await.unwrap().remove(0);
    assert_eq!(
        record.notification.state,
        DeliveryState::Delivered,
        "{:?}",
        record.attempts_log
    );
    assert_eq!(record.attempts_log[0].status, Some(250));

    let mail = mails.lock().unwrap().remove(0);
    assert_eq!(mail.from, "<ops@example.com>");
    assert_eq!(mail.to, ["<oncall@example.com>", "<lead@example.com>"]);
    // Quoted-printable breaks long lines with a soft "=" at the end: join them back.
    let data = mail.data.replace("=\r\n", "");
    for header in [
        "From: plantao <ops@example.com>\r\n".to_owned(),
        "To: oncall@example.com, lead@example.com\r\n".to_owned(),
        format!("Message-ID: <{}@plantao>\r\n", record.notification.id),
        "Content-Type: multipart/alternative;".to_owned(),
        "Content-Type: text/plain; charset=utf-8\r\n".to_owned(),
        "Content-Type: text/html; charset=utf-8\r\n".to_owned(),
    ] {
        assert!(data.contains(&header), "no {header:?} in:\n{data}");
    }
    assert!(data.contains("Subject: "), "{data}");
    assert!(
        data.contains("Pipeline biz: run 0190-run ended failed at stage send: exit status 1"),
        "the plain part: {data}"
    );
    assert!(
        data.contains("Suggested action: Check &lt;send&gt; &amp; retry"),
        "the HTML part, escaped: {data}"
    );
}

/// The open alert, read back from the store as a restarted node would.
async fn stored(rig: &Rig) -> plantao_store::Alert {
    rig.store.open_alerts().await.unwrap().remove(0)
}

/// The outbox, oldest first: (channel, event).
async fn queued(rig: &Rig) -> Vec<(String, String)> {
    let mut by_channel: Vec<(String, String)> = rig
        .store
        .notifications(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.notification.channel, r.notification.event.to_string()))
        .collect();
    by_channel.reverse();
    by_channel
}

/// One escalation step at `at`, from the alert as stored.
async fn step(rig: &Rig, at: chrono::DateTime<Utc>) {
    let alert = stored(rig).await;
    let writes = lifecycle::escalate(&rig.config, &alert, at);
    alerts::commit(rig.store.as_ref(), vec![writes])
        .await
        .unwrap();
}

#[tokio::test]
async fn escalation_reaches_each_level_at_its_delay_until_acknowledged() {
    let root = "[[channels]]\nname = \"oncall\"\nkind = \"command\"\nrun = \"true\"\n\n\
        [[channels]]\nname = \"lead\"\nkind = \"command\"\nrun = \"true\"\n\n\
        [[channels]]\nname = \"head\"\nkind = \"command\"\nrun = \"true\"\n\n\
        [[escalation]]\nname = \"critical-path\"\nrepeat = \"30m\"\n\
        levels = [\n  { after = \"0s\", channels = [\"oncall\"] },\n  { after = \"15m\", channels = [\"lead\"] },\n  { after = \"1h\", channels = [\"head\"] },\n]\n\n\
        [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nescalation = \"critical-path\"\n";
    let rig = Rig::new(root, &[("biz", BIZ)]).await;
    let t0 = Utc::now();
    rig.fire("failed", "biz", t0).await;
    assert_eq!(queued(&rig).await, [("oncall".into(), "firing".into())]);
    let a = stored(&rig).await;
    assert_eq!(a.escalation_level, Some(0));
    assert_eq!(a.next_escalation_at, Some(t0 + TimeDelta::minutes(15)));

    step(&rig, t0 + TimeDelta::minutes(15) - TimeDelta::seconds(1)).await;
    assert_eq!(queued(&rig).await.len(), 1, "not before its delay");
    step(&rig, t0 + TimeDelta::minutes(15)).await;
    assert_eq!(queued(&rig).await[1], ("lead".into(), "firing".into()));
    assert_eq!(
        stored(&rig).await.channels,
        ["oncall", "lead"],
        "resolutions reach both"
    );
    step(&rig, t0 + TimeDelta::minutes(59)).await;
    assert_eq!(queued(&rig).await.len(), 2);
    step(&rig, t0 + TimeDelta::hours(1)).await;
    assert_eq!(queued(&rig).await[2], ("head".into(), "firing".into()));
    let a = stored(&rig).await;
    assert_eq!(a.escalation_level, Some(2));
    assert_eq!(
        a.next_escalation_at,
        Some(t0 + TimeDelta::minutes(90)),
        "then every 30 min"
    );
    step(&rig, t0 + TimeDelta::minutes(90)).await;
    assert_eq!(
        queued(&rig).await[3],
        ("head".into(), "reminder".into()),
        "the last level again"
    );

    rig.store
        .apply(alerts::acknowledge(
            a.id,
            "maria",
            false,
            t0 + TimeDelta::minutes(95),
        ))
        .await
        .unwrap();
    step(&rig, t0 + TimeDelta::hours(5)).await;
    assert_eq!(
        queued(&rig).await.len(),
        4,
        "nothing after the acknowledgement"
    );
    assert_eq!(stored(&rig).await.next_escalation_at, None);
    let audit = rig.store.audit(None, 10).await.unwrap();
    let escalations = audit
        .iter()
        .filter(|e| e.entry.action == "alert.escalate")
        .count();
    assert_eq!(escalations, 3, "each step audited");
}

#[tokio::test]
async fn twenty_warnings_within_group_wait_go_out_as_one_message() {
    let receiver = Receiver::start(None).await;
    let root = format!(
        "[routing]\ngroup_wait = \"30s\"\ngroup_interval = \"5m\"\n\n\
         [[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[channels]]\nname = \"team-slack\"\nkind = \"slack\"\nurl = \"{}\"\nlanguage = \"pt-BR\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nchannels = [\"hook\", \"team-slack\"]\n",
        receiver.url("/hook"),
        receiver.url("/slack"),
    );
    let pipelines: Vec<(String, &str)> = (0..21).map(|i| (format!("p{i:02}"), BIZ)).collect();
    let named: Vec<(&str, &str)> = pipelines.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let rig = Rig::new(&root, &named).await;
    let start = Utc::now();
    let clock = ManualClock::new(start);
    for (i, (name, _)) in named.iter().take(20).enumerate() {
        rig.fire("failed", name, start + TimeDelta::seconds(i as i64))
            .await;
    }
    clock.set(start + TimeDelta::seconds(29));
    assert_eq!(rig.deliver(&clock).await, 0, "nothing before group_wait");
    clock.set(start + TimeDelta::seconds(30));
    assert_eq!(
        rig.deliver(&clock).await,
        40,
        "20 notifications on each of 2 channels"
    );
    let got = receiver.requests();
    assert_eq!(got.len(), 2, "one message per channel: {got:?}");
    let hook = got.iter().find(|r| r.path == "/hook").unwrap().json();
    assert_eq!(hook["group"], "hook/rule=failed");
    assert_eq!(hook["notifications"].as_array().unwrap().len(), 20);
    let text = hook["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "[WARNING] 20 alerts · rule=failed\n\n[WARNING] FIRING · failed\nPipeline p00: "
        ),
        "{text}"
    );
    assert!(text.contains("Pipeline p19: "), "{text}");
    let slack = got.iter().find(|r| r.path == "/slack").unwrap().json();
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("[AVISO] 20 alertas · rule=failed"),
        "{slack}"
    );
    let log = rig.store.notifications(None, 100).await.unwrap();
    assert!(
        log.iter()
            .all(|r| r.notification.state == DeliveryState::Delivered)
    );

    // One more of the group: it waits for group_interval since the last message, not group_wait.
    rig.fire("failed", "p20", start + TimeDelta::seconds(60))
        .await;
    clock.set(start + TimeDelta::seconds(90));
    assert_eq!(rig.deliver(&clock).await, 0, "deferred, not sent");
    clock.set(start + TimeDelta::seconds(30 + 299));
    assert_eq!(rig.deliver(&clock).await, 0);
    clock.set(start + TimeDelta::seconds(30 + 300));
    assert_eq!(rig.deliver(&clock).await, 2);
    assert_eq!(receiver.requests().len(), 4);
    let last = receiver
        .requests()
        .into_iter()
        .find(|r| r.path == "/hook" && r.json()["group"].is_null())
        .unwrap();
    assert!(
        last.json()["text"]
            .as_str()
            .unwrap()
            .contains("Pipeline p20"),
        "a group of one goes as it is"
    );
}

#[tokio::test]
async fn a_silence_made_in_advance_holds_from_its_start_to_its_end() {
    let receiver = Receiver::start(None).await;
    let root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n",
        receiver.url("/hook"),
    );
    let rig = Rig::new(&root, &[("billing", BIZ), ("reports", BIZ)]).await;
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let silence = plantao_store::Silence {
        id: uuid::Uuid::now_v7(),
        matchers: vec![plantao_store::Matcher::parse("pipeline=billing").unwrap()],
        starts_at: start + TimeDelta::hours(1),
        ends_at: start + TimeDelta::hours(2),
        comment: "database maintenance".into(),
        author: "ana".into(),
        created_at: start,
    };
    rig.store
        .apply(vec![Write::AddSilence(Box::new(silence.clone()))])
        .await
        .unwrap();

    // Before its start: notified as usual.
    rig.fire("failed", "billing", start).await;
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("firing"), 1);
    clock.set(start + TimeDelta::minutes(1));
    rig.clear("failed", "billing", clock.now()).await;
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("resolved"), 1);

    // In force: recorded, shown as silenced, not notified; other pipelines are not silenced.
    let during = start + TimeDelta::minutes(90);
    clock.set(during);
    rig.fire("failed", "billing", during).await;
    rig.fire("failed", "reports", during).await;
    rig.evaluate(during).await;
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("firing"), 2, "only reports");
    let billing = rig
        .store
        .open_alerts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.pipeline.as_deref() == Some("billing"))
        .unwrap();
    assert_eq!(billing.state, AlertState::Firing);
    assert_eq!(
        billing.suppressed,
        Some(plantao_store::Suppression::Silence { id: silence.id })
    );
    assert!(!billing.notified);

    // Past its end: the alert still firing is notified then.
    let after = start + TimeDelta::hours(2);
    clock.set(after);
    rig.evaluate(after).await;
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("firing"), 3);
    let billing = rig.store.alert(billing.id).await.unwrap();
    assert!(billing.notified && billing.suppressed.is_none());
}

#[tokio::test]
async fn dependents_stay_quiet_while_their_cause_fires_and_speak_after() {
    let receiver = Receiver::start(None).await;
    let mut root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[alerts]]\nname = \"db-down\"\nkind = \"run_failed\"\npipeline = \"db-probe\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\ndepends_on = [\"db-down\"]\nchannels = [\"hook\"]\n",
        receiver.url("/hook"),
    );
    root.push('\n');
    let mut pipelines: Vec<(String, &str)> = (0..20).map(|i| (format!("p{i:02}"), BIZ)).collect();
    pipelines.push(("db-probe".into(), BIZ));
    let named: Vec<(&str, &str)> = pipelines.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let rig = Rig::new(&root, &named).await;
    let start = Utc::now();
    let clock = ManualClock::new(start);

    rig.fire("db-down", "db-probe", start).await;
    for (name, _) in named.iter().take(20) {
        rig.fire("failed", name, start).await;
    }
    rig.evaluate(start).await;
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("firing"), 1, "only the cause speaks");
    let open = rig.store.open_alerts().await.unwrap();
    let quiet: Vec<_> = open.iter().filter(|a| a.rule == "failed").collect();
    assert_eq!(quiet.len(), 20, "the dependents are recorded");
    assert!(quiet.iter().all(|a| a.state == AlertState::Firing
        && a.suppressed
            == Some(plantao_store::Suppression::Dependency {
                rule: "db-down".into()
            })));

    // One dependent clears while the cause fires: never notified, so nothing to resolve aloud.
    rig.clear("failed", "p19", start + TimeDelta::seconds(10))
        .await;
    // The cause resolves first; the 19 dependents still firing are notified at the next evaluation.
    let later = start + TimeDelta::minutes(1);
    clock.set(later);
    rig.clear("db-down", "db-probe", later).await;
    rig.evaluate(later).await;
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("resolved"), 1, "the cause's resolution");
    assert_eq!(receiver.events("firing"), 1 + 19);

    // Every notified alert's resolution is delivered.
    let end = later + TimeDelta::minutes(1);
    clock.set(end);
    for (name, _) in named.iter().take(19) {
        rig.clear("failed", name, end).await;
    }
    rig.deliver(&clock).await;
    assert_eq!(receiver.events("resolved"), 1 + 19);
    assert!(rig.store.open_alerts().await.unwrap().is_empty());
    let log = rig.store.notifications(None, 100).await.unwrap();
    assert_eq!(log.len(), 40);
    assert!(
        log.iter()
            .all(|r| r.notification.state == DeliveryState::Delivered)
    );
}

#[tokio::test]
async fn templates_of_a_rule_and_a_channel_shape_the_text() {
    let receiver = Receiver::start(None).await;
    let root = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\
         template = \"{{{{ severity }}}} {{{{ alert.pipeline }}}}: {{{{ message }}}}\"\n\n\
         [[channels]]\nname = \"plain\"\nkind = \"slack\"\nurl = \"{}\"\nlanguage = \"pt-BR\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\n\
         message = \"{{{{ alert.annotations.stage }}}} broke ({{{{ alert.annotations.error }}}})\"\nchannels = [\"hook\", \"plain\"]\n\n\
         [[alerts]]\nname = \"own\"\nkind = \"run_failed\"\nseverity = \"critical\"\n\
         template = \"{{{{ event_label }}}}|{{{{ alert.rule }}}}|{{{{ language }}}}\"\nchannels = [\"hook\", \"plain\"]\n",
        receiver.url("/hook"),
        receiver.url("/plain"),
    );
    let rig = Rig::new(&root, &[("biz", BIZ)]).await;
    rig.fire("failed", "biz", Utc::now()).await;
    rig.fire("own", "biz", Utc::now()).await;
    rig.deliver(&SystemClock).await;
    let mut texts: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "CRITICAL biz: send broke (exit status 1)",
            "DISPARADO|own|pt-BR",
            "FIRING|own|en",
            "[CRÍTICO] DISPARADO · failed\nsend broke (exit status 1)",
        ]
    );
}
