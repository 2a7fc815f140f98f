//! One client connection: bind a source address, upgrade, wait for `welcome`, subscribe;
//! the frames loadgen sends and the parts of received frames it reads; failure reasons.

use std::borrow::Cow;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use super::cli::Target;

/// A client WebSocket over plain TCP.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Client buffers: small read buffers because the tool holds tens of thousands of
/// connections; publishers buffer writes so a burst of due messages costs one write.
pub(crate) fn ws_config(publisher: bool) -> WebSocketConfig {
    let (write, max_write) = if publisher {
        (64 * 1024, 16 * 1024 * 1024)
    } else {
        (0, 1024 * 1024)
    };
    WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(write)
        .max_write_buffer_size(max_write)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// The fields of a received frame loadgen looks at; everything else is ignored, because
/// servers add different envelope fields.
#[derive(Debug, Deserialize)]
pub(crate) struct Frame<'a> {
    /// The frame's `type`.
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    /// The delivered payload, for `bench` messages.
    #[serde(default)]
    pub(crate) payload: Option<BenchPayload>,
    /// The error code, for `error` frames.
    #[serde(default, borrow)]
    pub(crate) code: Option<Cow<'a, str>>,
}

/// What loadgen puts into every payload (`pad` is skipped when reading).
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct BenchPayload {
    /// Sequence number within the channel, from 0.
    pub(crate) seq: u64,
    /// Channel index (see `Config::channel_name`).
    pub(crate) c: u32,
    /// Send time, nanoseconds since the Unix epoch.
    pub(crate) t: u64,
}

/// Parses a received text frame; `None` when it is not a JSON object with a string `type`
/// (or its payload is not one of ours).
pub(crate) fn parse_frame(text: &str) -> Option<Frame<'_>> {
    serde_json::from_str(text).ok()
}

/// Reads a `bench` delivery the cheap way, for servers that forward the payload verbatim
/// (key order `seq`, `c`, `t`, no whitespace); `None` when the text does not look like that,
/// and the caller falls back to [`parse_frame`]. A full JSON parse was a third of the
/// tool's CPU per delivery.
pub(crate) fn parse_delivery_fast(text: &str) -> Option<BenchPayload> {
    const KIND: &[u8] = br#""type":"bench""#;
    const SEQ: &[u8] = br#""payload":{"seq":"#;
    let bytes = text.as_bytes();
    if !bytes[1.min(bytes.len())..].starts_with(KIND) && find(bytes, KIND).is_none() {
        return None;
    }
    let rest = &bytes[find(bytes, SEQ)? + SEQ.len()..];
    let (seq, rest) = leading_u64(rest)?;
    let (c, rest) = leading_u64(rest.strip_prefix(br#","c":"#)?)?;
    let (t, rest) = leading_u64(rest.strip_prefix(br#","t":"#)?)?;
    if !matches!(rest.first(), Some(b',' | b'}')) {
        return None;
    }
    Some(BenchPayload {
        seq,
        c: u32::try_from(c).ok()?,
        t,
    })
}

/// Position of `needle` (non-empty) in `hay`: candidates are the places its first byte
/// occurs, which is cheaper than setting up a general substring searcher per frame.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(offset) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + offset;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The unsigned decimal integer at the start of `s` (at most 19 digits, so it cannot
/// overflow), and what follows it.
fn leading_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = s[..digits]
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Some((value, &s[digits..]))
}

/// A publish of a `bench` message: `{"type":"bench","channel":…,"payload":{…}}`.
pub(crate) fn bench_frame(channel: &str, seq: u64, c: u32, t: u64, pad: &str) -> String {
    format!(
        r#"{{"type":"bench","channel":"{channel}","payload":{{"seq":{seq},"c":{c},"t":{t},"pad":"{pad}"}}}}"#
    )
}

/// Opens a connection from `source` to `target`, waits for `welcome` and subscribes to
/// `channels` (waiting for each `subscribed`).
///
/// # Errors
///
/// A short failure reason for the report (`refused`, `http_503`, `subscribe_forbidden`…).
pub(crate) async fn open(
    target: &Target,
    source: Ipv4Addr,
    channels: &[String],
    config: WebSocketConfig,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| io_reason(&e))?;
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .map_err(|e| io_reason(&e))?;
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| io_reason(&e))?;
    // Small frames must leave at once; the default (Nagle) would add delay to latency.
    stream.set_nodelay(true).map_err(|e| io_reason(&e))?;
    let (mut ws, _response) = client_async_with_config(target.url.as_str(), stream, Some(config))
        .await
        .map_err(|e| ws_reason(&e))?;
    let first = next_text(&mut ws).await?;
    match parse_frame(&first) {
        Some(f) if f.kind == "welcome" => {}
        _ => return Err("no_welcome".to_owned()),
    }
    for (i, channel) in channels.iter().enumerate() {
        let frame = format!(
            r#"{{"type":"subscribe","channel":"{channel}","id":"s{}"}}"#,
            i + 1
        );
        ws.feed(Message::text(frame))
            .await
            .map_err(|e| ws_reason(&e))?;
    }
    ws.flush().await.map_err(|e| ws_reason(&e))?;
    let mut pending = channels.len();
    while pending > 0 {
        let text = next_text(&mut ws).await?;
        match parse_frame(&text) {
            Some(f) if f.kind == "subscribed" => pending -= 1,
            Some(f) if f.kind == "error" => {
                return Err(format!(
                    "subscribe_{}",
                    f.code.as_deref().unwrap_or("error")
                ));
            }
            _ => {}
        }
    }
    Ok(ws)
}

/// The next text frame during setup.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(f) => format!("closed_{}", u16::from(f.code)),
                    None => "closed".to_owned(),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ws_reason(&e)),
            None => return Err("eof".to_owned()),
        }
    }
}

/// A short, stable name for an I/O failure.
pub(crate) fn io_reason(e: &io::Error) -> String {
    // EMFILE / ENFILE: out of file descriptors.
    if matches!(e.raw_os_error(), Some(23 | 24)) {
        return "too_many_open_files".to_owned();
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_owned(),
        io::ErrorKind::ConnectionReset => "reset".to_owned(),
        io::ErrorKind::ConnectionAborted => "aborted".to_owned(),
        io::ErrorKind::AddrNotAvailable => "addr_not_available".to_owned(),
        io::ErrorKind::AddrInUse => "addr_in_use".to_owned(),
        io::ErrorKind::TimedOut => "timeout".to_owned(),
        io::ErrorKind::BrokenPipe => "broken_pipe".to_owned(),
        io::ErrorKind::UnexpectedEof => "eof".to_owned(),
        kind => format!("io_{kind:?}").to_lowercase(),
    }
}

/// A short, stable name for a WebSocket failure (`http_429` for a refused upgrade).
pub(crate) fn ws_reason(e: &WsError) -> String {
    match e {
        WsError::Io(io) => io_reason(io),
        WsError::Http(response) => format!("http_{}", response.status().as_u16()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".to_owned(),
        WsError::Capacity(_) => "frame_too_large".to_owned(),
        WsError::Protocol(_) => "protocol_error".to_owned(),
        WsError::Utf8(_) => "invalid_utf8".to_owned(),
        WsError::Url(_) => "bad_url".to_owned(),
        WsError::HttpFormat(_) => "bad_http".to_owned(),
        _ => "websocket_error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_read_whatever_else_the_server_adds() {
        let sent = bench_frame("fanout", 7, 0, 1_763_776_800_000_000_000, "xx");
        let parsed: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(parsed["payload"]["pad"], "xx");
        let delivered = r#"{"type":"bench","channel":"fanout","payload":{"seq":7,"c":0,"t":1763776800000000000,"pad":"xx"},"id":"m-1","timestamp":1,"priority":"normal","from":{"userId":null,"connectionId":"c-1"},"offset":8}"#;
        let f = parse_frame(delivered).unwrap();
        assert_eq!(f.kind, "bench");
        let p = f.payload.unwrap();
        assert_eq!((p.seq, p.c, p.t), (7, 0, 1_763_776_800_000_000_000));
        let e =
            parse_frame(r#"{"type":"error","code":"rate_limited","message":"slow down"}"#).unwrap();
        assert_eq!(e.code.as_deref(), Some("rate_limited"));
        assert!(parse_frame("[1,2]").is_none());
    }

    #[test]
    fn the_fast_path_reads_verbatim_payloads_and_leaves_the_rest_to_serde() {
        let delivered = r#"{"type":"bench","channel":"fanout","payload":{"seq":7,"c":2,"t":1763776800000000000,"pad":"xx"},"id":"m-1","offset":8}"#;
        let p = parse_delivery_fast(delivered).unwrap();
        assert_eq!((p.seq, p.c, p.t), (7, 2, 1_763_776_800_000_000_000));
        let sent = bench_frame("fanout", 9, 0, 5, "xx");
        assert_eq!(parse_delivery_fast(&sent).unwrap().seq, 9);
        let type_later = r#"{"channel":"c","payload":{"seq":3,"c":1,"t":5},"type":"bench"}"#;
        let p = parse_delivery_fast(type_later).unwrap();
        assert_eq!((p.seq, p.c, p.t), (3, 1, 5));
        // Spaced or reordered payloads go to the full parser, which reads them.
        let spaced = r#"{"type":"bench","channel":"c","payload":{"seq": 7,"c":0,"t":1}}"#;
        assert!(parse_delivery_fast(spaced).is_none());
        assert_eq!(parse_frame(spaced).unwrap().payload.unwrap().seq, 7);
        assert!(parse_delivery_fast(r#"{"type":"ack","id":"x"}"#).is_none());
        assert!(parse_delivery_fast("").is_none());
        let huge = r#"{"type":"bench","payload":{"seq":99999999999999999999,"c":0,"t":1}}"#;
        assert!(parse_delivery_fast(huge).is_none());
    }
}
