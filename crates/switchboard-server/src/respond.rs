//! The server's HTTP answers: JSON bodies, and errors shaped as the transport's rejections.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use switchboard_transport::ResponseBody;

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(body.into()))
        .expect("a response with static headers is valid")
}

/// A JSON answer from a serializable value.
pub(crate) fn json_value<T: Serialize>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    json(
        status,
        serde_json::to_vec(value).expect("response bodies always serialize"),
    )
}

/// An error answer: `{"error": code, "message": …}`, as the transport's rejections.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<ResponseBody> {
    json_value(
        status,
        &serde_json::json!({ "error": code, "message": message }),
    )
}

/// 404 `not_found`.
pub(crate) fn not_found() -> Response<ResponseBody> {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// 405 `method_not_allowed`, with the `Allow` header listing `allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("allowed: {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The answer to an API call the backplane could not serve: 503 `unavailable`.
pub(crate) fn unavailable(err: &switchboard_hub::HubError) -> Response<ResponseBody> {
    tracing::warn!(%err, "HTTP API call failed in the backplane");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the backplane is unavailable; retry later",
    )
}
