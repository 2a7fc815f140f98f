//! One client connection's task: the upgrade, then reading frames and answering them. A
//! publish is delivered from here, by this (the publisher's) task, to every subscriber's
//! socket; the task also drains its own client's pending bytes when its socket is writable.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::rc::Rc;

use tokio::net::TcpStream;

use crate::channels::Channels;
use crate::messages::{self, Delivery, Incoming, Publisher};
use crate::peer::Peer;
use crate::websocket::{
    self, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG, MAX_MESSAGE_BYTES, OP_BINARY, OP_CLOSE,
    OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, Parsed, Upgrade,
};

/// Bytes read from the socket at a time (on the stack; only what a frame leaves incomplete
/// is kept between reads, so an idle connection holds no read buffer to speak of).
const READ_CHUNK: usize = 16 * 1024;

/// Serves one accepted client until it leaves, fails, or misbehaves.
///
/// With `batch_writes`, the deliveries of every publish read in one go are written with one
/// write per subscriber once the whole read is handled, instead of one write per publish.
pub(crate) async fn serve(stream: TcpStream, channels: Rc<RefCell<Channels>>, batch_writes: bool) {
    // Every frame is small and must leave at once.
    let _ = stream.set_nodelay(true);
    let mut conn = Connection {
        input: Vec::new(),
        fragment: None,
        session: Session {
            peer: Rc::new(Peer::new(stream)),
            channels,
            id: String::new(),
            subscriptions: HashSet::new(),
            batch: batch_writes.then(Vec::new),
        },
    };
    if conn.upgrade().await {
        conn.run().await;
    }
    conn.session.leave();
}

#[derive(Debug)]
struct Connection {
    /// Bytes read and not yet parsed: the rest of an incomplete frame.
    input: Vec<u8>,
    /// The opcode and the data so far of a fragmented message.
    fragment: Option<(u8, Vec<u8>)>,
    session: Session,
}

/// What a read brought.
enum Read {
    Data,
    Nothing,
    Eof,
}

impl Connection {
    /// Reads the upgrade request and answers it; `true` once upgraded (the answer and
    /// `welcome` go out in one write).
    async fn upgrade(&mut self) -> bool {
        let peer = Rc::clone(&self.session.peer);
        loop {
            if peer.stream().readable().await.is_err() {
                return false;
            }
            match self.read() {
                Ok(Read::Data) => {}
                Ok(Read::Nothing) => continue,
                Ok(Read::Eof) | Err(_) => return false,
            }
            match websocket::parse_upgrade(&self.input) {
                Upgrade::Incomplete => {}
                Upgrade::Reject { response } => {
                    peer.send(response.as_bytes());
                    return false;
                }
                Upgrade::Accept { response, consumed } => {
                    self.input.drain(..consumed);
                    self.session.id = self.session.channels.borrow_mut().connection_id();
                    let mut first = response.into_bytes();
                    first.extend_from_slice(&messages::welcome(&self.session.id));
                    peer.send(&first);
                    return true;
                }
            }
        }
    }

    /// Reads and answers frames, and drains pending bytes, until the connection ends.
    async fn run(&mut self) {
        let peer = Rc::clone(&self.session.peer);
        // Frames sent right behind the upgrade request.
        let mut open = self.process();
        while open && !peer.is_closed() {
            let want_write = peer.has_pending();
            tokio::select! {
                biased;
                ready = peer.stream().writable(), if want_write => {
                    open = ready.is_ok() && peer.drain().is_ok();
                }
                ready = peer.stream().readable() => {
                    open = ready.is_ok() && match self.read() {
                        Ok(Read::Data) => self.process(),
                        Ok(Read::Nothing) => true,
                        Ok(Read::Eof) | Err(_) => false,
                    };
                }
                () = peer.woken() => {}
            }
        }
        // A close frame or an error frame just queued gets its chance to leave.
        let _ = peer.drain();
    }

    fn read(&mut self) -> io::Result<Read> {
        let mut chunk = [0u8; READ_CHUNK];
        match self.session.peer.stream().try_read(&mut chunk) {
            Ok(0) => Ok(Read::Eof),
            Ok(n) => {
                self.input.extend_from_slice(&chunk[..n]);
                Ok(Read::Data)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read::Nothing),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Read::Nothing),
            Err(e) => Err(e),
        }
    }

    /// Handles every complete frame read; `false` when the connection is to end.
    fn process(&mut self) -> bool {
        let mut at = 0;
        let open = loop {
            match websocket::parse_frame(&mut self.input[at..]) {
                Parsed::Incomplete => break true,
                Parsed::Invalid(code) => {
                    self.session.close(code);
                    break false;
                }
                Parsed::Frame(f) => {
                    let payload = &self.input[at + f.payload.start..at + f.payload.end];
                    at += f.consumed;
                    if !on_frame(
                        &mut self.session,
                        &mut self.fragment,
                        f.fin,
                        f.opcode,
                        payload,
                    ) {
                        break false;
                    }
                }
            }
        };
        if at == self.input.len() {
            self.input.clear();
        } else {
            self.input.drain(..at);
        }
        self.session.flush_batch();
        open
    }
}

/// Handles one frame; `false` when the connection is to end.
fn on_frame(
    session: &mut Session,
    fragment: &mut Option<(u8, Vec<u8>)>,
    fin: bool,
    opcode: u8,
    payload: &[u8],
) -> bool {
    match opcode {
        OP_TEXT | OP_BINARY if fragment.is_none() => {
            if fin {
                session.on_message(opcode, payload);
            } else {
                *fragment = Some((opcode, payload.to_vec()));
            }
            true
        }
        OP_CONTINUATION if fragment.is_some() => {
            let Some((first, data)) = fragment else {
                return false;
            };
            if data.len() + payload.len() > MAX_MESSAGE_BYTES {
                session.close(CLOSE_TOO_BIG);
                return false;
            }
            data.extend_from_slice(payload);
            if fin {
                let first = *first;
                let data = std::mem::take(data);
                *fragment = None;
                session.on_message(first, &data);
            }
            true
        }
        OP_PING => {
            session
                .peer
                .send(&websocket::control_frame(OP_PONG, payload));
            true
        }
        OP_PONG => true,
        OP_CLOSE => {
            // Echo the status code (if any) and end.
            let code = payload.get(..2).unwrap_or_default();
            session.peer.send(&websocket::control_frame(OP_CLOSE, code));
            false
        }
        // A new message inside a fragmented one, or a continuation of nothing.
        _ => {
            session.close(CLOSE_PROTOCOL_ERROR);
            false
        }
    }
}

/// A connection's protocol state: its socket, id and subscriptions.
#[derive(Debug)]
struct Session {
    peer: Rc<Peer>,
    channels: Rc<RefCell<Channels>>,
    id: String,
    subscriptions: HashSet<String>,
    /// With batched writes: the subscribers with deliveries queued by this read, each owed a
    /// flush at its end.
    batch: Option<Vec<Rc<Peer>>>,
}

impl Session {
    fn on_message(&mut self, opcode: u8, payload: &[u8]) {
        if opcode == OP_BINARY {
            return self.error("unsupported", "binary frames are not supported", None);
        }
        let frame = match messages::parse(payload) {
            Ok(frame) => frame,
            Err(message) => return self.error("bad_request", message, None),
        };
        match frame.kind.as_ref() {
            "subscribe" => self.subscribe(&frame),
            "unsubscribe" => self.unsubscribe(&frame),
            "ping" => self.peer.send(&messages::pong(frame.id, frame.timestamp)),
            _ => self.publish(&frame),
        }
    }

    fn subscribe(&mut self, frame: &Incoming<'_>) {
        let Some(channel) = frame.channel() else {
            return self.error("bad_request", "invalid channel", frame.id);
        };
        let mut channels = self.channels.borrow_mut();
        if !self.subscriptions.contains(channel.as_ref()) {
            self.subscriptions.insert(channel.to_string());
            channels.subscribe(&channel, &self.peer);
        }
        let offset = channels.offset(&channel);
        self.peer
            .send(&messages::subscribed(&channel, frame.id, offset));
    }

    fn unsubscribe(&mut self, frame: &Incoming<'_>) {
        let Some(channel) = frame.channel() else {
            return self.error("bad_request", "invalid channel", frame.id);
        };
        if !self.subscriptions.remove(channel.as_ref()) {
            let message = format!("not subscribed to {channel}");
            return self.error("not_subscribed", &message, frame.id);
        }
        self.channels.borrow_mut().unsubscribe(&channel, &self.peer);
        self.peer.send(&messages::unsubscribed(&channel, frame.id));
    }

    /// Any other type with a channel and a payload: encoded once, then written to every
    /// subscriber's socket from here, one non-blocking write each.
    fn publish(&mut self, frame: &Incoming<'_>) {
        if frame.is_server_only() {
            let message = format!("{} is a server-only type", frame.kind);
            return self.error("bad_request", &message, frame.id);
        }
        let Some(channel) = frame.channel() else {
            return self.error("bad_request", "invalid channel", frame.id);
        };
        let Some(payload) = frame.payload else {
            return self.error("bad_request", "a publish needs a payload", frame.id);
        };
        let Ok(given_id) = frame.publish_id() else {
            return self.error("bad_request", "invalid id", None);
        };
        let mut channels = self.channels.borrow_mut();
        let generated;
        let id = match &given_id {
            Some(id) => id.as_ref(),
            None => {
                generated = channels.message_id();
                generated.as_str()
            }
        };
        let target = channels.channel_mut(&channel);
        target.offset += 1;
        let delivery = Delivery {
            kind: &frame.kind,
            channel: &channel,
            payload,
            id,
            timestamp: messages::now_ms(),
            priority: frame.priority(),
            from: Publisher {
                user_id: None,
                connection_id: &self.id,
            },
            offset: target.offset,
        }
        .encode();
        if given_id.is_some() {
            self.peer.send(&messages::ack(id, target.offset));
        }
        match &mut self.batch {
            None => {
                for subscriber in &target.subscribers {
                    subscriber.send(&delivery);
                }
            }
            Some(batch) => {
                for subscriber in &target.subscribers {
                    if subscriber.queue(&delivery) {
                        batch.push(Rc::clone(subscriber));
                    }
                }
            }
        }
    }

    /// Writes what this read queued for each subscriber (batched writes only).
    fn flush_batch(&mut self) {
        if let Some(batch) = &mut self.batch {
            for peer in batch.drain(..) {
                peer.flush();
            }
        }
    }

    fn error(&self, code: &str, message: &str, id: Option<&serde_json::value::RawValue>) {
        self.peer.send(&messages::error(code, message, id));
    }

    /// Sends a close frame with `code`; the caller then ends the connection.
    fn close(&self, code: u16) {
        self.peer
            .send(&websocket::control_frame(OP_CLOSE, &code.to_be_bytes()));
    }

    /// Leaves every channel and stops further writes to this client.
    fn leave(&mut self) {
        let mut channels = self.channels.borrow_mut();
        for channel in self.subscriptions.drain() {
            channels.unsubscribe(&channel, &self.peer);
        }
        self.peer.close();
    }
}
