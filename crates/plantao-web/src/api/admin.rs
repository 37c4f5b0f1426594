//! Tokens and the audit log: admin only.

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use plantao_model::Role;
use plantao_store::{AuditRecord, Token, Write};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Admin, hash_secret, new_secret};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};

#[utoipa::path(get, path = "/api/tokens", tag = "admin",
    security(("token" = [])),
    responses((status = 200, description = "names, roles and creation times; never the secrets", body = Vec<Token>),
              (status = 403, body = crate::ErrorBody)))]
pub async fn list_tokens(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<Token>>> {
    Ok(Json(state.store.tokens().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Letters, digits, `-`, `_` and `.`; at most 64.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    pub role: Role,
}

/// The only time a token's secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Send it as `Authorization: Bearer …`. It cannot be shown again.
    pub token: String,
}

/// Whether a token name is acceptable; the reason when not.
pub fn check_token_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "`{name}` is not a token name: use 1 to 64 letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

/// A new token for `name`, and the writes that store and audit it.
pub fn mint(actor: &str, name: &str, role: Role) -> Result<(CreatedToken, Vec<Write>), String> {
    check_token_name(name)?;
    let secret = new_secret().map_err(|e| format!("no randomness for a token: {e}"))?;
    let created_at = Utc::now();
    let writes = vec![
        Write::CreateToken(Token {
            name: name.to_owned(),
            role,
            hash: hash_secret(&secret),
            created_at,
        }),
        Write::audit(actor, "token.create", name, Some(format!("role {role}"))),
    ];
    Ok((
        CreatedToken {
            name: name.to_owned(),
            role,
            created_at,
            token: secret,
        },
        writes,
    ))
}

#[utoipa::path(post, path = "/api/tokens", tag = "admin",
    security(("token" = [])),
    request_body = NewToken,
    responses((status = 201, body = CreatedToken),
              (status = 400, body = crate::ErrorBody),
              (status = 409, description = "the name is taken", body = crate::ErrorBody)))]
pub async fn create_token(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Body(new): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let (created, writes) =
        mint(&caller.actor, &new.name, new.role).map_err(ApiError::bad_request)?;
    state.store.apply(writes).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "admin",
    security(("token" = [])),
    params(("name" = String, Path, description = "the token's name")),
    responses((status = 204, description = "revoked: it no longer works"),
              (status = 404, body = crate::ErrorBody)))]
pub async fn revoke_token(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    revoke(&state, &caller.actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes token `name`: it stops working on this server at once, on others within
/// [`crate::auth::TOKEN_CACHE`].
pub(crate) async fn revoke(state: &AppState, actor: &str, name: &str) -> ApiResult<()> {
    state
        .store
        .apply(vec![
            Write::RevokeToken {
                name: name.to_owned(),
            },
            Write::audit(actor, "token.revoke", name, None),
        ])
        .await?;
    state.tokens.forget();
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this one (an entry's id), for the next page.
    pub before: Option<i64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/audit", tag = "admin",
    security(("token" = [])),
    params(AuditQuery),
    responses((status = 200, description = "newest first", body = Vec<AuditRecord>),
              (status = 400, body = crate::ErrorBody),
              (status = 403, body = crate::ErrorBody)))]
pub async fn audit_log(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 1000"));
    }
    Ok(Json(state.store.audit(q.before, limit).await?))
}
