//! Reading client frames (RFC 6455 §5) with no buffer kept per connection.
//!
//! tungstenite keeps a read buffer for each connection's whole life and grows it to the
//! largest frame the connection ever sent; across thousands of idle connections that buffer
//! was the largest thing each one held. Client frames are small (subscribe, publish, ping)
//! and nearly always arrive whole, alone in one read, so this reader reads into a buffer on
//! the stack of the poll, unmasks the frame there and hands it to the caller from there. Only
//! while a frame is incomplete, or when one read brought more than one frame, are bytes kept
//! on the heap, and that buffer is freed as soon as it is consumed: between frames, a
//! connection holds nothing here.
//!
//! What it enforces, as a server must (RFC 6455 §5.1–§5.5): every frame is masked; no
//! reserved bit is set (no extension is negotiated); opcodes are the six defined ones;
//! control frames are final and carry at most 125 bytes; continuations belong to a started
//! message and a new message does not start inside one; a close frame carries nothing or a
//! status code that may be sent, and a UTF-8 reason; text is UTF-8. Messages larger than
//! the limit are refused from the frame header, before their payload is read.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// Bytes read per call, into a buffer on the poll's stack.
const READ_CHUNK: usize = 4096;

/// The most reserved ahead for an incomplete frame; beyond it, the buffer grows as bytes
/// arrive.
const MAX_RESERVE: usize = 64 * 1024;

/// The largest header of a client frame: 2 bytes, an 8-byte length and the 4-byte mask.
const MAX_HEADER: usize = 14;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A client frame, or a message completed by one, as the session sees it. Borrowed from the
/// reader (or the stack of the poll) for the length of the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// A whole text message, checked to be UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A ping and its payload, which the pong must carry back.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close frame: its status code and reason, or `None` when it carries no code.
    Close(Option<(u16, &'a str)>),
}

/// A framing rule a client broke (one byte, so that a read's result stays small in the
/// session's task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    ReservedBits,
    UnknownOpcode,
    Unmasked,
    LengthTopBit,
    ControlFrame,
    MessageInMessage,
    StrayContinuation,
    OneByteClose,
    CloseCode,
    CloseReason,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ReservedBits => "reserved bits set without an extension",
            Self::UnknownOpcode => "unknown opcode",
            Self::Unmasked => "a client frame must be masked",
            Self::LengthTopBit => "payload length with its top bit set",
            Self::ControlFrame => "a control frame must be final and carry at most 125 bytes",
            Self::MessageInMessage => "a new message started before the fragmented one ended",
            Self::StrayContinuation => "a continuation frame outside a message",
            Self::OneByteClose => "a close frame with a one-byte payload",
            Self::CloseCode => "a close code that may not be sent",
            Self::CloseReason => "a close reason that is not UTF-8",
        })
    }
}

/// Why reading stopped. After any of these the reader returns [`ReadError::Ended`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The socket failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection without a close frame (mid-frame or between frames).
    #[error("the connection ended without a close frame")]
    Ended,
    /// The peer broke the framing rules: the connection must be failed (RFC 6455 §7.1.7).
    #[error("protocol violation: {0}")]
    Protocol(Violation),
    /// A message larger than the limit: close with 1009.
    #[error("a message larger than {0} bytes")]
    TooLarge(usize),
    /// A text message that is not UTF-8: close with 1007.
    #[error("a text message that is not valid UTF-8")]
    InvalidUtf8,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header bytes, mask included.
    len: usize,
    /// Payload bytes (at most the message limit: checked while parsing).
    payload: usize,
}

impl Header {
    /// Header and payload.
    fn total(&self) -> usize {
        self.len + self.payload
    }
}

/// Parses the header at the start of `buf`: `None` while it is incomplete.
fn parse_header(buf: &[u8], max_message: usize) -> Result<Option<Header>, ReadError> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let fin = first & 0x80 != 0;
    if first & 0x70 != 0 {
        return Err(ReadError::Protocol(Violation::ReservedBits));
    }
    let opcode = first & 0x0F;
    let control = match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => false,
        OP_CLOSE | OP_PING | OP_PONG => true,
        _ => return Err(ReadError::Protocol(Violation::UnknownOpcode)),
    };
    if second & 0x80 == 0 {
        return Err(ReadError::Protocol(Violation::Unmasked));
    }
    let (payload, at) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut len = [0; 8];
                len.copy_from_slice(b);
                let len = u64::from_be_bytes(len);
                if len >> 63 != 0 {
                    return Err(ReadError::Protocol(Violation::LengthTopBit));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if control && (!fin || payload > 125) {
        return Err(ReadError::Protocol(Violation::ControlFrame));
    }
    let payload = match usize::try_from(payload) {
        Ok(len) if len <= max_message => len,
        _ => return Err(ReadError::TooLarge(max_message)),
    };
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: [mask[0], mask[1], mask[2], mask[3]],
        len: at + 4,
        payload,
    }))
}

/// Unmasks `data` in place (RFC 6455 §5.3), eight bytes at a time.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so its mask phase starts at 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// Whether a close frame may carry `code` (RFC 6455 §7.4, and the IANA registry).
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A fragmented message being put together (boxed in the reader: fragmented client
/// messages are rare, and every connection would carry its room).
#[derive(Debug)]
struct Assembly {
    /// It is text (else binary).
    text: bool,
    /// It ended with the last frame: its bytes go once the caller has seen them.
    done: bool,
    /// Its unmasked bytes so far.
    bytes: Vec<u8>,
}

/// What one frame amounts to: what the caller sees, or nothing yet (a fragment).
fn interpret<'a>(
    assembly: &'a mut Option<Box<Assembly>>,
    header: &Header,
    payload: &'a [u8],
    max_message: usize,
) -> Result<Option<Incoming<'a>>, ReadError> {
    match header.opcode {
        OP_TEXT | OP_BINARY => {
            if assembly.is_some() {
                return Err(ReadError::Protocol(Violation::MessageInMessage));
            }
            let text = header.opcode == OP_TEXT;
            if header.fin {
                return message(text, payload).map(Some);
            }
            *assembly = Some(Box::new(Assembly {
                text,
                done: false,
                bytes: payload.to_vec(),
            }));
            Ok(None)
        }
        OP_CONTINUATION => {
            let Some(assembly) = assembly.as_mut() else {
                return Err(ReadError::Protocol(Violation::StrayContinuation));
            };
            if assembly.bytes.len() + payload.len() > max_message {
                return Err(ReadError::TooLarge(max_message));
            }
            assembly.bytes.extend_from_slice(payload);
            if !header.fin {
                return Ok(None);
            }
            assembly.done = true;
            message(assembly.text, &assembly.bytes).map(Some)
        }
        OP_PING => Ok(Some(Incoming::Ping(payload))),
        OP_PONG => Ok(Some(Incoming::Pong)),
        _ => match *payload {
            [] => Ok(Some(Incoming::Close(None))),
            [_] => Err(ReadError::Protocol(Violation::OneByteClose)),
            [high, low, ref reason @ ..] => {
                let code = u16::from_be_bytes([high, low]);
                if !close_code_allowed(code) {
                    return Err(ReadError::Protocol(Violation::CloseCode));
                }
                let reason = std::str::from_utf8(reason)
                    .map_err(|_| ReadError::Protocol(Violation::CloseReason))?;
                Ok(Some(Incoming::Close(Some((code, reason)))))
            }
        },
    }
}

fn message(text: bool, bytes: &[u8]) -> Result<Incoming<'_>, ReadError> {
    if text {
        std::str::from_utf8(bytes)
            .map(Incoming::Text)
            .map_err(|_| ReadError::InvalidUtf8)
    } else {
        Ok(Incoming::Binary(bytes))
    }
}

/// Reads client frames from a byte stream (the server's side of a WebSocket connection).
pub(crate) struct FrameReader<R> {
    read: R,
    /// Bytes read and not yet returned: an incomplete frame, or what followed a frame in
    /// the same read. Empty, with no allocation, between frames.
    pending: Vec<u8>,
    /// Where the unreturned bytes of `pending` start.
    start: usize,
    assembly: Option<Box<Assembly>>,
    max_message: usize,
    /// Reading stopped (an error, or the end of the stream).
    ended: bool,
}

impl<R> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("pending", &(self.pending.len() - self.start))
            .field("assembling", &self.assembly.as_ref().map(|a| a.bytes.len()))
            .field("max_message", &self.max_message)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of `read`, which starts with `pre`: what the HTTP server read past the
    /// upgrade request. Messages (and so frames) over `max_message` bytes are refused.
    pub(crate) fn new(pre: &[u8], read: R, max_message: usize) -> Self {
        Self {
            read,
            pending: pre.to_vec(),
            start: 0,
            assembly: None,
            max_message,
            ended: false,
        }
    }

    /// Heap bytes held: 0 between frames.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.pending.capacity() + self.assembly.as_ref().map_or(0, |a| a.bytes.capacity())
    }

    /// Reads until a frame completes something the caller sees, and returns what `f` makes
    /// of it. Fragments of a message are gathered on the way; control frames between them
    /// are returned as they come. Cancel safe: bytes read are kept until returned.
    pub(crate) fn poll_next<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(Incoming<'_>) -> T,
    ) -> Poll<Result<T, ReadError>> {
        if self.ended {
            return Poll::Ready(Err(ReadError::Ended));
        }
        let result = ready!(self.poll_step(cx, f));
        if result.is_err() {
            self.ended = true;
            self.pending = Vec::new();
            self.start = 0;
            self.assembly = None;
        }
        Poll::Ready(result)
    }

    fn poll_step<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(Incoming<'_>) -> T,
    ) -> Poll<Result<T, ReadError>> {
        let max = self.max_message;
        loop {
            // A frame whole in what was kept: return it from there.
            if self.start < self.pending.len() {
                let available = &mut self.pending[self.start..];
                let header = parse_header(available, max)?;
                if let Some(header) = header.filter(|h| h.total() <= available.len()) {
                    let payload = &mut available[header.len..header.total()];
                    unmask(payload, header.mask);
                    self.start += header.total();
                    if let Some(incoming) = interpret(&mut self.assembly, &header, payload, max)? {
                        let value = f(incoming);
                        self.tidy();
                        return Poll::Ready(Ok(value));
                    }
                    self.tidy();
                    continue;
                }
                // Incomplete: read the rest after it.
                let want = header.map_or(MAX_HEADER, |h| h.total());
                if self.start > 0 {
                    self.pending.drain(..self.start);
                    self.start = 0;
                }
                // What the header announces, but not all at once for a large frame: a client
                // must send bytes to make the reader hold them.
                let missing = want.saturating_sub(self.pending.len());
                self.pending.reserve_exact(missing.min(MAX_RESERVE));
                let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut buf = ReadBuf::uninit(&mut stack);
                ready!(Pin::new(&mut self.read).poll_read(cx, &mut buf))?;
                if buf.filled().is_empty() {
                    return Poll::Ready(Err(ReadError::Ended));
                }
                self.pending.extend_from_slice(buf.filled());
                continue;
            }

            // Nothing kept: read onto the stack, and return a frame that arrived whole from
            // there, keeping only what followed it.
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut stack);
            ready!(Pin::new(&mut self.read).poll_read(cx, &mut buf))?;
            let read = buf.filled_mut();
            if read.is_empty() {
                return Poll::Ready(Err(ReadError::Ended));
            }
            match parse_header(read, max)? {
                Some(header) if header.total() <= read.len() => {
                    let (frame, rest) = read.split_at_mut(header.total());
                    let payload = &mut frame[header.len..];
                    unmask(payload, header.mask);
                    if !rest.is_empty() {
                        self.pending.extend_from_slice(rest);
                    }
                    if let Some(incoming) = interpret(&mut self.assembly, &header, payload, max)? {
                        let value = f(incoming);
                        self.tidy();
                        return Poll::Ready(Ok(value));
                    }
                    self.tidy();
                }
                header => {
                    let want = header.map_or(MAX_HEADER, |h| h.total());
                    self.pending
                        .reserve_exact(want.min(MAX_RESERVE).max(read.len()));
                    self.pending.extend_from_slice(read);
                }
            }
        }
    }

    /// Frees what the caller has seen: a finished message, and `pending` once consumed.
    fn tidy(&mut self) {
        if self.assembly.as_ref().is_some_and(|a| a.done) {
            self.assembly = None;
        }
        if self.start == self.pending.len() {
            self.pending = Vec::new();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use bytes::Bytes;
    use proptest::prelude::*;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

    use super::*;

    /// What the reader made of a frame, owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong,
        Close(Option<(u16, String)>),
    }

    fn own(incoming: Incoming<'_>) -> Seen {
        match incoming {
            Incoming::Text(text) => Seen::Text(text.to_owned()),
            Incoming::Binary(bytes) => Seen::Binary(bytes.to_vec()),
            Incoming::Ping(bytes) => Seen::Ping(bytes.to_vec()),
            Incoming::Pong => Seen::Pong,
            Incoming::Close(close) => Seen::Close(close.map(|(c, r)| (c, r.to_owned()))),
        }
    }

    /// Bytes served in the given chunks, one chunk per read.
    struct Chunked {
        chunks: std::collections::VecDeque<Vec<u8>>,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(mut chunk) = self.chunks.pop_front() {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.chunks.push_front(chunk.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// A reader of `chunks` (one per read; empty ones are left out, as a read of nothing
    /// is the end of the stream), after `pre`.
    fn reader(pre: &[u8], chunks: Vec<Vec<u8>>, max: usize) -> FrameReader<Chunked> {
        FrameReader::new(
            pre,
            Chunked {
                chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
            },
            max,
        )
    }

    fn next<R: AsyncRead + Unpin>(reader: &mut FrameReader<R>) -> Result<Seen, ReadError> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match reader.poll_next(&mut cx, own) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the test reader never blocks"),
        }
    }

    /// Everything the reader returns until the stream ends, and how it ended.
    fn read_all(mut reader: FrameReader<Chunked>) -> (Vec<Seen>, ReadError) {
        let mut seen = Vec::new();
        loop {
            match next(&mut reader) {
                Ok(s) => {
                    seen.push(s);
                    assert!(
                        reader.start < reader.pending.len() || reader.pending.capacity() == 0,
                        "consumed bytes are let go"
                    );
                }
                Err(err) => return (seen, err),
            }
        }
    }

    /// The wire bytes tungstenite, as a client, sends for `messages` (masked frames).
    fn client_wire(messages: &[Message]) -> Vec<u8> {
        let mut ws = WebSocket::from_raw_socket(Cursor::new(Vec::new()), Role::Client, None);
        for message in messages {
            ws.send(message.clone())
                .expect("tungstenite writes the frame");
        }
        ws.get_ref().get_ref().clone()
    }

    /// One frame as a client sends it, built by hand (for what tungstenite will not send).
    fn raw_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let mut frame = vec![first];
        let flag = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => frame.push(flag | n as u8),
            n @ 126..=65_535 => {
                frame.push(flag | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(flag | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            frame.extend_from_slice(&mask);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        frame
    }

    fn fragment(opcode: OpCode, fin: bool, payload: &[u8]) -> Message {
        Message::Frame(Frame::from_payload(
            FrameHeader {
                is_final: fin,
                opcode,
                ..FrameHeader::default()
            },
            Bytes::copy_from_slice(payload),
        ))
    }

    #[test]
    fn text_of_every_length_class_is_read_whole() {
        // 7-bit, 16-bit and 64-bit lengths, at their edges (RFC 6455 §5.2).
        for len in [
            0, 1, 125, 126, 127, 4095, 4096, 4097, 65_535, 65_536, 70_000,
        ] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let wire = client_wire(&[Message::text(text.clone())]);
            let (seen, end) = read_all(reader(&[], vec![wire], 70_000));
            assert_eq!(seen, vec![Seen::Text(text)], "length {len}");
            assert!(matches!(end, ReadError::Ended));
        }
    }

    #[test]
    fn a_frame_split_at_every_byte_is_read_the_same() {
        let messages = [
            Message::text(r#"{"type":"subscribe","channel":"news","id":"1"}"#),
            Message::Ping(Bytes::from_static(b"abc")),
            Message::binary(vec![1, 2, 3]),
        ];
        let wire = client_wire(&messages);
        let expected = vec![
            Seen::Text(r#"{"type":"subscribe","channel":"news","id":"1"}"#.into()),
            Seen::Ping(b"abc".to_vec()),
            Seen::Binary(vec![1, 2, 3]),
        ];
        for cut in 0..=wire.len() {
            let (head, tail) = wire.split_at(cut);
            let (seen, _) = read_all(reader(&[], vec![head.to_vec(), tail.to_vec()], 1024));
            assert_eq!(seen, expected, "split at {cut}");
            // And the same bytes when the HTTP server read the first part with the request.
            let (seen, _) = read_all(reader(head, vec![tail.to_vec()], 1024));
            assert_eq!(seen, expected, "{cut} bytes read with the upgrade request");
        }
    }

    #[test]
    fn fragments_are_joined_with_control_frames_answered_between_them() {
        // "héllo" split inside the two-byte "é": UTF-8 is checked on the whole message.
        let text = "héllo".as_bytes();
        let wire = client_wire(&[
            fragment(OpCode::Data(Data::Text), false, &text[..2]),
            Message::Ping(Bytes::from_static(b"p")),
            fragment(OpCode::Data(Data::Continue), false, &text[2..4]),
            fragment(OpCode::Data(Data::Continue), true, &text[4..]),
            Message::Pong(Bytes::new()),
            fragment(OpCode::Data(Data::Binary), false, &[9]),
            fragment(OpCode::Data(Data::Continue), true, &[8]),
        ]);
        let (seen, end) = read_all(reader(&[], vec![wire], 1024));
        assert_eq!(
            seen,
            vec![
                Seen::Ping(b"p".to_vec()),
                Seen::Text("héllo".into()),
                Seen::Pong,
                Seen::Binary(vec![9, 8]),
            ]
        );
        assert!(matches!(end, ReadError::Ended));
    }

    #[test]
    fn close_frames_give_their_code_and_reason() {
        let wire = client_wire(&[Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 4321.into(),
                reason: "bye".into(),
            },
        ))]);
        let (seen, _) = read_all(reader(&[], vec![wire], 1024));
        assert_eq!(seen, vec![Seen::Close(Some((4321, "bye".into())))]);

        let (seen, _) = read_all(reader(&[], vec![raw_frame(0x88, &[], true)], 1024));
        assert_eq!(seen, vec![Seen::Close(None)]);
    }

    #[test]
    fn messages_up_to_the_limit_pass_and_larger_ones_are_refused_from_the_header() {
        let wire = client_wire(&[Message::text("x".repeat(100))]);
        let (seen, _) = read_all(reader(&[], vec![wire.clone()], 100));
        assert_eq!(seen, vec![Seen::Text("x".repeat(100))]);

        // Only the header arrives: refused without waiting for the payload.
        let (seen, end) = read_all(reader(&[], vec![wire[..8].to_vec()], 99));
        assert!(seen.is_empty());
        assert!(matches!(end, ReadError::TooLarge(99)), "{end:?}");

        // Fragments that together exceed the limit.
        let wire = client_wire(&[
            fragment(OpCode::Data(Data::Text), false, &[b'a'; 60]),
            fragment(OpCode::Data(Data::Continue), true, &[b'a'; 60]),
        ]);
        let (seen, end) = read_all(reader(&[], vec![wire], 100));
        assert!(seen.is_empty());
        assert!(matches!(end, ReadError::TooLarge(100)), "{end:?}");
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let wire = raw_frame(0x81, &[b'a', 0xFF, b'b'], true);
        let (seen, end) = read_all(reader(&[], vec![wire], 1024));
        assert!(seen.is_empty());
        assert!(matches!(end, ReadError::InvalidUtf8), "{end:?}");
    }

    #[test]
    fn frames_breaking_the_rules_fail_the_connection() {
        let long_ping = vec![0; 126];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unmasked", raw_frame(0x81, b"hi", false)),
            ("reserved bit", raw_frame(0xC1, b"hi", true)),
            ("unknown opcode", raw_frame(0x83, b"hi", true)),
            ("unknown control opcode", raw_frame(0x8B, b"", true)),
            ("fragmented ping", raw_frame(0x09, b"", true)),
            ("ping over 125 bytes", raw_frame(0x89, &long_ping, true)),
            ("continuation first", raw_frame(0x80, b"hi", true)),
            (
                "new message inside a fragmented one",
                [raw_frame(0x01, b"a", true), raw_frame(0x81, b"b", true)].concat(),
            ),
            ("one-byte close", raw_frame(0x88, &[3], true)),
            (
                "close code 1005",
                raw_frame(0x88, &1005u16.to_be_bytes(), true),
            ),
            (
                "close code 999",
                raw_frame(0x88, &999u16.to_be_bytes(), true),
            ),
            (
                "close code 2000",
                raw_frame(0x88, &2000u16.to_be_bytes(), true),
            ),
            (
                "close reason not UTF-8",
                raw_frame(0x88, &[0x03, 0xE8, 0xFF], true),
            ),
            (
                "64-bit length with the top bit set",
                [vec![0x81, 0xFF], vec![0x80; 8], vec![0; 4]].concat(),
            ),
        ];
        for (what, wire) in cases {
            let (seen, end) = read_all(reader(&[], vec![wire], 1024));
            assert!(seen.is_empty(), "{what}: {seen:?}");
            assert!(matches!(end, ReadError::Protocol(_)), "{what}: {end:?}");
        }
    }

    #[test]
    fn the_end_of_the_stream_mid_frame_is_an_end_without_close() {
        let wire = client_wire(&[Message::text("hello")]);
        let (seen, end) = read_all(reader(&[], vec![wire[..wire.len() - 1].to_vec()], 1024));
        assert!(seen.is_empty());
        assert!(matches!(end, ReadError::Ended));
    }

    #[test]
    fn nothing_is_held_between_frames_even_after_a_large_one() {
        let big = "y".repeat(60_000);
        let wire = client_wire(&[Message::text(big.clone()), Message::text("small")]);
        let mut reader = reader(&[], vec![wire], 65_536);
        assert_eq!(next(&mut reader).unwrap(), Seen::Text(big));
        // The large frame spanned many reads; the next frame arrived in the last of them.
        assert_eq!(next(&mut reader).unwrap(), Seen::Text("small".into()));
        assert_eq!(reader.held(), 0);
    }

    #[test]
    fn unmasking_matches_the_bytewise_definition_at_every_length_and_offset() {
        let mask = [0xA1, 0x02, 0xF3, 0x44];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        prop_oneof![
            "[a-zé€😀 ]{0,300}".prop_map(Message::text),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Message::binary),
            proptest::collection::vec(any::<u8>(), 0..125)
                .prop_map(|p| Message::Ping(Bytes::from(p))),
            Just(Message::Pong(Bytes::new())),
        ]
    }

    fn expected(message: &Message) -> Seen {
        match message {
            Message::Text(text) => Seen::Text(text.as_str().to_owned()),
            Message::Binary(bytes) => Seen::Binary(bytes.to_vec()),
            Message::Ping(bytes) => Seen::Ping(bytes.to_vec()),
            Message::Pong(_) => Seen::Pong,
            other => unreachable!("not generated: {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn any_messages_in_any_reads_come_out_whole_and_in_order(
            messages in proptest::collection::vec(message_strategy(), 1..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
            pre in any::<prop::sample::Index>(),
        ) {
            let wire = client_wire(&messages);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for point in points {
                chunks.push(wire[at..point].to_vec());
                at = point;
            }
            chunks.push(wire[at..].to_vec());
            // Part of the first read may have come with the upgrade request.
            let first = chunks.remove(0);
            let split = pre.index(first.len() + 1);
            chunks.insert(0, first[split..].to_vec());
            let (seen, end) = read_all(reader(&first[..split], chunks, 4096));
            prop_assert_eq!(seen, messages.iter().map(expected).collect::<Vec<_>>());
            prop_assert!(matches!(end, ReadError::Ended));
        }
    }
}
