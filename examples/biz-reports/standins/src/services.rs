//! The outside services: the Evolution API's `sendText` and a Slack incoming webhook, answering
//! as the real ones do for what the example uses, and keeping what they receive.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::{Inbox, Message};

/// Numbers that end so are not on WhatsApp: Evolution answers them `exists: false`.
pub const NOT_ON_WHATSAPP: &str = "0000000";

#[derive(Debug, Deserialize)]
struct SendText {
    number: String,
    text: String,
}

/// `POST /message/sendText/{instance}` with the `apikey` header; `GET /messages`.
pub fn evolution(inbox: Inbox, key: String) -> Router {
    let messages = inbox.clone();
    Router::new()
        .route(
            "/message/sendText/{instance}",
            post(
                move |Path(instance): Path<String>,
                      headers: HeaderMap,
                      body: Result<Json<SendText>, axum::extract::rejection::JsonRejection>| {
                    send_text(inbox, key, instance, headers, body)
                },
            ),
        )
        .route("/messages", get(move || listed(messages, "whatsapp")))
}

async fn send_text(
    inbox: Inbox,
    key: String,
    instance: String,
    headers: HeaderMap,
    body: Result<Json<SendText>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if headers.get("apikey").and_then(|v| v.to_str().ok()) != Some(key.as_str()) {
        let body = json!({"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let Ok(Json(send)) = body else {
        let body = json!({"status": 400, "error": "Bad Request", "response": {"message": ["number and text are required"]}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let jid = format!("{}@s.whatsapp.net", send.number);
    if send.number.ends_with(NOT_ON_WHATSAPP) {
        let body = json!({"status": 400, "error": "Bad Request", "response": {"message": [
            {"exists": false, "jid": jid, "number": send.number}
        ]}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let id = format!("BAE5{:012X}", inbox.all().len() + 1);
    inbox.push(Message {
        service: "whatsapp",
        to: send.number,
        text: send.text.clone(),
    });
    let body = json!({
        "key": {"remoteJid": jid, "fromMe": true, "id": id},
        "message": {"conversation": send.text},
        "instance": instance,
        "status": "PENDING",
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
struct Incoming {
    text: String,
}

/// `POST /services/…` (any incoming webhook's path); `GET /messages`.
pub fn slack(inbox: Inbox) -> Router {
    let messages = inbox.clone();
    Router::new()
        .route(
            "/services/{*path}",
            post(
                move |Path(path): Path<String>,
                      body: Result<Json<Incoming>, axum::extract::rejection::JsonRejection>| {
                    async move {
                        let Ok(Json(incoming)) = body else {
                            return (StatusCode::BAD_REQUEST, "invalid_payload");
                        };
                        inbox.push(Message {
                            service: "slack",
                            to: path,
                            text: incoming.text,
                        });
                        (StatusCode::OK, "ok")
                    }
                },
            ),
        )
        .route("/messages", get(move || listed(messages, "slack")))
}

async fn listed(inbox: Inbox, service: &'static str) -> Json<Vec<Message>> {
    Json(
        inbox
            .all()
            .into_iter()
            .filter(|m| m.service == service)
            .collect(),
    )
}
