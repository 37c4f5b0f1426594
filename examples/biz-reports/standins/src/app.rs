//! The care agency's own app, as far as the example needs it. Caregivers' shift notes become
//! reports in its `reports` table; its job endpoints (what cron used to call, and plantao's
//! HTTP steps call now) move them along:
//!
//! | job | what it does | counters it answers |
//! | --- | --- | --- |
//! | `POST /jobs/sync` | the shift's new notes become reports (`new`) | `new` |
//! | `POST /jobs/process` | the AI writes each family's message; checks approve or fail it; the AI's template stands in when it times out (`fallback`); a note with an alarming word is held for a nurse (`review`) | `approved`, `failed`, `fallback`, `held` |
//! | `POST /jobs/notify-review` | tells the reviewers on Slack what waits for them | `waiting`, `notified` |
//! | `POST /jobs/send` | sends the approved messages on WhatsApp (Evolution) | `sent`, `send_failed` |
//! | `POST /jobs/review-timeout` | reminds the nurse on duty of reports waiting over 30 minutes | `waiting`, `overdue`, `reminded` |
//!
//! Each answers pretty-printed JSON: numbers at the top level (plantao's counters) and a `log`
//! with a line per report, which is where plantao's patterns find alarming words.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use chrono::Timelike as _;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row as _, SqliteConnection};

use crate::Options;
use crate::services::NOT_ON_WHATSAPP;

/// The Evolution instance the app sends from.
pub const INSTANCE: &str = "biz-reports";
/// The Slack webhook the reviewers' channel is behind.
pub const REVIEWERS_WEBHOOK: &str = "/services/T0BIZ/B0REVIEW/reviewers";
/// The nurse on duty, reminded of reports waiting too long.
pub const NURSE_ON_DUTY: &str = "5511955550101";
/// The words a nurse must read before a message goes to a family (plantao's patterns watch
/// for the same ones).
pub const ALARMING: [&str; 4] = ["queda", "febre", "emergência", "hospital"];

/// The residents and their families' numbers; the last one is not on WhatsApp.
const RESIDENTS: [(&str, &str); 12] = [
    ("Dona Cida", "5511987650101"),
    ("Seu Jorge", "5511987650102"),
    ("Dona Lurdes", "5511987650103"),
    ("Seu Tonico", "5511987650104"),
    ("Dona Zefa", "5511987650105"),
    ("Dona Neide", "5511987650106"),
    ("Seu Arlindo", "5511987650107"),
    ("Dona Filó", "5511987650108"),
    ("Seu Benedito", "5511987650109"),
    ("Dona Olga", "5511987650110"),
    ("Seu Lauro", "5511987650111"),
    ("Dona Dita", "5511900000000"),
];

const NOTES: [&str; 8] = [
    "Almoçou bem, participou da oficina de música e descansou à tarde.",
    "Tomou os remédios no horário e caminhou no jardim com a cuidadora.",
    "Recebeu a visita da filha, ficou animada e jantou toda a refeição.",
    "Dormiu depois do almoço e fez a fisioterapia das 16h sem queixas.",
    "Pressão 12x8 pela manhã, hidratação reforçada, humor estável.",
    "Jogou bingo, conversou com os colegas e comeu todo o lanche.",
    "Pediu para ligar para o neto; a ligação foi feita às 15h.",
    "Banho tranquilo, trocou a roupa de cama, assistiu à novela.",
];

const ALARMING_NOTES: [&str; 4] = [
    "Teve uma queda no banheiro às 14h, sem ferimentos aparentes; a família foi avisada.",
    "Febre de 38,2 à tarde, medicada com dipirona e em observação.",
    "Foi levado ao hospital para um exame de imagem e voltou às 17h.",
    "Emergência às 19h: falta de ar depois do jantar; o SAMU foi chamado e ela está estável.",
];

/// The app's state: its database, who it calls, and its dice.
#[derive(Debug)]
pub struct App {
    db: SqlitePool,
    token: String,
    http: reqwest::Client,
    evolution: String,
    evolution_key: String,
    slack: String,
    dice: Mutex<Dice>,
    process_calls: AtomicU32,
    flaky_every: u32,
    /// Whether a sync has made an alarming note yet: the first one always does, so a demo
    /// shows a finding in its first run.
    alarmed: AtomicBool,
}

impl App {
    /// Opens (creating when missing) the database; a new one starts with one report a nurse
    /// has not reviewed for two hours, the kind the example's SQL probe is for.
    pub async fn open(
        options: &Options,
        evolution: SocketAddr,
        slack: SocketAddr,
    ) -> anyhow::Result<Arc<App>> {
        let connect = SqliteConnectOptions::new()
            .filename(&options.database)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let db = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS reports (
                id INTEGER PRIMARY KEY,
                resident TEXT NOT NULL,
                family_phone TEXT NOT NULL,
                shift TEXT NOT NULL,
                note TEXT NOT NULL,
                message TEXT,
                fallback INTEGER NOT NULL DEFAULT 0,
                -- new, review, approved, failed, sent, send_failed
                status TEXT NOT NULL,
                -- UTC, as SQLite's datetime() writes it
                created_at TEXT NOT NULL DEFAULT (datetime('now')),
                review_since TEXT,
                reminded_at TEXT,
                sent_at TEXT
            );
            INSERT INTO reports (resident, family_phone, shift, note, message, status, created_at, review_since)
            SELECT 'Dona Lurdes', '5511987650103', 'manhã',
                   'Febre de 37,9 ao acordar; medicada e em observação.',
                   'Olá, família de Dona Lurdes! Hoje de manhã ela teve febre de 37,9 ao acordar; foi medicada e segue em observação.',
                   'review', datetime('now', '-3 hours'), datetime('now', '-2 hours')
            WHERE NOT EXISTS (SELECT 1 FROM reports);",
        )
        .execute(&db)
        .await?;
        Ok(Arc::new(App {
            db,
            token: options.app_token.clone(),
            http: http_client()?,
            evolution: format!("http://{evolution}"),
            evolution_key: options.evolution_key.clone(),
            slack: format!("http://{slack}{REVIEWERS_WEBHOOK}"),
            dice: Mutex::new(Dice(options.seed)),
            process_calls: AtomicU32::new(0),
            flaky_every: options.flaky_every,
            alarmed: AtomicBool::new(false),
        }))
    }

    fn dice(&self) -> std::sync::MutexGuard<'_, Dice> {
        self.dice
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider in this workspace; loopback needs none,
    // but the builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// The app's routes: `/health` for anyone, the jobs behind the bearer token.
pub fn router(app: Arc<App>) -> Router {
    let jobs = Router::new()
        .route("/jobs/sync", post(sync))
        .route("/jobs/process", post(process))
        .route("/jobs/notify-review", post(notify_review))
        .route("/jobs/send", post(send))
        .route("/jobs/review-timeout", post(review_timeout))
        .route_layer(middleware::from_fn_with_state(app.clone(), authorized));
    Router::new()
        .route("/health", get(health))
        .merge(jobs)
        .with_state(app)
}

async fn authorized(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let expected = format!("Bearer {}", app.token);
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "a job needs Authorization: Bearer <the app's token>"}),
        );
    }
    next.run(request).await
}

/// Pretty-printed, so each report's line of the log is a line of the step's log.
fn answer(status: StatusCode, body: Value) -> Response {
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// What a job answers when it cannot finish.
fn failed(status: StatusCode, error: impl std::fmt::Display) -> Response {
    answer(status, json!({"error": error.to_string()}))
}

type Answer = Result<Response, Response>;

fn db_error(e: sqlx::Error) -> Response {
    failed(StatusCode::INTERNAL_SERVER_ERROR, format!("database: {e}"))
}

async fn health(State(app): State<Arc<App>>) -> Response {
    match sqlx::query("SELECT status, count(*) FROM reports GROUP BY status")
        .fetch_all(&app.db)
        .await
    {
        Ok(rows) => {
            let counts: serde_json::Map<String, Value> = rows
                .iter()
                .map(|r| (r.get::<String, _>(0), json!(r.get::<i64, _>(1))))
                .collect();
            answer(
                StatusCode::OK,
                json!({"status": "ok", "database": "ok", "reports": counts}),
            )
        }
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "down", "database": e.to_string()}),
        ),
    }
}

/// The shift the São Paulo clock is in: the example's runs are at 12:00, 18:00 and 20:00.
fn shift_now() -> &'static str {
    let hour = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .hour();
    match hour {
        0..15 => "manhã",
        15..19 => "tarde",
        _ => "noite",
    }
}

async fn sync(State(app): State<Arc<App>>) -> Answer {
    let shift = shift_now();
    let picked: Vec<(&str, &str, &str)> = {
        let mut dice = app.dice();
        let count = 6 + dice.below(7) as usize;
        let mut order: Vec<usize> = (0..RESIDENTS.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, dice.below(i as u64 + 1) as usize);
        }
        order
            .into_iter()
            .take(count)
            .map(|i| {
                let alarm = !app.alarmed.swap(true, Ordering::Relaxed) || dice.chance(0.08);
                let note = if alarm {
                    ALARMING_NOTES[dice.below(ALARMING_NOTES.len() as u64) as usize]
                } else {
                    NOTES[dice.below(NOTES.len() as u64) as usize]
                };
                (RESIDENTS[i].0, RESIDENTS[i].1, note)
            })
            .collect()
    };
    let mut tx = app.db.begin().await.map_err(db_error)?;
    let mut log = Vec::new();
    for (resident, phone, note) in &picked {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reports (resident, family_phone, shift, note, status)
             VALUES (?, ?, ?, ?, 'new') RETURNING id",
        )
        .bind(resident)
        .bind(phone)
        .bind(shift)
        .bind(note)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        log.push(format!("#{id} {resident} ({shift}): new note"));
    }
    tx.commit().await.map_err(db_error)?;
    Ok(answer(
        StatusCode::OK,
        json!({"new": picked.len(), "shift": shift, "log": log}),
    ))
}

fn alarming(note: &str) -> bool {
    let lower = note.to_lowercase();
    ALARMING.iter().any(|w| lower.contains(w))
}

async fn process(State(app): State<Arc<App>>) -> Answer {
    let call = app.process_calls.fetch_add(1, Ordering::Relaxed) + 1;
    if app.flaky_every > 0 && call.is_multiple_of(app.flaky_every) {
        return Err(failed(
            StatusCode::SERVICE_UNAVAILABLE,
            "the AI provider is overloaded (429 upstream); nothing was processed, try again",
        ));
    }
    let rows = sqlx::query(
        "SELECT id, resident, shift, note FROM reports WHERE status = 'new' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .map_err(db_error)?;
    // Some shifts the AI does worse than others: each call draws how often it fails the
    // checks and how often it times out (and the template stands in).
    let (fail_p, fallback_p) = {
        let mut dice = app.dice();
        (dice.between(0.02, 0.32), dice.between(0.03, 0.30))
    };
    let (mut approved, mut failed_, mut fallback, mut held) = (0, 0, 0, 0);
    let mut log = Vec::new();
    let mut tx = app.db.begin().await.map_err(db_error)?;
    for row in rows {
        let (id, resident, shift, note): (i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let (fails, from_template) = {
            let mut dice = app.dice();
            (dice.chance(fail_p), dice.chance(fallback_p))
        };
        if fails {
            failed_ += 1;
            log.push(format!(
                "#{id} {resident}: failed the checks (a medication name the note does not have); rewrite it by hand"
            ));
            set_status(&mut tx, id, "failed", None, false).await?;
            continue;
        }
        approved += 1;
        let message = if from_template {
            fallback += 1;
            format!(
                "Olá, família de {resident}! O plantão da {shift} foi tranquilo. Qualquer dúvida, fale com a nossa equipe."
            )
        } else {
            format!("Olá, família de {resident}! Resumo do plantão da {shift}: {note}")
        };
        let source = if from_template {
            " (from the template: the AI timed out)"
        } else {
            ""
        };
        if alarming(&note) {
            held += 1;
            log.push(format!(
                "#{id} {resident}: held for a nurse's review{source}; the caregiver wrote: «{note}»"
            ));
            set_status(&mut tx, id, "review", Some(&message), from_template).await?;
        } else {
            log.push(format!("#{id} {resident}: approved{source}"));
            set_status(&mut tx, id, "approved", Some(&message), from_template).await?;
        }
    }
    tx.commit().await.map_err(db_error)?;
    Ok(answer(
        StatusCode::OK,
        json!({"approved": approved, "failed": failed_, "fallback": fallback, "held": held, "log": log}),
    ))
}

async fn set_status(
    tx: &mut SqliteConnection,
    id: i64,
    status: &str,
    message: Option<&str>,
    fallback: bool,
) -> Result<(), Response> {
    sqlx::query(
        "UPDATE reports SET status = ?, message = coalesce(?, message), fallback = ?,
                review_since = CASE WHEN ? = 'review' THEN datetime('now') ELSE review_since END
         WHERE id = ?",
    )
    .bind(status)
    .bind(message)
    .bind(fallback)
    .bind(status)
    .bind(id)
    .execute(tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The age of the oldest report waiting for review, in whole minutes.
const WAITING: &str =
    "SELECT count(*), coalesce(max((julianday('now') - julianday(review_since)) * 1440), 0)
                       FROM reports WHERE status = 'review'";

async fn notify_review(State(app): State<Arc<App>>) -> Answer {
    let row = sqlx::query(WAITING)
        .fetch_one(&app.db)
        .await
        .map_err(db_error)?;
    let (waiting, oldest): (i64, f64) = (row.get(0), row.get(1));
    if waiting == 0 {
        return Ok(answer(
            StatusCode::OK,
            json!({"waiting": 0, "notified": 0, "log": ["nothing waits for review"]}),
        ));
    }
    let text = format!(
        "📋 {waiting} relatório(s) aguardam revisão de enfermagem; o mais antigo há {} min. Abra a fila de revisão no app.",
        oldest.floor()
    );
    let sent = app
        .http
        .post(&app.slack)
        .header(header::CONTENT_TYPE, "application/json")
        .body(json!({ "text": text }).to_string())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(answer(
            StatusCode::OK,
            json!({"waiting": waiting, "notified": 1, "log": [format!("reviewers told: {text}")]}),
        )),
        Ok(r) => Err(failed(
            StatusCode::BAD_GATEWAY,
            format!("Slack answered {}", r.status()),
        )),
        Err(e) => Err(failed(
            StatusCode::BAD_GATEWAY,
            format!("Slack did not answer: {e}"),
        )),
    }
}

/// Sends one WhatsApp message; `Ok(false)` when the number is not on WhatsApp.
async fn whatsapp(app: &App, number: &str, text: &str) -> Result<bool, Response> {
    let url = format!("{}/message/sendText/{INSTANCE}", app.evolution);
    let answer = app
        .http
        .post(&url)
        .header("apikey", &app.evolution_key)
        .header(header::CONTENT_TYPE, "application/json")
        .body(json!({"number": number, "text": text}).to_string())
        .send()
        .await
        .map_err(|e| {
            failed(
                StatusCode::BAD_GATEWAY,
                format!("Evolution did not answer: {e}"),
            )
        })?;
    match answer.status().as_u16() {
        200..300 => Ok(true),
        400 => Ok(false),
        status => Err(failed(
            StatusCode::BAD_GATEWAY,
            format!("Evolution answered {status}"),
        )),
    }
}

async fn send(State(app): State<Arc<App>>) -> Answer {
    let rows = sqlx::query(
        "SELECT id, resident, family_phone, message FROM reports WHERE status = 'approved' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .map_err(db_error)?;
    let (mut sent, mut send_failed) = (0, 0);
    let mut log = Vec::new();
    for row in rows {
        let (id, resident, phone, message): (i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let delivered = whatsapp(&app, &phone, &message).await?;
        let status = if delivered {
            sent += 1;
            log.push(format!("#{id} {resident}: sent to {phone}"));
            "sent"
        } else {
            send_failed += 1;
            log.push(format!(
                "#{id} {resident}: not sent, {phone} is not on WhatsApp (ends in {NOT_ON_WHATSAPP}); fix the family's number"
            ));
            "send_failed"
        };
        sqlx::query("UPDATE reports SET status = ?, sent_at = datetime('now') WHERE id = ?")
            .bind(status)
            .bind(id)
            .execute(&app.db)
            .await
            .map_err(db_error)?;
    }
    Ok(answer(
        StatusCode::OK,
        json!({"sent": sent, "send_failed": send_failed, "log": log}),
    ))
}

async fn review_timeout(State(app): State<Arc<App>>) -> Answer {
    let row = sqlx::query(WAITING)
        .fetch_one(&app.db)
        .await
        .map_err(db_error)?;
    let waiting: i64 = row.get(0);
    let overdue = sqlx::query(
        "SELECT id, resident FROM reports
         WHERE status = 'review' AND review_since < datetime('now', '-30 minutes')
           AND (reminded_at IS NULL OR reminded_at < datetime('now', '-30 minutes'))
         ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .map_err(db_error)?;
    let names: Vec<String> = overdue
        .iter()
        .map(|r| format!("#{} {}", r.get::<i64, _>(0), r.get::<String, _>(1)))
        .collect();
    let mut reminded = 0;
    if !names.is_empty() {
        let text = format!(
            "⏰ Lembrete: {} relatório(s) esperam sua revisão há mais de 30 min: {}.",
            names.len(),
            names.join(", ")
        );
        if whatsapp(&app, NURSE_ON_DUTY, &text).await? {
            reminded = names.len();
            sqlx::query(
                "UPDATE reports SET reminded_at = datetime('now')
                 WHERE status = 'review' AND review_since < datetime('now', '-30 minutes')",
            )
            .execute(&app.db)
            .await
            .map_err(db_error)?;
        }
    }
    let log: Vec<String> = names
        .iter()
        .map(|n| format!("{n}: waiting over 30 minutes, the nurse on duty reminded"))
        .collect();
    Ok(answer(
        StatusCode::OK,
        json!({"waiting": waiting, "overdue": names.len(), "reminded": reminded, "log": log}),
    ))
}

/// SplitMix64: enough dice for made-up shifts, the same ones for the same seed.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}
