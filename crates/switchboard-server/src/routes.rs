//! The HTTP routes: one dispatch over the path, JSON answers for everything but the demo.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Serialize;
use switchboard_backplane::Health;
use switchboard_backplane::{Backplane as _, HealthState};
use switchboard_hub::Hub;
use switchboard_metrics::Metrics;
use switchboard_transport::{ResponseBody, Transport};
use tokio::sync::watch;

use crate::config::ServerConfig;

use crate::timestamp::iso8601_now;
use crate::{api, assets};

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) hub: Hub,
    pub(crate) transport: Transport,
    pub(crate) metrics: Metrics,
    pub(crate) health: watch::Receiver<Health>,
    pub(crate) started: Instant,
    pub(crate) draining: AtomicBool,
}

impl AppState {
    /// Whether the server is shutting down.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed) || self.transport.is_draining()
    }
}

/// Answers one request (the transport answers `/ws` before it comes here).
pub(crate) async fn route(state: Arc<AppState>, req: Request<Incoming>) -> Response<ResponseBody> {
    let path = req.uri().path().to_owned();
    let mut response = match path.as_str() {
        "/health" => allow_get(&req).unwrap_or_else(|| health(&state)),
        "/ready" => allow_get(&req).unwrap_or_else(|| ready(&state)),
        "/metrics" => allow_get(&req).unwrap_or_else(|| metrics_json(&state)),
        "/metrics/prometheus" => allow_get(&req).unwrap_or_else(|| metrics_openmetrics(&state)),
        "/" => {
            allow_get(&req).unwrap_or_else(|| asset(assets::DEMO_HTML, "text/html; charset=utf-8"))
        }
        "/client.js" => allow_get(&req)
            .unwrap_or_else(|| asset(assets::CLIENT_JS, "text/javascript; charset=utf-8")),
        p if p == "/api" || p.starts_with("/api/") => api::handle(&state, req, &path).await,
        _ => not_found(),
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `None` for GET and HEAD, else the 405.
fn allow_get<B>(req: &Request<B>) -> Option<Response<ResponseBody>> {
    (req.method() != Method::GET && req.method() != Method::HEAD)
        .then(|| method_not_allowed("GET, HEAD"))
}

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

pub(crate) fn not_found() -> Response<ResponseBody> {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

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

fn asset(body: &'static str, content_type: &'static str) -> Response<ResponseBody> {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a response with static headers is valid")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthBody<'a> {
    status: &'static str,
    timestamp: String,
    websocket: &'static str,
    connections: usize,
    backplane: BackplaneBody<'a>,
    uptime_seconds: u64,
}

#[derive(Serialize)]
struct BackplaneBody<'a> {
    kind: &'static str,
    state: &'static str,
    detail: &'a str,
}

fn health(state: &AppState) -> Response<ResponseBody> {
    let health = state.health.borrow().clone();
    json_value(
        StatusCode::OK,
        &HealthBody {
            status: if health.state == HealthState::Up {
                "ok"
            } else {
                "degraded"
            },
            timestamp: iso8601_now(),
            websocket: "enabled",
            connections: state.transport.connection_count(),
            backplane: BackplaneBody {
                kind: state.hub.backplane().kind(),
                state: health.state.as_str(),
                detail: &health.detail,
            },
            uptime_seconds: state.started.elapsed().as_secs(),
        },
    )
}

fn ready(state: &AppState) -> Response<ResponseBody> {
    if state.is_draining() {
        return json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "draining" }),
        );
    }
    let health = state.health.borrow().clone();
    if health.state == HealthState::Up {
        json_value(StatusCode::OK, &serde_json::json!({ "status": "ready" }))
    } else {
        json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "degraded", "detail": health.detail }),
        )
    }
}

fn metrics_json(state: &AppState) -> Response<ResponseBody> {
    json_value(StatusCode::OK, &state.metrics.snapshot())
}

fn metrics_openmetrics(state: &AppState) -> Response<ResponseBody> {
    match state.metrics.encode_openmetrics() {
        Ok(text) => Response::builder()
            .header(
                header::CONTENT_TYPE,
                switchboard_metrics::OPENMETRICS_CONTENT_TYPE,
            )
            .header(header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::from(text)))
            .expect("a response with static headers is valid"),
        Err(err) => {
            tracing::error!(%err, "encoding the metrics failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "metrics could not be encoded",
            )
        }
    }
}
