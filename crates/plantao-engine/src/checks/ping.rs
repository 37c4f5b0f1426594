//! A ping into the store. Each start → end pair is a run of the heartbeat (trigger `external`)
//! with its duration, exit status and the end's body as the log of its one stage (`ping`); an
//! end without a start is a run of zero duration; a `/log` ping adds a stage (`log`) to the open
//! run, or, with none open, is kept as a run skipped with reason `log` (it says neither success
//! nor failure). Every ping also counts into the heartbeat's [`CheckRecord`] in the same
//! transaction, which is what its state is told from.
//!
//! [`CheckRecord`]: plantao_store::CheckRecord

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use plantao_model::{RunId, RunStatus, StageStatus, Trigger};
use plantao_store::{
    NewRun, PingFact, PingKind, Run, RunEnd, RunFilter, Stage, StepSelection, Store, StoreError,
    Timestamp, Write,
};
use tokio::sync::{mpsc, oneshot};

/// Open runs of heartbeats looked at to pair ends with their starts.
const OPEN_LIMIT: u32 = 10_000;
/// The parameter a run keeps its `rid` in.
pub const RID: &str = "rid";

/// What a ping says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Start,
    Success,
    Fail,
    /// An exit status: 0 is a success, anything else a failure.
    Exit(u8),
    Log,
}

/// One ping, as the route took it.
#[derive(Clone, Debug)]
pub struct Ping {
    pub check: String,
    pub signal: Signal,
    /// Pairs the start and the end of one of several overlapping runs.
    pub rid: Option<String>,
    /// The body, or as much of it as was read.
    pub body: Vec<u8>,
    /// How long the whole body was, in bytes.
    pub body_size: usize,
    pub at: Timestamp,
}

/// What a ping did: the run it started, ended or added to, and whether it ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub run: RunId,
    pub ended: bool,
}

/// Records `ping` alone, its body kept up to `body_limit` bytes (the rest cut and the cut
/// marked): a batch of one.
pub async fn record(
    store: &dyn Store,
    ping: Ping,
    body_limit: usize,
) -> Result<Recorded, StoreError> {
    batch(store, &[(&ping, body_limit)])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Database("a ping was not recorded".into()))
}

fn start(ping: &Ping, log: String) -> (Vec<Write>, Recorded) {
    let run = new_run(ping, RunStatus::Running);
    let id = run.id;
    let mut writes = vec![Write::InsertRun(run)];
    if !log.is_empty() {
        writes.push(Write::PutStage(stage(
            id, "start", 1, ping.at, ping.at, None, log,
        )));
    }
    writes.push(fact(ping, PingKind::Start, None));
    (
        writes,
        Recorded {
            run: id,
            ended: false,
        },
    )
}

fn end(ping: &Ping, open: Option<&Run>, log: String) -> (Vec<Write>, Recorded) {
    let code = match ping.signal {
        Signal::Exit(c) => Some(i32::from(c)),
        Signal::Fail => None,
        _ => Some(0),
    };
    let ok = code == Some(0);
    let status = if ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    let mut writes = Vec::new();
    // A success without a start is a run born finished: one row, never among the open ones. A
    // failure's run is opened and ended, its end saying what failed.
    let born_finished = open.is_none() && ok;
    let (id, started) = match open {
        Some(run) => (run.id, run.started_at.unwrap_or(ping.at)),
        None => {
            let run = new_run(
                ping,
                if born_finished {
                    status
                } else {
                    RunStatus::Running
                },
            );
            let id = run.id;
            writes.push(Write::InsertRun(run));
            (id, ping.at)
        }
    };
    let mut s = stage(id, "ping", 1, started, ping.at, code, log);
    if !ok {
        s.status = StageStatus::Failed;
        s.error = Some(match code {
            Some(c) => format!("exited with status {c}"),
            None => "reported a failure".to_owned(),
        });
    }
    let error = s.error.clone();
    writes.push(Write::PutStage(s));
    if !born_finished {
        writes.push(Write::FinishRun(RunEnd {
            id,
            status,
            at: ping.at,
            reason: None,
            error_stage: (!ok).then(|| "ping".to_owned()),
            error_message: error,
        }));
    }
    let duration = open.map(|_| (ping.at - started).num_milliseconds());
    let kind = if ok {
        PingKind::Success
    } else {
        PingKind::Failure
    };
    writes.push(fact(ping, kind, duration));
    (
        writes,
        Recorded {
            run: id,
            ended: true,
        },
    )
}

fn log_only(ping: &Ping, open: Option<&Run>, attempt: u32, log: String) -> (Vec<Write>, Recorded) {
    let mut writes = Vec::new();
    let id = match open {
        Some(run) => run.id,
        None => {
            let mut run = new_run(ping, RunStatus::Skipped);
            run.reason = Some("log".to_owned());
            let id = run.id;
            writes.push(Write::InsertRun(run));
            id
        }
    };
    writes.push(Write::PutStage(stage(
        id, "log", attempt, ping.at, ping.at, None, log,
    )));
    writes.push(fact(ping, PingKind::Log, None));
    (
        writes,
        Recorded {
            run: id,
            ended: false,
        },
    )
}

fn new_run(ping: &Ping, status: RunStatus) -> NewRun {
    let params: BTreeMap<String, String> = ping
        .rid
        .iter()
        .map(|r| (RID.to_owned(), r.clone()))
        .collect();
    NewRun {
        id: RunId::new(),
        pipeline: ping.check.clone(),
        trigger: Trigger::External,
        scheduled_for: None,
        params,
        status,
        reason: None,
        queued_at: ping.at,
        started_at: (status != RunStatus::Skipped).then_some(ping.at),
        node: None,
        parent: None,
        selection: StepSelection::default(),
        period: None,
        force: false,
    }
}

fn stage(
    run_id: RunId,
    step: &str,
    attempt: u32,
    started_at: Timestamp,
    finished_at: Timestamp,
    exit_code: Option<i32>,
    log: String,
) -> Stage {
    Stage {
        run_id,
        step: step.to_owned(),
        attempt,
        status: StageStatus::Succeeded,
        started_at,
        finished_at: Some(finished_at),
        duration_ms: Some((finished_at - started_at).num_milliseconds()),
        exit_code,
        error: None,
        log,
        cpu_user_ms: None,
        cpu_system_ms: None,
        peak_rss_kb: None,
    }
}

fn fact(ping: &Ping, kind: PingKind, duration_ms: Option<i64>) -> Write {
    Write::Ping(PingFact {
        check: ping.check.clone(),
        kind,
        at: ping.at,
        duration_ms,
        state: None,
    })
}

async fn next_log_attempt(store: &dyn Store, run: RunId) -> Result<u32, StoreError> {
    let detail = store.run_detail(run).await?;
    Ok(detail
        .stages
        .iter()
        .filter(|s| s.step == "log")
        .map(|s| s.attempt)
        .max()
        .unwrap_or(0)
        + 1)
}

/// The body (of `size` bytes, of which `body` is what was read) as text, cut at `limit` bytes
/// on a character's boundary, with a line saying how much was not kept.
pub fn bounded(body: &[u8], size: usize, limit: usize) -> String {
    if size <= limit && body.len() == size {
        return String::from_utf8_lossy(body).into_owned();
    }
    let mut cut = limit.min(body.len());
    // Not inside a character: back off over UTF-8 continuation bytes.
    while cut > 0 && cut < body.len() && (body[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    format!(
        "{}\n[plantao: body cut at {limit} bytes, {} more not kept]",
        String::from_utf8_lossy(&body[..cut]),
        size - cut
    )
}

/// Pings that arrive together, recorded in one transaction: the writer takes every ping waiting
/// (at most 512), reads the open runs of heartbeats once for all of them, pairs starts and
/// ends in arrival order (a start and its end in one batch make one run), and commits their
/// writes together, the new runs in one multi-row statement. A batch the store refuses is tried
/// again ping by ping, so one ping's conflict never costs the others.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

/// Pings recorded in one transaction, at most.
const BATCH: usize = 512;

type Job = (Ping, usize, oneshot::Sender<Result<Recorded, StoreError>>);

impl Recorder {
    /// Starts the writer: it lives as long as a [`Recorder`] does.
    pub fn start(store: Arc<dyn Store>) -> Recorder {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        tokio::spawn(write(store, rx));
        Recorder { tx }
    }

    /// Records `ping`, its body kept up to `body_limit` bytes, once its batch is committed.
    pub async fn record(&self, ping: Ping, body_limit: usize) -> Result<Recorded, StoreError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send((ping, body_limit, done))
            .await
            .map_err(|_| StoreError::Database("the ping writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("the ping writer has stopped".into()))?
    }
}

async fn write(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let pings: Vec<(&Ping, usize)> = jobs.iter().map(|(p, l, _)| (p, *l)).collect();
        let results = match batch(store.as_ref(), &pings).await {
            Ok(recorded) => recorded.into_iter().map(Ok).collect(),
            Err(_) => {
                let mut one_by_one = Vec::with_capacity(jobs.len());
                for (ping, limit, _) in &jobs {
                    one_by_one.push(record(store.as_ref(), ping.clone(), *limit).await);
                }
                one_by_one
            }
        };
        for ((_, _, done), result) in jobs.into_iter().zip(results) {
            let _ = done.send(result);
        }
    }
}

/// Every ping's writes (each with its body limit), in one transaction, in arrival order.
async fn batch(store: &dyn Store, pings: &[(&Ping, usize)]) -> Result<Vec<Recorded>, StoreError> {
    // The open runs of the one heartbeat pinged, or of every heartbeat.
    let one = pings
        .first()
        .map(|(p, _)| &p.check)
        .filter(|c| pings.iter().all(|(p, _)| p.check == **c));
    let mut open: HashMap<String, Vec<Run>> = HashMap::new();
    for run in store
        .runs(&RunFilter {
            pipeline: one.cloned(),
            status: Some(RunStatus::Running),
            trigger: Some(Trigger::External),
            limit: OPEN_LIMIT,
            ..RunFilter::default()
        })
        .await?
    {
        open.entry(run.pipeline.clone()).or_default().push(run);
    }
    let mut attempts: HashMap<RunId, u32> = HashMap::new();
    let mut inserts = Vec::new();
    let mut rest = Vec::new();
    let mut recorded = Vec::with_capacity(pings.len());
    for &(ping, limit) in pings {
        let log = bounded(&ping.body, ping.body_size, limit);
        let runs = open.entry(ping.check.clone()).or_default();
        let found = runs
            .iter()
            .position(|r| r.params.get(RID) == ping.rid.as_ref());
        let (writes, r) = match ping.signal {
            Signal::Start => {
                let (writes, r) = start(ping, log);
                if let Some(Write::InsertRun(new)) = writes.first() {
                    runs.insert(0, opened(new));
                }
                (writes, r)
            }
            Signal::Log => {
                let run = found.map(|i| runs[i].clone());
                let attempt = match &run {
                    Some(run) => match attempts.get(&run.id) {
                        Some(n) => *n,
                        None => next_log_attempt(store, run.id).await?,
                    },
                    None => 1,
                };
                if let Some(run) = &run {
                    attempts.insert(run.id, attempt + 1);
                }
                log_only(ping, run.as_ref(), attempt, log)
            }
            Signal::Success | Signal::Fail | Signal::Exit(_) => {
                let run = found.map(|i| runs.remove(i));
                end(ping, run.as_ref(), log)
            }
        };
        for w in writes {
            match w {
                Write::InsertRun(_) => inserts.push(w),
                other => rest.push(other),
            }
        }
        recorded.push(r);
    }
    // Writes of one kind together (a ping's stage still before its end, pings' facts in their
    // order): the store applies each kind in a few multi-row statements.
    rest.sort_by_key(|w| match w {
        Write::PutStage(_) => 0,
        Write::FinishRun(_) => 1,
        _ => 2,
    });
    inserts.extend(rest);
    store.apply(inserts).await?;
    Ok(recorded)
}

/// The run a start opened, as the next pings of its batch see it.
fn opened(new: &NewRun) -> Run {
    Run {
        id: new.id,
        pipeline: new.pipeline.clone(),
        trigger: new.trigger,
        scheduled_for: new.scheduled_for,
        params: new.params.clone(),
        status: new.status,
        reason: new.reason.clone(),
        queued_at: new.queued_at,
        started_at: new.started_at,
        finished_at: None,
        duration_ms: None,
        error_stage: None,
        error_message: None,
        node: new.node.clone(),
        parent: new.parent,
        lag_ms: None,
        cancel_requested: false,
        selection: new.selection.clone(),
        period: None,
        force: false,
    }
}
