//! The API's JSON answers. axum's `Json` serialises into a `BytesMut` grown from 128 bytes, one
//! small slice at a time (every key, quote and comma); serde_json writes into a `Vec` much faster.
//! A page of 50 runs (22 KB) spent a sixth of its CPU in those slices and their copies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A value answered as JSON.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// What most answers fit in without growing.
const START: usize = 4096;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(START);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "an answer could not be written as JSON");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the answer could not be written as JSON; the server's log says why",
                )
                    .into_response()
            }
        }
    }
}
