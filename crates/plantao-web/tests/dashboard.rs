//! The dashboard over real HTTP, as a browser without JavaScript uses it: sign in, read every
//! page in both languages, post forms with and without the right role, CSRF token and origin.

#![allow(clippy::unwrap_used)]

mod common;

use common::{SECRET, Server, backends};
use plantao_model::{Role, RunStatus};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

/// A browser of sorts: no redirects followed, cookies passed by hand.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: String,
    lang: &'static str,
}

/// What a page answered.
struct Page {
    status: StatusCode,
    body: String,
    location: Option<String>,
    set_cookie: Vec<String>,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookie: String::new(),
            lang: "en-US,en;q=0.9",
        }
    }

    async fn answer(response: reqwest::Response) -> Page {
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Page {
            status,
            body: response.text().await.unwrap(),
            location,
            set_cookie,
        }
    }

    async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header("accept-language", self.lang)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(fields);
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    /// Signs in with `token`; keeps the session cookie.
    async fn sign_in(&mut self, token: &str) -> Page {
        let page = self
            .post("/login", &[("token", token), ("next", "/")], None)
            .await;
        if let Some(c) = page
            .set_cookie
            .iter()
            .find(|c| c.starts_with("plantao_session="))
        {
            self.cookie = c.split(';').next().unwrap().to_owned();
        }
        page
    }
}

/// The CSRF token of the first form on a page.
fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    body[at..at + 32].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_strict_cookie_and_pages_need_it() {
    let server = Server::start("sqlite", "").await;
    let token = server.token("ana", Role::Operator).await;
    let mut b = Browser::new(&server);

    let page = b.get("/pipelines?status=failed").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?next=%2Fpipelines%3Fstatus%3Dfailed")
    );
    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("type=\"password\""), "{}", login.body);

    let wrong = b.sign_in("plt_not-a-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("unknown or was revoked"),
        "{}",
        wrong.body
    );
    assert!(wrong.set_cookie.is_empty());

    let right = b.sign_in(&token).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    let cookie = &right.set_cookie[0];
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Operations center"));
    assert!(home.body.contains(">ana<"), "who is signed in is shown");

    // Signing out needs the form's CSRF token, then clears the cookie.
    let out = b.post("/logout", &[("csrf", "wrong")], None).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    let out = b
        .post("/logout", &[("csrf", &csrf(&home.body))], None)
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.set_cookie[0].contains("Max-Age=0"),
        "{:?}",
        out.set_cookie
    );

    // A revoked token's session ends.
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            "/api/tokens/ana",
            Some(&server.token("root", Role::Admin).await),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_in_both_languages_light_and_without_raw_keys() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let admin = server.token("root", Role::Admin).await;
        let (_, queued) = server
            .post("/api/pipelines/quick/runs", &admin, json!({}))
            .await;
        let run: plantao_model::RunId = queued["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(server.ended(run).await, RunStatus::Succeeded);
        let (_, leaky) = server
            .post("/api/pipelines/leaky/runs", &admin, json!({}))
            .await;
        let leaky: plantao_model::RunId = leaky["id"].as_str().unwrap().parse().unwrap();
        server.ended(leaky).await;
        server.open_alert("quick-failed").await;
        let mut b = Browser::new(&server);
        b.sign_in(&admin).await;
        let pages = [
            "/".to_owned(),
            "/pipelines".to_owned(),
            "/pipelines/quick".to_owned(),
            "/pipelines/quick?status=succeeded".to_owned(),
            format!("/runs/{run}"),
            format!("/runs/{leaky}"),
            "/checks".to_owned(),
            "/alerts".to_owned(),
            "/settings".to_owned(),
        ];
        for (lang, marker) in [
            ("en-US,en;q=0.9", "Operations center"),
            ("pt-BR,pt;q=0.9", "Central de Operações"),
        ] {
            b.lang = lang;
            for path in &pages {
                let page = b.get(path).await;
                assert_eq!(
                    page.status,
                    StatusCode::OK,
                    "{backend} {path}: {}",
                    page.body
                );
                assert!(
                    !page.body.contains('⟦'),
                    "{backend} {lang} {path} shows a missing message"
                );
                assert!(
                    !page.body.contains('{'),
                    "{backend} {lang} {path} shows a placeholder left unfilled"
                );
                assert!(
                    page.body.len() < 100 * 1024,
                    "{path}: {} bytes",
                    page.body.len()
                );
                assert!(!page.body.contains(SECRET), "{path} shows the secret");
                assert!(!page.body.contains(&admin), "{path} shows the token");
            }
            let home = b.get("/").await;
            assert!(home.body.contains(marker), "{lang}");
            assert!(home.body.contains("data-pipeline=\"quick\""));
            assert!(
                home.body.contains("quick failed"),
                "the open alert is listed"
            );
            // The week chart: a title per day, bar and point.
            assert_eq!(home.body.matches("<circle").count(), 7);
        }
        // Portuguese writes numbers its own way: the 80 % load rate of `quick` reads 80,0 %.
        let pt = b.get("/pipelines/quick").await;
        assert!(pt.body.contains("Histórico de execuções"), "{}", pt.body);
        assert!(pt.body.contains("America/Sao_Paulo") || pt.body.contains("UTC"));
        let run_page = b.get(&format!("/runs/{run}")).await;
        assert!(run_page.body.contains("rows=10") || run_page.body.contains("extract"));
        assert!(run_page.body.contains("class=\"chart gantt\""));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_role_the_csrf_token_and_this_origin() {
    let server = Server::start("sqlite", "").await;
    let viewer = server.token("vera", Role::Viewer).await;
    let operator = server.token("ana", Role::Operator).await;
    let mut v = Browser::new(&server);
    v.sign_in(&viewer).await;
    let home = v.get("/").await;
    assert!(
        !home.body.contains("run-now"),
        "a viewer sees no run button"
    );
    assert!(!home.body.contains("/run\""), "nor the form");
    let refused = v
        .post(
            "/pipelines/quick/run",
            &[("csrf", &csrf(&home.body)), ("back", "/")],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("operator"), "{}", refused.body);

    let mut o = Browser::new(&server);
    o.sign_in(&operator).await;
    let home = o.get("/").await;
    assert!(home.body.contains("run-now"));
    let token = csrf(&home.body);
    let no_csrf = o.post("/pipelines/quick/run", &[("back", "/")], None).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let elsewhere = o
        .post(
            "/pipelines/quick/run",
            &[("csrf", &token), ("back", "/")],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let runs = server
        .store
        .runs(&plantao_store::RunFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(runs.is_empty(), "no refused form queued a run");

    let queued = o
        .post(
            "/pipelines/quick/run",
            &[("csrf", &token), ("back", "/"), ("param.day", "2026-12-01")],
            Some(&server.base),
        )
        .await;
    assert_eq!(queued.status, StatusCode::SEE_OTHER);
    let to = queued.location.unwrap();
    assert!(to.starts_with("/?notice=run_queued&run="), "{to}");
    let shown = o.get(&to).await;
    assert!(shown.body.contains("queued."), "{}", shown.body);
    let runs = server
        .store
        .runs(&plantao_store::RunFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].params["day"], "2026-12-01");
    assert_eq!(server.ended(runs[0].id).await, RunStatus::Succeeded);

    // A dry run shows the plan and queues nothing; a missing parameter says which.
    let plan = o
        .post(
            "/pipelines/quick/run",
            &[("csrf", &token), ("dry_run", "1"), ("skip.load", "on")],
            None,
        )
        .await;
    assert_eq!(plan.status, StatusCode::OK);
    assert!(plan.body.contains("id=\"plan\""), "{}", plan.body);
    assert!(plan.body.contains("<code>load</code>"));
    let missing = o
        .post("/pipelines/needs/run", &[("csrf", &token)], None)
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body.contains("day"), "{}", missing.body);

    // Acknowledging and dismissing an alert; a viewer cannot.
    let alert = server.open_alert("quick-failed").await;
    let refused = v
        .post(
            &format!("/alerts/{alert}/dismiss"),
            &[("csrf", &csrf(&v.get("/").await.body))],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let dismissed = o
        .post(
            &format!("/alerts/{alert}/dismiss"),
            &[("csrf", &token), ("back", "/alerts")],
            None,
        )
        .await;
    assert_eq!(dismissed.status, StatusCode::SEE_OTHER);
    let a = server.store.alert(alert).await.unwrap();
    assert!(a.dismissed);
    assert_eq!(a.acknowledged_by.as_deref(), Some("ana"));
    assert!(!o.get("/").await.body.contains("quick failed"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_read_opens_the_pages_but_not_the_forms() {
    let server = Server::start("sqlite", "public_read = true\n").await;
    let b = Browser::new(&server);
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains("run-now"));
    assert!(home.body.contains("href=\"/login\""));
    let refused = b.post("/pipelines/quick/run", &[], None).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert!(refused.location.unwrap().starts_with("/login"));
    // The language link remembers the choice in a cookie.
    let switched = b.get("/language/pt-BR?back=%2Fchecks").await;
    assert_eq!(switched.location.as_deref(), Some("/checks"));
    assert!(switched.set_cookie[0].starts_with("plantao_lang=pt-BR"));
    let mut pt = Browser::new(&server);
    pt.cookie = "plantao_lang=pt-BR".into();
    assert!(pt.get("/checks").await.body.contains("Verificações"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_thresholds_make_tokens_and_silences_operators_cancel_and_retry() {
    let server = Server::start("sqlite", "").await;
    let admin = server.token("root", Role::Admin).await;
    let mut b = Browser::new(&server);
    b.sign_in(&admin).await;
    let settings = b.get("/settings").await;
    assert!(
        settings.body.contains("quick-failure-rate"),
        "a rule with a threshold is listed"
    );
    let token = csrf(&settings.body);

    let saved = b
        .post(
            "/settings/thresholds",
            &[
                ("csrf", &token),
                ("back", "/settings"),
                ("rule.quick-failure-rate", "12,5"),
            ],
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        server.store.thresholds().await.unwrap()["quick-failure-rate"],
        12.5,
        "a Portuguese decimal comma is read"
    );
    let bad = b
        .post(
            "/settings/thresholds",
            &[("csrf", &token), ("rule.nope", "1")],
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("nope"), "{}", bad.body);

    let made = b
        .post(
            "/settings/tokens",
            &[("csrf", &token), ("name", "ci-bot"), ("role", "viewer")],
            None,
        )
        .await;
    assert_eq!(made.status, StatusCode::OK);
    let at = made.body.find("class=\"secret\">").unwrap() + "class=\"secret\">".len();
    let end = at + made.body[at..].find('<').unwrap();
    let secret = &made.body[at..end];
    assert!(secret.starts_with("plt_"), "{secret}");
    let (status, _) = server.get("/api/pipelines", secret).await;
    assert_eq!(status, StatusCode::OK, "the token shown works");
    assert!(
        !b.get("/settings").await.body.contains(secret),
        "and is shown only once"
    );
    let revoked = b
        .post(
            "/settings/tokens/ci-bot/revoke",
            &[("csrf", &token), ("back", "/settings")],
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(
        server.get("/api/pipelines", secret).await.0,
        StatusCode::UNAUTHORIZED
    );

    let silenced = b
        .post(
            "/silences",
            &[
                ("csrf", &token),
                ("back", "/alerts"),
                ("matchers", "pipeline=quick\nseverity!=info"),
                ("duration", "2h"),
                ("comment", "database maintenance"),
            ],
            None,
        )
        .await;
    assert_eq!(silenced.status, StatusCode::SEE_OTHER, "{}", silenced.body);
    let now = chrono::Utc::now();
    let silences = server.store.silences(now, 10).await.unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].matchers.len(), 2);
    let alerts = b.get("/alerts").await;
    assert!(alerts.body.contains("database maintenance"));
    let ended = b
        .post(
            &format!("/silences/{}/expire", silences[0].id),
            &[("csrf", &token), ("back", "/alerts")],
            None,
        )
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    let in_force = server.store.silences(chrono::Utc::now(), 10).await.unwrap();
    assert!(in_force.is_empty(), "ended: {in_force:?}");

    // An operator cancels a running run from its page, then retries it.
    let operator = server.token("ana", Role::Operator).await;
    let mut o = Browser::new(&server);
    o.sign_in(&operator).await;
    let (_, queued) = server
        .post("/api/pipelines/slow/runs", &operator, json!({}))
        .await;
    let id: plantao_model::RunId = queued["id"].as_str().unwrap().parse().unwrap();
    let page = loop {
        let page = o.get(&format!("/runs/{id}")).await;
        if page.body.contains("/cancel\"") {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        page.body.contains("data-refresh=\"2\""),
        "a live run refreshes every 2 s"
    );
    let asked = o
        .post(
            &format!("/runs/{id}/cancel"),
            &[
                ("csrf", &csrf(&page.body)),
                ("back", &format!("/runs/{id}")),
            ],
            None,
        )
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER);
    assert_eq!(server.ended(id).await, RunStatus::Cancelled);
    let page = o.get(&format!("/runs/{id}")).await;
    assert!(page.body.contains("/retry\""));
    let retried = o
        .post(
            &format!("/runs/{id}/retry"),
            &[("csrf", &csrf(&page.body))],
            None,
        )
        .await;
    let to = retried.location.unwrap();
    assert!(
        to.starts_with("/runs/") && !to.contains(&id.to_string()[..20]),
        "{to}"
    );
    let audit = server.store.audit(None, 50).await.unwrap();
    for action in [
        "alert_config.set",
        "token.create",
        "token.revoke",
        "run.cancel",
        "run.retry",
    ] {
        assert!(
            audit.iter().any(|a| a.entry.action == action),
            "{action} is audited"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_page_is_a_page_for_browsers_and_json_for_the_rest() {
    let server = Server::start("sqlite", "").await;
    let ask = |path: &str, accept: &str| {
        server
            .client
            .get(server.url(path))
            .header("accept", accept)
            .header("accept-language", "pt-BR,pt;q=0.9")
            .send()
    };
    let page = ask("/pipeline/typo", "text/html,application/xhtml+xml")
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("Não há página em /pipeline/typo."), "{text}");
    assert!(text.contains("Voltar à central de operações"), "{text}");
    for (path, accept) in [("/pipeline/typo", "*/*"), ("/api/typo", "text/html")] {
        let answer = ask(path, accept).await.unwrap();
        assert_eq!(answer.status(), 404);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/api/openapi.json"),
            "{body}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_show_in_the_api_and_on_the_run_page_without_the_secret() {
    for backend in backends() {
        let patterns =
            "\n[[patterns]]\nname = \"leak\"\nkeywords = [\"TOKEN=\"]\nseverity = \"critical\"\n";
        let server = Server::start(backend, patterns).await;
        let op = server.token("op", Role::Operator).await;
        let (_, queued) = server
            .post("/api/pipelines/leaky/runs", &op, json!({}))
            .await;
        let id: plantao_model::RunId = queued["id"].as_str().unwrap().parse().unwrap();
        server.ended(id).await;
        let (status, run) = server.get(&format!("/api/runs/{id}"), &op).await;
        assert_eq!(status, StatusCode::OK);
        let finding = &run["findings"][0];
        assert_eq!(finding["pattern"], "leak", "{run}");
        assert_eq!(
            (finding["step"].as_str(), finding["line"].as_u64()),
            (Some("say"), Some(1))
        );
        assert!(!run.to_string().contains(SECRET), "{run}");
        let (_, page) = server.get(&format!("/runs/{id}"), &op).await;
        let page = page.as_str().unwrap();
        assert!(page.contains("Findings in the logs"), "{page}");
        assert!(page.contains("leak · say · line 1"), "{page}");
        assert!(!page.contains(SECRET));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probes_runs_are_shown_in_the_teams_zone_not_in_utc() {
    use plantao_store::{NewRun, RunEnd, Write};
    let server = Server::start("sqlite", "[defaults]\ntimezone = \"America/Sao_Paulo\"").await;
    let viewer = server.token("v", Role::Viewer).await;
    let at = chrono::Utc::now();
    let run = NewRun::queued("site-probe", plantao_model::Trigger::Probe, at);
    let id = run.id;
    server
        .store
        .apply(vec![
            Write::InsertRun(run),
            Write::StartRun { id, at, node: None },
            Write::FinishRun(RunEnd {
                id,
                status: RunStatus::Failed,
                at,
                reason: Some("down".into()),
                error_stage: None,
                error_message: None,
            }),
        ])
        .await
        .unwrap();
    let (status, page) = server.get("/", &viewer).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    let row = page
        .find(">site-probe<")
        .expect("the probe's run is listed");
    let before = &page[row.saturating_sub(400)..row];
    let local = at
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .format("%H:%M")
        .to_string();
    assert!(before.contains(" -03"), "{before}");
    assert!(before.contains(&local), "{local} not in {before}");
    server.stop().await;
}
