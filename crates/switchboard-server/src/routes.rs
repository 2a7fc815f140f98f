//! The HTTP routes: one dispatch over the path, JSON answers for everything but the demo.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Serialize;
use switchboard_backplane::{Backplane as _, HealthState};
use switchboard_transport::ResponseBody;

use crate::respond::{error, json_value, method_not_allowed, not_found};
use crate::state::AppState;
use crate::timestamp::iso8601_now;
use crate::{api, assets};

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
