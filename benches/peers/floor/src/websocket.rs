//! RFC 6455, the part the benchmarks need: the upgrade request, masked client frames
//! (text, binary, continuation, close, ping, pong; 7-, 16- and 64-bit lengths) and unmasked
//! server frames. No extensions: a client asking for permessage-deflate gets none.

use std::ops::Range;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The longest upgrade request read before giving up.
pub(crate) const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// The largest client frame accepted (the Node and Bun peers' limit); larger ones close the
/// connection with 1009.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Room left in front of a frame's payload for the longest server header.
const HEADER_ROOM: usize = 10;

pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// Close codes sent by the server.
pub(crate) const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// What the bytes read so far hold of the upgrade request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// The request's blank line has not arrived yet.
    Incomplete,
    /// A WebSocket upgrade at `/ws`: send `response`; the request took `consumed` bytes.
    Accept { response: String, consumed: usize },
    /// Anything else: send `response` and close.
    Reject { response: &'static str },
}

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
    connection: close\r\ncontent-length: 59\r\n\r\n\
    {\"error\":\"not_found\",\"message\":\"WebSocket endpoint is /ws\"}";
const BAD_REQUEST: &str = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
    connection: close\r\ncontent-length: 59\r\n\r\n\
    {\"error\":\"bad_request\",\"message\":\"not a WebSocket upgrade\"}";
const TOO_LARGE: &str = "HTTP/1.1 431 Request Header Fields Too Large\r\n\
    connection: close\r\ncontent-length: 0\r\n\r\n";

/// Reads the upgrade request at the start of `buf`.
pub(crate) fn parse_upgrade(buf: &[u8]) -> Upgrade {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_REQUEST_BYTES {
            Upgrade::Reject {
                response: TOO_LARGE,
            }
        } else {
            Upgrade::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Upgrade::Reject {
            response: BAD_REQUEST,
        };
    };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request_line.next(), request_line.next().unwrap_or_default());
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/ws" {
        return Upgrade::Reject {
            response: NOT_FOUND,
        };
    }
    let (mut websocket, mut version_13, mut key) = (false, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            websocket = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version_13 = value == "13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value);
        }
    }
    match key {
        Some(key) if method == Some("GET") && websocket && version_13 => Upgrade::Accept {
            response: format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            ),
            consumed: end + 4,
        },
        _ => Upgrade::Reject {
            response: BAD_REQUEST,
        },
    }
}

/// One complete client frame, unmasked in place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientFrame {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    /// Where the payload is in the buffer given to [`parse_frame`].
    pub(crate) payload: Range<usize>,
    /// Bytes the frame takes, header included.
    pub(crate) consumed: usize,
}

/// What the start of the read buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Incomplete,
    Frame(ClientFrame),
    /// A frame the server must answer with a close of this code.
    Invalid(u16),
}

/// Parses the frame at the start of `buf`, unmasking its payload in place once it is
/// complete (never before, so a frame is unmasked exactly once).
pub(crate) fn parse_frame(buf: &mut [u8]) -> Parsed {
    let [b0, b1, ..] = *buf else {
        return Parsed::Incomplete;
    };
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    let known = matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    );
    // Reserved bits need an extension (none is negotiated); client frames must be masked.
    if b0 & 0x70 != 0 || b1 & 0x80 == 0 || !known {
        return Parsed::Invalid(CLOSE_PROTOCOL_ERROR);
    }
    let (len, header) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Parsed::Incomplete,
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or_default()), 10),
            None => return Parsed::Incomplete,
        },
        n => (u64::from(n), 2),
    };
    if opcode >= OP_CLOSE && (!fin || len > 125) {
        return Parsed::Invalid(CLOSE_PROTOCOL_ERROR);
    }
    let len = match usize::try_from(len) {
        Ok(len) if len <= MAX_MESSAGE_BYTES => len,
        _ => return Parsed::Invalid(CLOSE_TOO_BIG),
    };
    let start = header + 4;
    let Some(frame) = buf.get_mut(header..start + len) else {
        return Parsed::Incomplete;
    };
    let (mask, payload) = frame.split_at_mut(4);
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Parsed::Frame(ClientFrame {
        fin,
        opcode,
        payload: start..start + len,
        consumed: start + len,
    })
}

/// A buffer to write a text frame's payload into, after room for its header; finish it with
/// [`finish_text`].
pub(crate) fn text_buffer(capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_ROOM + capacity);
    buf.resize(HEADER_ROOM, 0);
    buf
}

/// The whole server frame (FIN, text, unmasked) for a buffer from [`text_buffer`]: the header
/// is written in front of the payload, so the payload is never copied.
pub(crate) fn finish_text(mut buf: Vec<u8>) -> Bytes {
    let start = write_header(&mut buf, OP_TEXT);
    Bytes::from(buf).slice(start..)
}

/// A whole server control frame (close, pong) with `payload` (at most 125 bytes).
pub(crate) fn control_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = text_buffer(payload.len());
    buf.extend_from_slice(payload);
    let start = write_header(&mut buf, opcode);
    buf.drain(..start);
    buf
}

/// Writes the header of a final frame into the room at the start of `buf` and returns
/// where the frame starts.
fn write_header(buf: &mut [u8], opcode: u8) -> usize {
    let len = buf.len() - HEADER_ROOM;
    let first = 0x80 | opcode;
    if len < 126 {
        buf[8..10].copy_from_slice(&[first, len as u8]);
        8
    } else if let Ok(len) = u16::try_from(len) {
        buf[6..8].copy_from_slice(&[first, 126]);
        buf[8..10].copy_from_slice(&len.to_be_bytes());
        6
    } else {
        buf[0..2].copy_from_slice(&[first, 127]);
        buf[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn a_masked_text_frame_is_unmasked_in_place() {
        let mut buf = masked(OP_TEXT, b"{\"type\":\"ping\"}");
        let Parsed::Frame(f) = parse_frame(&mut buf) else {
            panic!("not a frame");
        };
        assert!(f.fin);
        assert_eq!(f.opcode, OP_TEXT);
        assert_eq!(&buf[f.payload.clone()], b"{\"type\":\"ping\"}");
        assert_eq!(f.consumed, buf.len());
    }

    #[test]
    fn a_16_bit_length_frame_is_read_only_once_complete() {
        let payload = vec![b'x'; 300];
        let mut buf = masked(OP_TEXT, &payload);
        assert_eq!(parse_frame(&mut buf[..100]), Parsed::Incomplete);
        let Parsed::Frame(f) = parse_frame(&mut buf) else {
            panic!("not a frame");
        };
        assert_eq!(f.payload, 8..308);
        assert_eq!(&buf[f.payload], &payload[..]);
    }

    #[test]
    fn a_frame_over_the_limit_closes_with_1009() {
        let mut buf = masked(OP_BINARY, &vec![0; MAX_MESSAGE_BYTES + 1]);
        assert_eq!(parse_frame(&mut buf), Parsed::Invalid(CLOSE_TOO_BIG));
    }

    #[test]
    fn an_unmasked_client_frame_is_a_protocol_error() {
        let mut buf = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(parse_frame(&mut buf), Parsed::Invalid(CLOSE_PROTOCOL_ERROR));
    }

    #[test]
    fn server_headers_use_the_shortest_length_encoding() {
        for (len, header) in [(5, 2), (126, 4), (70_000, 10)] {
            let mut buf = text_buffer(len);
            buf.resize(HEADER_ROOM + len, b'a');
            let frame = finish_text(buf);
            assert_eq!(frame.len(), header + len);
            assert_eq!(frame[0], 0x81);
        }
    }

    #[test]
    fn the_upgrade_is_accepted_only_at_ws() {
        let request = b"GET /ws?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\nextra";
        let Upgrade::Accept { response, consumed } = parse_upgrade(request) else {
            panic!("not accepted");
        };
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert_eq!(&request[consumed..], b"extra");
        assert_eq!(
            parse_upgrade(b"GET /other HTTP/1.1\r\n\r\n"),
            Upgrade::Reject {
                response: NOT_FOUND
            }
        );
        assert_eq!(parse_upgrade(b"GET /ws HTTP/1.1\r\n"), Upgrade::Incomplete);
    }

    #[test]
    fn the_canned_responses_have_the_right_lengths() {
        for r in [NOT_FOUND, BAD_REQUEST] {
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            assert!(head.ends_with(&format!("content-length: {}", body.len())));
        }
    }
}
