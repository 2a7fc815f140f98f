//! The byte streams a session reads and writes.
//!
//! A plain TCP connection is split: the session reads it, and its write half is shared by
//! the session's writer and the fan-out, which writes to it directly ([`SharedTcp`],
//! non-blocking writes through `&self`).
//! Any other stream (TLS, a test's duplex) is split in two halves owned by the session.
//! tungstenite reads client frames through [`SessionIo`]; the few frames it writes by itself
//! (pongs, the reply to a close) go through the outbox, so every byte reaches the socket in
//! whole frames, in one order.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedWriteHalf;

use crate::outbox::SessionOutbox;

/// The write half of a TCP stream, shared between the session's writer and the fan-out
/// (which writes through `&self` without blocking). The read half stays with the session:
/// tokio's own reader skips the extra `read` that would only say "would block" after a short
/// read.
#[derive(Debug, Clone)]
pub(crate) struct SharedTcp(pub(crate) Arc<OwnedWriteHalf>);

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().as_ref().poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().as_ref().poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The write side shuts down when the last handle goes; the close frame says goodbye.
        Poll::Ready(Ok(()))
    }
}

/// What tungstenite reads client frames from: bytes already read with the upgrade request
/// first, then the stream. What it writes goes to the outbox as control frames.
///
/// It also counts the bytes it hands to tungstenite, and the session counts the wire size
/// of every frame tungstenite returns ([`SessionIo::frame_returned`]): when the two agree,
/// tungstenite holds no unread byte, and its read buffer can be dropped with it
/// ([`SessionIo::detach`]). tungstenite grows that buffer to the largest frame it ever
/// read and never shrinks it, so without this one 60 KB message would cost its connection
/// 60 KB for life.
pub(crate) struct SessionIo<R> {
    pre: Bytes,
    /// `None` only in a stream the session has replaced ([`SessionIo::detach`]).
    read: Option<R>,
    outbox: Arc<SessionOutbox>,
    /// Bytes handed to tungstenite since this stream was attached.
    handed: u64,
    /// Wire bytes of the frames tungstenite returned since then, as the session counted
    /// them; `u64::MAX` once a frame's size could not be known (no release after that).
    consumed: u64,
}

impl<R> SessionIo<R> {
    /// `pre` is what the HTTP server read past the upgrade request, a view into its read
    /// buffer (kilobytes): a copy is kept, if anything, so that the buffer can go.
    pub(crate) fn new(pre: &[u8], read: R, outbox: Arc<SessionOutbox>) -> Self {
        let pre = if pre.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(pre)
        };
        Self {
            pre,
            read: Some(read),
            outbox,
            handed: 0,
            consumed: 0,
        }
    }

    /// Counts a frame tungstenite returned: `payload` bytes in a client frame (masked, so
    /// its header is 6, 8 or 14 bytes). `None`: its size is unknown.
    pub(crate) fn frame_returned(&mut self, payload: Option<usize>) {
        self.consumed = match payload {
            Some(len) => {
                let header = match len {
                    0..=125 => 6,
                    126..=65_535 => 8,
                    _ => 14,
                };
                self.consumed.saturating_add((header + len) as u64)
            }
            None => u64::MAX,
        };
    }

    /// Whether every byte handed to tungstenite was part of a frame it returned: nothing is
    /// buffered, not even part of a frame. A fragmented message makes the count fall short
    /// for good (its frames' headers are not seen), so the answer errs towards "no".
    pub(crate) fn drained(&self) -> bool {
        self.handed == self.consumed
    }

    /// Moves the stream into a new `SessionIo` with fresh counts, leaving this one empty
    /// (it reads end-of-stream from now on). `None` if it was detached already.
    pub(crate) fn detach(&mut self) -> Option<Self> {
        Some(Self {
            pre: std::mem::take(&mut self.pre),
            read: Some(self.read.take()?),
            outbox: Arc::clone(&self.outbox),
            handed: 0,
            consumed: 0,
        })
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SessionIo<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if this.pre.has_remaining() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre[..n]);
            this.pre.advance(n);
            if !this.pre.has_remaining() {
                this.pre = Bytes::new();
            }
        } else {
            let Some(read) = this.read.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            ready!(Pin::new(read).poll_read(cx, buf))?;
        }
        this.handed += (buf.filled().len() - before) as u64;
        Poll::Ready(Ok(()))
    }
}

impl<R> AsyncWrite for SessionIo<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // tungstenite writes whole frames from the start of its buffer, and this takes all
        // of it, so every call starts on a frame boundary.
        self.outbox.push_control(&Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes `batch` in order, removing what was written: after an error or a cancellation,
/// `batch` holds exactly what is left, starting at the first unwritten byte.
pub(crate) async fn write_batch<W>(writer: &mut W, batch: &mut Vec<Bytes>) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    while !batch.is_empty() {
        // The buffer list is built on the stack in each poll, so it is not part of this
        // future: every idle session's task would carry it otherwise.
        let written =
            std::future::poll_fn(|cx| poll_write_batch(Pin::new(writer), cx, batch)).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        advance(batch, written);
    }
    writer.flush().await
}

/// One write of as much of `batch` as the writer takes: vectored when it can.
fn poll_write_batch<W: AsyncWrite>(
    writer: Pin<&mut W>,
    cx: &mut Context<'_>,
    batch: &[Bytes],
) -> Poll<io::Result<usize>> {
    /// At most this many buffers per `writev`.
    const MAX_IOV: usize = 64;
    if batch.len() > 1 && writer.is_write_vectored() {
        let mut slices = [io::IoSlice::new(&[]); MAX_IOV];
        let count = batch.len().min(MAX_IOV);
        for (slice, bytes) in slices.iter_mut().zip(batch) {
            *slice = io::IoSlice::new(bytes);
        }
        writer.poll_write_vectored(cx, &slices[..count])
    } else {
        writer.poll_write(cx, &batch[0])
    }
}

/// Drops the first `n` bytes of `batch`.
fn advance(batch: &mut Vec<Bytes>, mut n: usize) {
    let whole = batch
        .iter()
        .take_while(|b| {
            if n >= b.len() {
                n -= b.len();
                true
            } else {
                false
            }
        })
        .count();
    batch.drain(..whole);
    if n > 0 {
        batch[0].advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_drops_whole_buffers_then_slices_the_next() {
        let mut batch = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        advance(&mut batch, 4);
        assert_eq!(
            batch,
            vec![Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]
        );
        advance(&mut batch, 1);
        assert_eq!(batch, vec![Bytes::from_static(b"fgh")]);
        advance(&mut batch, 3);
        assert!(batch.is_empty());
    }

    #[tokio::test]
    async fn a_batch_written_through_short_writes_arrives_whole_and_in_order() {
        // A duplex with a 7-byte buffer forces many short writes.
        let (mut writer, mut reader) = tokio::io::duplex(7);
        let mut batch: Vec<Bytes> = (0..20u8)
            .map(|i| Bytes::from(vec![b'a' + i; usize::from(i) + 1]))
            .collect();
        let expected: Vec<u8> = batch.iter().flat_map(|b| b.to_vec()).collect();
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got)
                .await
                .map(|_| got)
        });
        write_batch(&mut writer, &mut batch).await.unwrap();
        assert!(batch.is_empty());
        drop(writer);
        assert_eq!(read.await.unwrap().unwrap(), expected);
    }
}
