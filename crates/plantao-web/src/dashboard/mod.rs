//! The dashboard at `/`: server-rendered pages (askama templates under `templates/`, checked when
//! the crate compiles), their CSS and the little JavaScript that refreshes them, all embedded in
//! the binary. Pages read what the API reads, through the same functions; forms post to the
//! routes here, which act through the same functions as the API and redirect back.

mod alerts;
pub mod chart;
mod checks;
mod figures;
pub mod i18n;
mod overview;
mod pipelines;
mod run;
pub mod session;
mod settings;

use std::collections::HashMap;
use std::marker::PhantomData;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use i18n::{Lang, Text};
use plantao_model::Role;
use session::{Refusal, SignedIn, Visitor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/language/{tag}", get(language))
        .route("/pipelines", get(pipelines::list))
        .route("/pipelines/{name}", get(pipelines::detail))
        .route("/pipelines/{name}/run", post(pipelines::run_now))
        .route("/runs/{id}", get(run::page))
        .route("/runs/{id}/log", get(run::log))
        .route("/runs/{id}/cancel", post(run::cancel))
        .route("/runs/{id}/retry", post(run::retry))
        .route("/checks", get(checks::page))
        .route("/alerts", get(alerts::page))
        .route("/alerts/{id}/ack", post(alerts::ack))
        .route("/alerts/{id}/dismiss", post(alerts::dismiss))
        .route("/silences", post(alerts::silence))
        .route("/silences/{id}/expire", post(alerts::expire))
        .route("/settings", get(settings::page))
        .route("/settings/thresholds", post(settings::thresholds_form))
        .route("/settings/tokens", post(settings::create_token))
        .route(
            "/settings/tokens/{name}/revoke",
            post(settings::revoke_token),
        )
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/assets/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
}

/// The frame of every page: language, who is signed in, navigation, the CSRF token for forms.
#[derive(Debug)]
pub struct Chrome {
    pub t: Text,
    pub who: Option<SignedIn>,
    pub csrf: String,
    /// Which navigation entry is this page.
    pub nav: &'static str,
    /// This page's path and query: where forms come back to and language links return.
    pub here: String,
    /// When it was rendered, in UTC (the page says so).
    pub rendered: String,
    /// A message from the action that led here.
    pub notice: Option<String>,
    pub operator: bool,
    pub admin: bool,
    pub other_lang: Lang,
}

/// A request's query parameters; a malformed query reads as none (pages are lenient).
pub fn query_of(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

/// A request's path and query, as a page links back to itself.
fn here(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

impl Chrome {
    pub fn new(v: &Visitor, uri: &Uri, nav: &'static str) -> Self {
        let query = query_of(uri);
        let notice = query.get("notice").and_then(|key| {
            let message = v.text.t(&format!("notice.{key}"));
            (!message.starts_with('⟦')).then(|| match query.get("run") {
                Some(run) => message.replace("{run}", run),
                None => message.into_owned(),
            })
        });
        Chrome {
            t: v.text,
            who: v.who.clone(),
            csrf: v.csrf.clone(),
            nav,
            here: here(uri),
            rendered: chrono::Utc::now().format("%H:%M:%S UTC").to_string(),
            notice,
            operator: v.can(Role::Operator),
            admin: v.can(Role::Admin),
            other_lang: match v.text.lang {
                Lang::En => Lang::PtBr,
                Lang::PtBr => Lang::En,
            },
        }
    }

    /// The navigation entries: (key, path).
    pub fn menu(&self) -> [(&'static str, &'static str); 6] {
        [
            ("overview", "/"),
            ("pipelines", "/pipelines"),
            ("checks", "/checks"),
            ("alerts", "/alerts"),
            ("settings", "/settings"),
            ("api", "/api/openapi.json"),
        ]
    }

    /// Whether this page is the navigation entry `key`.
    pub fn is(&self, key: &str) -> bool {
        self.nav == key
    }

    /// `back=` this page, as a query string for the language links.
    pub fn back_query(&self) -> String {
        serde_urlencoded::to_string([("back", &self.here)]).unwrap_or_default()
    }
}

/// A rendered page, never cached (it shows live state).
pub fn html(page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            [
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page did not render; the server's log says why",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    message: String,
}

/// An error page in the visitor's language, saying `message`, with `status`.
fn error_page(v: &Visitor, uri: &Uri, status: StatusCode, message: String) -> Response {
    let mut response = html(&ErrorPage {
        c: Chrome::new(v, uri, ""),
        message,
    });
    *response.status_mut() = status;
    response
}

/// A path nothing serves: a browser (asking for HTML, outside `/api`) gets a page in its
/// language with the way back; anyone else the API's JSON 404.
pub async fn not_found(v: Visitor, headers: axum::http::HeaderMap, uri: Uri) -> Response {
    let browser = !uri.path().starts_with("/api")
        && headers
            .get(axum::http::header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if browser {
        let message = v.text.f("error.no_page", "path", uri.path());
        error_page(&v, &uri, StatusCode::NOT_FOUND, message)
    } else {
        crate::api::not_found(&uri).into_response()
    }
}

/// The error page for what the API's functions refused, with their explanation.
pub fn failed(v: &Visitor, uri: &Uri, e: &ApiError) -> Response {
    error_page(v, uri, e.status(), e.message().to_owned())
}

/// Renders what `built` gave, or the error page.
pub fn respond(v: &Visitor, uri: &Uri, built: Result<impl Template, ApiError>) -> Response {
    match built {
        Ok(page) => html(&page),
        Err(e) => failed(v, uri, &e),
    }
}

/// To the sign-in page, coming back to `uri` afterwards.
pub fn to_sign_in(uri: &Uri) -> Response {
    see_other(&format!(
        "/login?{}",
        serde_urlencoded::to_string([("next", here(uri))]).unwrap_or_default()
    ))
}

/// `None` when the visitor may read the pages; otherwise where to send them.
pub fn gate(v: &Visitor, state: &AppState, uri: &Uri) -> Option<Response> {
    (!v.may_read(state)).then(|| to_sign_in(uri))
}

pub fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

/// A refused form post: to the sign-in page, or a 403 page saying why.
pub fn refused(v: &Visitor, uri: &Uri, refusal: Refusal) -> Response {
    match refusal {
        Refusal::SignIn => to_sign_in(uri),
        Refusal::Forbidden(why) => error_page(v, uri, StatusCode::FORBIDDEN, why),
    }
}

/// Form fields, by name.
pub type Fields = HashMap<String, String>;

/// The role a form needs, as a type: [`Acting`]`<AsOperator>`.
pub trait Needs {
    const ROLE: Role;
}

#[derive(Debug)]
pub struct AsOperator;
impl Needs for AsOperator {
    const ROLE: Role = Role::Operator;
}

#[derive(Debug)]
pub struct AsAdmin;
impl Needs for AsAdmin {
    const ROLE: Role = Role::Admin;
}

/// A form post allowed to act with role `R` (from this origin, with the session's CSRF token):
/// a handler that takes one cannot forget the checks. Refused posts are answered before the
/// handler runs: the sign-in page, or a 403 page saying why.
#[derive(Debug)]
pub struct Acting<R> {
    /// Who acts (a token's name), for the audit log.
    pub who: String,
    pub form: Fields,
    pub v: Visitor,
    pub uri: Uri,
    role: PhantomData<R>,
}

impl<R: Needs> FromRequest<AppState> for Acting<R> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Ok(v) = Visitor::from_request_parts(&mut parts, state).await;
        let uri = parts.uri.clone();
        let axum::Form(form) =
            axum::Form::<Fields>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        let who = match v.act(R::ROLE, field(&form, "csrf")) {
            Ok(who) => who.name.clone(),
            Err(r) => return Err(refused(&v, &uri, r)),
        };
        Ok(Acting {
            who,
            form,
            v,
            uri,
            role: PhantomData,
        })
    }
}

impl<R> Acting<R> {
    pub fn field(&self, name: &str) -> &str {
        field(&self.form, name)
    }

    /// Back to the form's page with `notice` when `result` is fine; the error page otherwise.
    pub fn finish<T>(&self, result: ApiResult<T>, notice: &str) -> Response {
        match result {
            Ok(_) => done(&self.form, notice, None),
            Err(e) => self.failed(&e),
        }
    }

    pub fn failed(&self, e: &ApiError) -> Response {
        failed(&self.v, &self.uri, e)
    }
}

fn field<'f>(form: &'f Fields, name: &str) -> &'f str {
    form.get(name).map_or("", String::as_str)
}

/// Back to the page the form was on (its `back` field), with a notice (and, say, the run queued).
pub fn done(form: &Fields, notice: &str, extra: Option<(&str, &str)>) -> Response {
    let back = session::local_path(field(form, "back"));
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.retain(|(k, _)| k != "notice" && k != "run");
    pairs.push(("notice".into(), notice.into()));
    if let Some((k, v)) = extra {
        pairs.push((k.into(), v.into()));
    }
    see_other(&format!(
        "{path}?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    ))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    next: String,
    error: Option<String>,
}

async fn login_page(v: Visitor, uri: Uri) -> Response {
    let query = query_of(&uri);
    html(&LoginPage {
        next: session::local_path(query.get("next").map_or("/", String::as_str)).to_owned(),
        c: Chrome::new(&v, &uri, "login"),
        error: None,
    })
}

async fn login(
    v: Visitor,
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: Uri,
    axum::Form(form): axum::Form<Fields>,
) -> Response {
    let next = session::local_path(field(&form, "next")).to_owned();
    let secret = field(&form, "token").trim();
    let found = if secret.is_empty() {
        Ok(None)
    } else {
        state.tokens.by_secret(state.store.as_ref(), secret).await
    };
    match found {
        Ok(Some(_)) => {
            let mut response = see_other(&next);
            response
                .headers_mut()
                .insert(SET_COOKIE, session::session_cookie(secret, v.secure));
            response
        }
        Ok(None) => {
            let mut response = html(&LoginPage {
                c: Chrome::new(&v, &uri, "login"),
                next,
                error: Some(v.text.t("login.wrong").into_owned()),
            });
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
        Err(e) => failed(&v, &uri, &ApiError::from(e)),
    }
}

/// Signing out needs any role, and the CSRF token like every form.
#[derive(Debug)]
pub struct AsViewer;
impl Needs for AsViewer {
    const ROLE: Role = Role::Viewer;
}

async fn logout(_: Acting<AsViewer>) -> Response {
    let mut response = see_other("/login");
    response
        .headers_mut()
        .insert(SET_COOKIE, session::cleared_session());
    response
}

/// Switches the language (a cookie) and goes back: a link, so it works without JavaScript and
/// before signing in.
async fn language(axum::extract::Path(tag): axum::extract::Path<String>, uri: Uri) -> Response {
    let query = query_of(&uri);
    let back = session::local_path(query.get("back").map_or("/", String::as_str));
    let mut response = see_other(back);
    if let Some(lang) = Lang::parse(&tag) {
        response
            .headers_mut()
            .insert(SET_COOKIE, session::lang_cookie(lang));
    }
    response
}

const CSS: &str = include_str!("../../assets/app.css");
const JS: &str = include_str!("../../assets/app.js");
const ICON: &str = include_str!("../../assets/icon.svg");

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}
