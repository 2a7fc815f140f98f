//! One connection attempt: TCP, TLS, the WebSocket upgrade and the `welcome` frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use switchboard_protocol::{ServerFrame, Welcome};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::DisconnectReason;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A function that fetches a token: on every connection attempt, and before the token in use
/// expires (see [`ClientBuilder::token_source`](crate::ClientBuilder::token_source)).
pub(crate) type TokenSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync>;

/// Where connections get their token. Its `Debug` never shows a token.
#[derive(Clone, Default)]
pub(crate) enum Token {
    /// Open mode.
    #[default]
    None,
    /// The same token every time.
    Fixed(String),
    /// Fetched for every attempt, and refreshed on the connection before it expires.
    Source(TokenSource),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Fixed(_) => "[redacted]",
            Self::Source(_) => "source",
        })
    }
}

impl Token {
    /// The token for the next attempt (`None` when there is none, or the source had none).
    pub(crate) async fn fetch(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Fixed(token) => Some(token.clone()),
            Self::Source(source) => source().await,
        }
    }

    /// The source, if tokens are refreshed.
    pub(crate) fn source(&self) -> Option<&TokenSource> {
        match self {
            Self::Source(source) => Some(source),
            _ => None,
        }
    }
}

/// What every attempt needs, fixed at build time.
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) token: Token,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_message_bytes: usize,
    pub(crate) connector: Connector,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("token", &self.token)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// Fetches the token, connects and reads the `welcome` frame, all within the connect
/// timeout.
pub(crate) async fn connect(endpoint: &Endpoint) -> Result<(Ws, Welcome), DisconnectReason> {
    tokio::time::timeout(endpoint.connect_timeout, async {
        let token = endpoint.token.fetch().await;
        attempt(endpoint, token.as_deref()).await
    })
    .await
    .unwrap_or(Err(DisconnectReason::ConnectTimeout))
}

async fn attempt(
    endpoint: &Endpoint,
    token: Option<&str>,
) -> Result<(Ws, Welcome), DisconnectReason> {
    let mut request = endpoint.url.as_str().into_client_request().map_err(|e| {
        DisconnectReason::ConnectFailed {
            message: e.to_string(),
        }
    })?;
    if let Some(token) = token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            DisconnectReason::ConnectFailed {
                message: "the token is not a valid header value".into(),
            }
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert("authorization", value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(endpoint.max_message_bytes))
        .max_frame_size(Some(endpoint.max_message_bytes));
    #[cfg(feature = "tls")]
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        true,
        Some(endpoint.connector.clone()),
    );
    #[cfg(not(feature = "tls"))]
    let connecting = {
        // Without TLS support `build` only accepts ws:// URLs.
        debug_assert!(matches!(endpoint.connector, Connector::Plain));
        tokio_tungstenite::connect_async_with_config(request, Some(config), true)
    };
    let (mut ws, _) = connecting.await.map_err(rejection)?;

    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return match ServerFrame::decode(text.as_str()) {
                    Ok(ServerFrame::Welcome(welcome)) => Ok((ws, welcome)),
                    _ => Err(DisconnectReason::Protocol {
                        message: "the first frame was not `welcome`".into(),
                    }),
                };
            }
            Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(lost(&err)),
            None => {
                return Err(DisconnectReason::ConnectionLost {
                    message: "closed before `welcome`".into(),
                });
            }
        }
    }
}

fn rejection(err: WsError) -> DisconnectReason {
    match err {
        WsError::Http(response) => {
            let error = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            DisconnectReason::Rejected {
                status: response.status().as_u16(),
                error,
                retry_after,
            }
        }
        other => DisconnectReason::ConnectFailed {
            message: other.to_string(),
        },
    }
}

pub(crate) fn closed(
    frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
) -> DisconnectReason {
    match frame {
        Some(frame) => DisconnectReason::Closed {
            code: u16::from(frame.code),
            reason: frame.reason.to_string(),
        },
        None => DisconnectReason::Closed {
            code: 1005,
            reason: String::new(),
        },
    }
}

pub(crate) fn lost(err: &WsError) -> DisconnectReason {
    DisconnectReason::ConnectionLost {
        message: err.to_string(),
    }
}
