//! Who is looking at the dashboard, in which language, and what they may do.
//!
//! Signing in takes a token (`plantao token create`); the session cookie carries that token,
//! `HttpOnly` (scripts cannot read it), `SameSite=Strict` (other sites cannot make the browser
//! send it) and `Secure` behind an HTTPS proxy. Revoking the token ends every session signed in
//! with it; nothing about sessions is kept on the server, so any node of a cluster serves them.
//! Every form carries a CSRF token derived from the session's secret, and every form post must
//! come from this origin. A request with `Authorization: Bearer` (a script, the benchmark) is
//! served the same pages without a cookie.

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT_LANGUAGE, AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use plantao_model::Role;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::dashboard::i18n::{Lang, Text};

pub const SESSION_COOKIE: &str = "plantao_session";
pub const LANG_COOKIE: &str = "plantao_lang";
/// How long a browser keeps a session: revoke the token to end it sooner.
const SESSION_SECONDS: u32 = 30 * 86_400;

/// A signed-in token.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub name: String,
    pub role: Role,
}

/// The visitor of a page, whoever they are (never refused at extraction: each page decides).
#[derive(Debug)]
pub struct Visitor {
    pub text: Text,
    pub who: Option<SignedIn>,
    /// The CSRF token the session's forms carry; empty without a session cookie.
    pub csrf: String,
    /// Signed in by cookie (forms must then carry the CSRF token), not by a bearer header.
    by_cookie: bool,
    /// The request names no other origin than this host.
    same_origin: bool,
    /// The request came through an HTTPS proxy.
    pub secure: bool,
}

/// Why an action is refused, for the page that says so.
#[derive(Debug)]
pub enum Refusal {
    SignIn,
    Forbidden(String),
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The CSRF token of a session: a hash of its secret, so it needs no storage and changes with it.
pub fn csrf_of(secret: &str) -> String {
    let digest = Sha256::digest(format!("plantao-csrf\0{secret}").as_bytes());
    crate::auth::hex(&digest[..16])
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    !host.is_empty() && bare == host
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let lang = cookie(headers, LANG_COOKIE)
            .and_then(Lang::parse)
            .or_else(|| {
                headers
                    .get(ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .map(Lang::negotiate)
            })
            .unwrap_or(Lang::En);
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let from_cookie = cookie(headers, SESSION_COOKIE).filter(|s| !s.is_empty());
        let (secret, by_cookie) = match (from_cookie, bearer) {
            (Some(s), _) => (Some(s), true),
            (None, Some(b)) => (Some(b), false),
            (None, None) => (None, false),
        };
        let who = match secret {
            Some(secret) => match state.tokens.by_secret(state.store.as_ref(), secret).await {
                Ok(token) => token.map(|t| SignedIn {
                    name: t.name,
                    role: t.role,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard: the token could not be read");
                    None
                }
            },
            None => None,
        };
        let csrf = match (by_cookie, secret, &who) {
            (true, Some(s), Some(_)) => csrf_of(s),
            _ => String::new(),
        };
        Ok(Visitor {
            text: Text::new(lang),
            who,
            csrf,
            by_cookie,
            same_origin: same_origin(headers),
            secure: headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")),
        })
    }
}

impl Visitor {
    /// Whether the visitor's role is at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.who.as_ref().is_some_and(|w| w.role >= role)
    }

    /// Whether the visitor may read the pages: signed in, or the server's reads are public.
    pub fn may_read(&self, state: &AppState) -> bool {
        self.who.is_some() || state.public_read()
    }

    /// Whether a form post may act with `role`: from this origin, signed in with that role, with
    /// the session's CSRF token. Returns who acts.
    pub fn act(&self, role: Role, csrf: &str) -> Result<&SignedIn, Refusal> {
        if !self.same_origin {
            return Err(Refusal::Forbidden(self.text.t("error.origin").into_owned()));
        }
        let Some(who) = &self.who else {
            return Err(Refusal::SignIn);
        };
        if self.by_cookie && csrf != self.csrf {
            return Err(Refusal::Forbidden(self.text.t("error.csrf").into_owned()));
        }
        if who.role < role {
            return Err(Refusal::Forbidden(
                self.text
                    .f("error.role", "role", self.text.word("role", role))
                    .replace("{yours}", &self.text.word("role", who.role)),
            ));
        }
        Ok(who)
    }
}

/// The `Set-Cookie` value that signs a browser in with `secret`.
pub fn session_cookie(secret: &str, secure: bool) -> HeaderValue {
    let value = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that signs a browser out.
pub fn cleared_session() -> HeaderValue {
    HeaderValue::from_static("plantao_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The `Set-Cookie` value that remembers a language for a year.
pub fn lang_cookie(lang: Lang) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        lang.tag()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `next` when it is a path on this site; the overview otherwise (no open redirects).
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/runs/1?x=2"), "/runs/1?x=2");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
    }

    #[test]
    fn a_post_from_another_origin_is_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8077"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8077"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_hide_the_secret() {
        let a = csrf_of("plt_aaa");
        assert_eq!(a.len(), 32);
        assert_ne!(a, csrf_of("plt_bbb"));
        assert!(!a.contains("aaa"));
    }
}
