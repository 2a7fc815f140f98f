//! The byte streams a session reads and writes.
//!
//! A plain TCP connection is split: the session reads it, and its write half is shared by
//! the session's writer and the fan-out, which writes to it directly ([`SharedTcp`],
//! non-blocking writes through `&self`).
//! Any other stream (TLS, a test's duplex) is split in two halves owned by the session.
//! Client frames are read by [`FrameReader`](crate::frames::FrameReader); everything the
//! server sends, replies to pings and closes included, goes through the outbox, so every
//! byte reaches the socket in whole frames, in one order.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;

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

/// Writes `batch` in order, removing what was written: after an error or a cancellation,
/// `batch` holds exactly what is left, starting at the first unwritten byte.
#[cfg(test)]
pub(crate) async fn write_batch<W>(writer: &mut W, batch: &mut Vec<Bytes>) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    std::future::poll_fn(|cx| poll_write_all(Pin::new(&mut *writer), cx, batch)).await?;
    writer.flush().await
}

/// Writes all of `batch` in order, removing what was written, so that `batch` always holds
/// exactly what is left: a poll that returns `Pending` loses nothing. Not flushed.
pub(crate) fn poll_write_all<W: AsyncWrite>(
    mut writer: Pin<&mut W>,
    cx: &mut Context<'_>,
    batch: &mut Vec<Bytes>,
) -> Poll<io::Result<()>> {
    while !batch.is_empty() {
        // The buffer list is built on the stack in each poll, so that it is no part of the
        // session's future: every idle session's task would carry it otherwise.
        let written = ready!(poll_write_batch(writer.as_mut(), cx, batch))?;
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        advance(batch, written);
    }
    Poll::Ready(Ok(()))
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
