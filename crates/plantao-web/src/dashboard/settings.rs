//! Settings: the language, and for admins the runtime thresholds, the tokens and the audit log.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use chrono_tz::Tz;
use plantao_model::Role;

use super::i18n::Lang;
use super::session::Visitor;
use super::{Acting, AsAdmin, Chrome, gate, html, respond};
use crate::AppState;
use crate::api::{ThresholdChanges, mint, revoke, set_thresholds, thresholds};
use crate::error::{ApiError, ApiResult};

/// Audit entries the page lists.
const AUDIT: u32 = 50;

pub struct ThresholdRow {
    pub rule: String,
    pub kind: String,
    pub configured: String,
    pub overridden: String,
    pub effective: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub c: Chrome,
    pub languages: Vec<(&'static str, String, bool)>,
    pub thresholds: Vec<ThresholdRow>,
    pub tokens: Vec<(String, String, String)>,
    pub audit: Vec<(String, String, String, String, String)>,
    /// A token just created: shown once.
    pub created: Option<(String, String)>,
}

async fn build(
    state: &AppState,
    c: Chrome,
    created: Option<(String, String)>,
) -> ApiResult<SettingsPage> {
    let t = c.t;
    let number = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| t.num(v, 2));
    let (thresholds, tokens, audit) = if c.admin {
        let overrides = state.store.thresholds().await?;
        let rows = thresholds(state, &overrides)
            .into_iter()
            .map(|r| ThresholdRow {
                kind: r.kind,
                configured: number(r.configured),
                overridden: r.overridden.map(|v| v.to_string()).unwrap_or_default(),
                effective: number(r.effective),
                rule: r.rule,
            })
            .collect();
        let tokens = state
            .store
            .tokens()
            .await?
            .into_iter()
            .map(|k| {
                (
                    k.name,
                    t.word("role", k.role).into_owned(),
                    t.at(k.created_at, Tz::UTC),
                )
            })
            .collect();
        let audit = state
            .store
            .audit(None, AUDIT)
            .await?
            .into_iter()
            .map(|a| {
                (
                    t.at(a.entry.at, Tz::UTC),
                    a.entry.actor,
                    a.entry.action,
                    a.entry.target,
                    a.entry.detail.unwrap_or_default(),
                )
            })
            .collect();
        (rows, tokens, audit)
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    Ok(SettingsPage {
        languages: Lang::ALL
            .iter()
            .map(|l| (l.tag(), t.word("lang", l.tag()).into_owned(), *l == t.lang))
            .collect(),
        thresholds,
        tokens,
        audit,
        created,
        c,
    })
}

pub async fn page(v: Visitor, State(state): State<AppState>, uri: Uri) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "settings");
    respond(&v, &uri, build(&state, c, None).await)
}

/// Threshold overrides: a field `rule.NAME` per rule; empty restores the configured value.
pub async fn thresholds_form(State(state): State<AppState>, a: Acting<AsAdmin>) -> Response {
    let result = async {
        let mut changes = BTreeMap::new();
        for (k, value) in &a.form {
            let Some(rule) = k.strip_prefix("rule.") else {
                continue;
            };
            let value = value.trim().replace(',', ".");
            let parsed = if value.is_empty() {
                None
            } else {
                Some(value.parse::<f64>().map_err(|_| {
                    ApiError::bad_request(format!("the threshold of `{rule}` must be a number"))
                })?)
            };
            changes.insert(rule.to_owned(), parsed);
        }
        set_thresholds(
            &state,
            &a.who,
            &ThresholdChanges {
                thresholds: changes,
            },
        )
        .await
    }
    .await;
    a.finish(result, "saved")
}

/// A new token: the settings page again, showing its secret once.
pub async fn create_token(State(state): State<AppState>, a: Acting<AsAdmin>) -> Response {
    let result = async {
        let role: Role = a
            .field("role")
            .parse()
            .map_err(|e: plantao_model::ParseEnumError| ApiError::bad_request(e.to_string()))?;
        let (created, writes) =
            mint(&a.who, a.field("name").trim(), role).map_err(ApiError::bad_request)?;
        state.store.apply(writes).await?;
        let page_uri: Uri = "/settings".parse().unwrap_or_default();
        let c = Chrome::new(&a.v, &page_uri, "settings");
        build(&state, c, Some((created.name, created.token))).await
    }
    .await;
    match result {
        Ok(page) => html(&page),
        Err(e) => a.failed(&e),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    a: Acting<AsAdmin>,
) -> Response {
    a.finish(revoke(&state, &a.who, &name).await, "revoked")
}
