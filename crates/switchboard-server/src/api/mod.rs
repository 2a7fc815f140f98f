//! The HTTP API for backends, behind `PUBLISH_API_KEY`: publish and broadcast, presence and
//! history, and the cluster-wide user and channel operations of [`control`].

mod control;
mod request;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use switchboard_hub::ServerMessage;
use switchboard_protocol::{ChannelName, ClientFrame, DecodeLimits, Publish};
use switchboard_transport::ResponseBody;

use request::{path_segment, query_value, read_body};

use crate::respond::{error, json, json_value, method_not_allowed, not_found, unavailable};
use crate::state::AppState;

/// Answers a request under `/api/`. Every route answers 404 while no API key is configured,
/// so a server without one does not even reveal the API.
pub(crate) async fn handle(
    state: &AppState,
    req: Request<Incoming>,
    path: &str,
) -> Response<ResponseBody> {
    let Some(key) = &state.config.publish_api_key else {
        return not_found();
    };
    let route = match path {
        "/api/publish" => Route::Publish,
        "/api/broadcast" => Route::Broadcast,
        "/api/channels" => Route::Channels,
        _ => {
            if let Some(rest) = path.strip_prefix("/api/users/") {
                match rest.rsplit_once('/').and_then(|(user, action)| {
                    Some((user, control::UserAction::from_path(action)?))
                }) {
                    Some((user, action)) => Route::User(user, action),
                    None => return not_found(),
                }
            } else {
                match path
                    .strip_prefix("/api/channels/")
                    .and_then(|rest| rest.rsplit_once('/'))
                {
                    Some((channel, "presence")) => Route::Presence(channel),
                    Some((channel, "history")) => Route::History(channel),
                    Some((channel, "occupancy")) => Route::Occupancy(channel),
                    _ => return not_found(),
                }
            }
        }
    };
    let expected = match route {
        Route::Publish | Route::Broadcast | Route::User(..) => Method::POST,
        Route::Presence(_) | Route::History(_) | Route::Occupancy(_) | Route::Channels => {
            Method::GET
        }
    };
    if req.method() != expected {
        return method_not_allowed(if expected == Method::POST {
            "POST"
        } else {
            "GET"
        });
    }
    if let Err(message) = authorize(&req, key.expose()) {
        let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let channel = match route {
        Route::Publish => return publish(state, req).await,
        Route::Broadcast => return broadcast(state, req).await,
        Route::Channels => {
            return control::channels(state, req.uri().query().unwrap_or("")).await;
        }
        Route::User(user, action) => {
            return match control::user_of(user) {
                Ok(user) => control::user(state, req, &user, action).await,
                Err(message) => error(StatusCode::BAD_REQUEST, "bad_request", &message),
            };
        }
        Route::Presence(channel) | Route::History(channel) | Route::Occupancy(channel) => {
            match channel_of(channel) {
                Ok(channel) => channel,
                Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", &message),
            }
        }
    };
    match route {
        Route::History(_) => history(state, &channel, req.uri().query().unwrap_or("")).await,
        Route::Occupancy(_) => control::occupancy(state, &channel).await,
        _ => presence(state, &channel).await,
    }
}

enum Route<'a> {
    Publish,
    Broadcast,
    Channels,
    Presence(&'a str),
    History(&'a str),
    Occupancy(&'a str),
    User(&'a str, control::UserAction),
}

/// Checks `Authorization: Bearer <key>` in constant time; the error is the message of the
/// 401.
fn authorize<B>(req: &Request<B>, key: &str) -> Result<(), &'static str> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        None => Err("missing API key: send Authorization: Bearer <PUBLISH_API_KEY>"),
        Some(token) if bool::from(token.as_bytes().ct_eq(key.as_bytes())) => Ok(()),
        Some(_) => Err("invalid API key"),
    }
}

/// A percent-encoded channel from the path, decoded and validated; the error is the message
/// of the 400.
fn channel_of(encoded: &str) -> Result<ChannelName, String> {
    let decoded = path_segment(encoded)
        .ok_or_else(|| "the channel is not valid percent-encoded UTF-8".to_owned())?;
    ChannelName::new(&decoded).map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct Published<'a> {
    channel: &'a str,
    id: &'a str,
    offset: u64,
    duplicate: bool,
}

async fn publish(state: &AppState, req: Request<Incoming>) -> Response<ResponseBody> {
    let body = match read_body(state, req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // The body is the publish frame of the protocol, parsed as JSON whatever its
    // Content-Type, with the protocol's validation.
    let (publish, exclude) = match api_publish(&body) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", &message),
    };
    let channel = publish.channel.clone();
    let mut message = ServerMessage::new(publish.channel, publish.event, publish.payload)
        .with_priority(publish.priority)
        .excluding(exclude);
    if let Some(id) = publish.id {
        message = message.with_id(id);
    }
    match state.hub.publish(message).await {
        Ok(receipt) => json_value(
            StatusCode::OK,
            &Published {
                channel: channel.as_str(),
                id: &receipt.id,
                offset: receipt.offset,
                duplicate: receipt.duplicate,
            },
        ),
        Err(err) => unavailable(&err),
    }
}

/// A publish frame sent to the API, with what only the API takes beside it: `exclude`, at
/// most 64 connection ids (`excludeSelf` names the publishing connection, which the API has
/// not). The error is the message of the 400.
fn api_publish(body: &[u8]) -> Result<(Publish, Vec<String>), String> {
    let publish = match ClientFrame::decode_bytes(body, DecodeLimits::default()) {
        Ok(ClientFrame::Publish(publish)) => publish,
        Ok(_) => {
            return Err(
                "`type` must be an application event type, not a system frame type".to_owned(),
            );
        }
        Err(err) => return Err(err.message().to_owned()),
    };
    if publish.exclude_self {
        return Err(
            "`excludeSelf` names the publishing connection, and the API has none: use `exclude`"
                .to_owned(),
        );
    }
    #[derive(serde::Deserialize)]
    struct ApiFields {
        #[serde(default)]
        exclude: Option<Vec<String>>,
    }
    let exclude = serde_json::from_slice::<ApiFields>(body)
        .map_err(|_| "`exclude` must be an array of connection ids".to_owned())?
        .exclude
        .unwrap_or_default();
    if exclude.len() > 64 || exclude.iter().any(|id| id.len() > 255) {
        return Err("`exclude` takes at most 64 connection ids".to_owned());
    }
    Ok((publish, exclude))
}

/// The most channels one broadcast may name.
const MAX_BROADCAST_CHANNELS: usize = 1000;

/// `POST /api/broadcast` `{"channels": [...], "type", "payload", "id"?, "priority"?,
/// "exclude"?}`: one independent publish per channel, as `POST /api/publish` would make
/// each (the same validation; an `id` deduplicates per channel), concurrently. Answers
/// `{"results": [...]}` in the order of `channels`: `{"channel", "id", "offset",
/// "duplicate"}` for a publish, `{"channel", "error", "message"}` for a channel that failed
/// (an invalid name: `bad_request`; the backplane: `unavailable`). Centrifugo's `broadcast`.
async fn broadcast(state: &AppState, req: Request<Incoming>) -> Response<ResponseBody> {
    let body = match read_body(state, req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    #[derive(serde::Deserialize)]
    struct Channels {
        channels: Vec<String>,
    }
    let Ok(Channels { channels }) = serde_json::from_slice::<Channels>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "`channels` must be an array of channel names",
        );
    };
    if channels.is_empty() || channels.len() > MAX_BROADCAST_CHANNELS {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("`channels` names 1 to {MAX_BROADCAST_CHANNELS} channels"),
        );
    }
    // The rest is a publish frame: validated as one, once, with a placeholder channel. The
    // fields are kept as the text that arrived, so the payload is delivered byte for byte
    // as `/api/publish` would (no number rewritten by a round trip through a JSON tree).
    let Ok(mut fields) = serde_json::from_slice::<
        std::collections::BTreeMap<String, &serde_json::value::RawValue>,
    >(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be a JSON object",
        );
    };
    fields.remove("channels");
    fields.remove("channel");
    let mut frame = String::with_capacity(body.len());
    frame.push_str(r#"{"channel":"broadcast""#);
    for (name, value) in &fields {
        frame.push(',');
        frame.push_str(&serde_json::Value::from(name.as_str()).to_string());
        frame.push(':');
        frame.push_str(value.get());
    }
    frame.push('}');
    let (publish, exclude) = match api_publish(frame.as_bytes()) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", &message),
    };
    let results = futures_util::future::join_all(channels.iter().map(|name| {
        let publish = &publish;
        let exclude = &exclude;
        async move {
            let channel = match ChannelName::new(name) {
                Ok(channel) => channel,
                Err(err) => {
                    return serde_json::json!({
                        "channel": name, "error": "bad_request", "message": err.to_string(),
                    });
                }
            };
            let mut message =
                ServerMessage::new(channel, publish.event.clone(), publish.payload.clone())
                    .with_priority(publish.priority)
                    .excluding(exclude.iter().cloned());
            if let Some(id) = &publish.id {
                message = message.with_id(id.clone());
            }
            match state.hub.publish(message).await {
                Ok(receipt) => serde_json::json!({
                    "channel": name,
                    "id": receipt.id,
                    "offset": receipt.offset,
                    "duplicate": receipt.duplicate,
                }),
                Err(err) => {
                    tracing::warn!(channel = %name, %err, "a broadcast publish failed in the backplane");
                    serde_json::json!({
                        "channel": name,
                        "error": "unavailable",
                        "message": "the backplane is unavailable; retry later",
                    })
                }
            }
        }
    }))
    .await;
    json_value(StatusCode::OK, &serde_json::json!({ "results": results }))
}

async fn presence(state: &AppState, channel: &ChannelName) -> Response<ResponseBody> {
    match state.hub.presence(channel).await {
        Ok(members) => json_value(
            StatusCode::OK,
            &serde_json::json!({ "channel": channel.as_str(), "members": members }),
        ),
        Err(err @ switchboard_hub::HubError::PresenceOff(_)) => {
            error(StatusCode::BAD_REQUEST, "unsupported", &err.to_string())
        }
        Err(err) => unavailable(&err),
    }
}

#[derive(Serialize)]
struct HistoryHead<'a> {
    channel: &'a str,
    offset: u64,
    epoch: &'a str,
    recovered: bool,
}

async fn history(state: &AppState, channel: &ChannelName, query: &str) -> Response<ResponseBody> {
    let mut since = 0;
    let mut epoch = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = query_value(value) else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("`{name}` is not valid percent-encoded UTF-8"),
            );
        };
        match name {
            "since" => match value.parse() {
                Ok(offset) => since = offset,
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "`since` must be an offset (a whole number)",
                    );
                }
            },
            "epoch" => epoch = Some(value),
            _ => {}
        }
    }
    // Without an epoch, the channel's current one: "what is after `since` now".
    let epoch = match epoch {
        Some(epoch) => epoch,
        None => match state.hub.position(channel).await {
            Ok(position) => position.epoch.as_str().to_owned(),
            Err(err) => return unavailable(&err),
        },
    };
    let history = match state.hub.history(channel, since, &epoch).await {
        Ok(history) => history,
        Err(err) => return unavailable(&err),
    };
    let head = HistoryHead {
        channel: channel.as_str(),
        offset: history.position.offset,
        epoch: history.position.epoch.as_str(),
        recovered: history.messages.is_some(),
    };
    let messages = history.messages.unwrap_or_default();
    // The messages are already-encoded frames: splice them in, never re-parse them.
    let mut body = serde_json::to_vec(&head).expect("the head always serializes");
    body.pop(); // the head's closing brace
    body.extend_from_slice(br#","messages":["#);
    for (i, frame) in messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(frame.as_bytes());
    }
    body.extend_from_slice(b"]}");
    json(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_is_accepted() {
        let with = |value: &str| {
            Request::post("/api/publish")
                .header(header::AUTHORIZATION, value)
                .body(())
                .unwrap()
        };
        assert_eq!(authorize(&with("Bearer secret"), "secret"), Ok(()));
        assert_eq!(authorize(&with("bearer  secret "), "secret"), Ok(()));
        for wrong in [
            "Bearer secreT",
            "Bearer secret2",
            "Bearer secre",
            "Bearer x",
        ] {
            assert_eq!(
                authorize(&with(wrong), "secret"),
                Err("invalid API key"),
                "{wrong}"
            );
        }
        assert!(authorize(&with("Basic secret"), "secret").is_err());
        let none = Request::post("/api/publish").body(()).unwrap();
        assert!(
            authorize(&none, "secret")
                .unwrap_err()
                .starts_with("missing API key")
        );
    }

    #[test]
    fn paths_and_query_values_decode_as_urls_do() {
        assert_eq!(
            path_segment("ops%3Aincidents").as_deref(),
            Some("ops:incidents")
        );
        assert_eq!(path_segment("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(path_segment("a+b").as_deref(), Some("a+b"));
        assert_eq!(query_value("a+b%2Bc").as_deref(), Some("a b+c"));
        // A malformed escape stays as written; bytes that are not UTF-8 are refused.
        assert_eq!(path_segment("bad%2").as_deref(), Some("bad%2"));
        assert_eq!(path_segment("bad%zz").as_deref(), Some("bad%zz"));
        assert_eq!(path_segment("%ff"), None);
        assert!(channel_of("bad%2").is_err());
        assert!(channel_of("%ff").is_err());
    }
}
