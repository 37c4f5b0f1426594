//! Tokens and roles. A token is a random secret shown once; the store keeps only its SHA-256.
//! Handlers say which role they need by the extractor they take ([`Viewer`], [`Operator`],
//! [`Admin`]), so a route cannot forget its check.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use plantao_model::Role;
use plantao_store::{Store, StoreError, Token};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// What every token starts with, so that a leaked one is easy to recognise and search for.
pub const PREFIX: &str = "plt_";

/// A new secret: the prefix and 32 random bytes in hex.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", hex(&bytes)))
}

/// What the store keeps of a secret. Secrets are 256 random bits, so a plain SHA-256 cannot be
/// reversed by guessing; no slow password hash is needed.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// How long a token read from the store is trusted before it is read again: a token revoked by
/// another process (`plantao token revoke`, another node) stops working within this time; one
/// revoked through this server's API stops at once.
pub const TOKEN_CACHE: Duration = Duration::from_secs(5);

/// Tokens recently read from the store, by hash; unknown hashes are not remembered (a caller
/// trying many cannot fill it).
#[derive(Debug, Default)]
pub struct Tokens {
    known: Mutex<HashMap<String, (Token, Instant)>>,
}

impl Tokens {
    /// The token whose secret is `secret`, if it works.
    pub(crate) async fn by_secret(
        &self,
        store: &dyn Store,
        secret: &str,
    ) -> Result<Option<Token>, StoreError> {
        self.find(store, &hash_secret(secret), Instant::now()).await
    }

    async fn find(
        &self,
        store: &dyn Store,
        hash: &str,
        now: Instant,
    ) -> Result<Option<Token>, StoreError> {
        if let Some((token, read)) = self.lock().get(hash)
            && now.duration_since(*read) < TOKEN_CACHE
        {
            return Ok(Some(token.clone()));
        }
        let token = store.token_by_hash(hash).await?;
        let mut known = self.lock();
        match &token {
            Some(t) => {
                if known.len() >= 10_000 {
                    known.clear();
                }
                known.insert(hash.to_owned(), (t.clone(), now));
            }
            None => {
                known.remove(hash);
            }
        }
        Ok(token)
    }

    /// Forgets every token: called when one is revoked here.
    pub fn forget(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Token, Instant)>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Who is asking: a token's name, or `anonymous` for a public read.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: String,
}

/// Any valid token, or none for GET requests when `server.public_read` is on.
#[derive(Debug)]
pub struct Viewer(pub Caller);
/// A token of role operator or admin.
#[derive(Debug)]
pub struct Operator(pub Caller);
/// An admin token.
#[derive(Debug)]
pub struct Admin(pub Caller);

async fn authorize(parts: &Parts, state: &AppState, needed: Role) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        if needed == Role::Viewer && parts.method == Method::GET && state.public_read() {
            return Ok(Caller {
                actor: "anonymous".to_owned(),
            });
        }
        return Err(ApiError::unauthorized(
            "send a token as `Authorization: Bearer TOKEN`; `plantao token create --name NAME --role viewer` makes one",
        ));
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
    let token = state
        .tokens
        .by_secret(state.store.as_ref(), secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this token is unknown or was revoked"))?;
    if token.role < needed {
        return Err(ApiError::forbidden(format!(
            "this needs a token of role {needed}; token `{}` is a {}",
            token.name, token.role
        )));
    }
    Ok(Caller { actor: token.name })
}

macro_rules! role_extractor {
    ($name:ident, $role:expr) => {
        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                authorize(parts, state, $role).await.map($name)
            }
        }
    };
}

role_extractor!(Viewer, Role::Viewer);
role_extractor!(Operator, Role::Operator);
role_extractor!(Admin, Role::Admin);
