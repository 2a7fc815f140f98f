//! The API's operations on users and channels across the cluster: disconnect, subscribe
//! and unsubscribe a user's connections on every instance, list the channels in use and a
//! channel's occupancy. Each answer counts every instance and says with `"complete"`
//! whether every instance answered within the survey timeout (Centrifugo's `disconnect`,
//! `subscribe`, `unsubscribe`, `channels` and Pusher's channel `occupied`/`subscription_count`).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use switchboard_hub::{ClusterAnswer, HubError};
use switchboard_protocol::{ChannelName, CloseCode, StreamPosition};
use switchboard_transport::ResponseBody;

use super::request::{path_segment, query_value, read_body};
use crate::respond::{error, json_value, unavailable};
use crate::state::AppState;

/// The longest user id the API takes (ids are the token's `sub`).
const MAX_USER_BYTES: usize = 255;

/// What a user route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserAction {
    Disconnect,
    Subscribe,
    Unsubscribe,
}

impl UserAction {
    pub(super) fn from_path(action: &str) -> Option<Self> {
        match action {
            "disconnect" => Some(Self::Disconnect),
            "subscribe" => Some(Self::Subscribe),
            "unsubscribe" => Some(Self::Unsubscribe),
            _ => None,
        }
    }
}

/// A percent-encoded user id from the path, decoded; the error is the message of the 400.
pub(super) fn user_of(encoded: &str) -> Result<String, String> {
    let user = path_segment(encoded)
        .ok_or_else(|| "the user id is not valid percent-encoded UTF-8".to_owned())?;
    if user.is_empty() || user.len() > MAX_USER_BYTES {
        return Err(format!("the user id must be 1 to {MAX_USER_BYTES} bytes"));
    }
    Ok(user)
}

/// A JSON body, where an empty one stands for `{}`; the error is the answer.
async fn body_of<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<T, Response<ResponseBody>> {
    let body = read_body(state, req).await?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    serde_json::from_slice(&body)
        .map_err(|err| error(StatusCode::BAD_REQUEST, "bad_request", &err.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    code: Option<u16>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    channel: ChannelName,
    since: Option<StreamPosition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeBody {
    channel: ChannelName,
}

/// `{"<field>": N, "complete": bool}`.
fn counted(field: &str, answer: &ClusterAnswer<usize>) -> Response<ResponseBody> {
    let mut body = serde_json::Map::new();
    body.insert(field.to_owned(), answer.value.into());
    body.insert("complete".to_owned(), answer.complete.into());
    json_value(StatusCode::OK, &body)
}

/// `POST /api/users/{user}/disconnect|subscribe|unsubscribe`.
pub(super) async fn user(
    state: &AppState,
    req: Request<Incoming>,
    user: &str,
    action: UserAction,
) -> Response<ResponseBody> {
    match action {
        UserAction::Disconnect => {
            let body: DisconnectBody = match body_of(state, req).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let code = body.code.unwrap_or(CloseCode::Disconnected.code());
            let reason = body
                .reason
                .unwrap_or_else(|| CloseCode::Disconnected.reason().to_owned());
            // The hub checks the close it will have the transport send, once for every caller.
            match state.hub.disconnect_user(user, code, &reason).await {
                Ok(answer) => counted("disconnected", &answer),
                Err(HubError::InvalidClose) => error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "`code` must be in 4000-4999 and `reason` at most 123 bytes",
                ),
                Err(err) => unavailable(&err),
            }
        }
        UserAction::Subscribe => {
            let body: SubscribeBody = match body_of(state, req).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            match state
                .hub
                .subscribe_user(user, &body.channel, body.since)
                .await
            {
                Ok(answer) => counted("subscribed", &answer),
                Err(err) => unavailable(&err),
            }
        }
        UserAction::Unsubscribe => {
            let body: UnsubscribeBody = match body_of(state, req).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            match state.hub.unsubscribe_user(user, &body.channel).await {
                Ok(answer) => counted("unsubscribed", &answer),
                Err(err) => unavailable(&err),
            }
        }
    }
}

/// `GET /api/channels?prefix=…`: `{"channels": [{"channel", "connections"}], "complete"}`,
/// sorted by name, every channel with at least one subscriber on some instance.
pub(super) async fn channels(state: &AppState, query: &str) -> Response<ResponseBody> {
    let mut prefix = String::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "prefix" {
            match query_value(value) {
                Some(value) => prefix = value,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "`prefix` is not valid percent-encoded UTF-8",
                    );
                }
            }
        }
    }
    match state.hub.channels(&prefix).await {
        Ok(answer) => {
            let channels: Vec<_> = answer
                .value
                .iter()
                .map(|c| serde_json::json!({ "channel": c.channel, "connections": c.connections }))
                .collect();
            json_value(
                StatusCode::OK,
                &serde_json::json!({ "channels": channels, "complete": answer.complete }),
            )
        }
        Err(err) => unavailable(&err),
    }
}

/// `GET /api/channels/{channel}/occupancy`: `{"channel", "connections", "users",
/// "complete"}` across the cluster.
pub(super) async fn occupancy(state: &AppState, channel: &ChannelName) -> Response<ResponseBody> {
    match state.hub.occupancy(channel).await {
        Ok(answer) => json_value(
            StatusCode::OK,
            &serde_json::json!({
                "channel": channel.as_str(),
                "connections": answer.value.connections,
                "users": answer.value.users,
                "complete": answer.complete,
            }),
        ),
        Err(err) => unavailable(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_decode_and_are_bounded() {
        assert_eq!(
            user_of("ada%40example.com").as_deref(),
            Ok("ada@example.com")
        );
        assert!(user_of("").is_err());
        assert!(user_of(&"u".repeat(256)).is_err());
        assert!(user_of("%ff").is_err());
        assert_eq!(
            UserAction::from_path("disconnect"),
            Some(UserAction::Disconnect)
        );
        assert_eq!(UserAction::from_path("kick"), None);
    }
}
