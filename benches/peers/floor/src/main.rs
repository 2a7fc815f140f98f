//! The floor peer: the smallest Rust server that does the benchmarks' fan-out job, as the
//! practical CPU limit on the machine beside switchboard, Node `ws` and Bun
//! (`benches/peers/README.md`).
//!
//! It speaks the subset of Protocol v1 that `loadgen` uses, with the same frame shapes as
//! the other peers, and does the least work a publish can cost: one JSON parse that keeps the
//! payload's bytes, one encoding of the whole WebSocket frame, then one non-blocking write
//! per subscriber straight from the publisher's task. Only bytes a socket does not take wait
//! in that connection's pending buffer, for its own task to write when the socket is
//! writable. One thread, no locks, no channels between tasks.
//!
//! `PORT` (default 0: any free port) and `HOST` (default `127.0.0.1`) come from the
//! environment; it prints `listening on ws://HOST:PORT/ws` once listening and exits 0 on
//! SIGTERM or SIGINT. `FLOOR_BATCH_WRITES=1` (off by default) writes the deliveries of every
//! publish read in one go with one write per subscriber at the end of the read, as
//! uWebSockets does within one event-loop iteration: fewer writes when publishes arrive in
//! bursts, no added wait.

mod channels;
mod connection;
mod messages;
mod peer;
mod websocket;

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::LocalSet;

use channels::Channels;

/// Pending connections the kernel queues (the Node peer's backlog): the idle scenario opens
/// thousands at once.
const LISTEN_BACKLOG: u32 = 4096;
/// How long to stop accepting after an accept error (out of file descriptors, typically).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".to_owned());
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("floor peer: PORT must be a port number (0-65535), got {port:?}");
        return ExitCode::from(2);
    };
    let batch_writes = match std::env::var("FLOOR_BATCH_WRITES").as_deref() {
        Err(_) | Ok("" | "0") => false,
        Ok("1") => true,
        Ok(other) => {
            eprintln!("floor peer: FLOOR_BATCH_WRITES must be 0 or 1, got {other:?}");
            return ExitCode::from(2);
        }
    };
    let addr = match (host.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => {
            eprintln!("floor peer: cannot resolve HOST {host:?}");
            return ExitCode::from(2);
        }
    };
    // One thread, as switchboard runs in the benchmarks (TOKIO_WORKER_THREADS=1, one core).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floor peer: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    LocalSet::new().block_on(&runtime, async move {
        match serve(addr, batch_writes).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("floor peer: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Accepts connections until SIGTERM or SIGINT.
async fn serve(addr: SocketAddr, batch_writes: bool) -> io::Result<()> {
    let listener = listen(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    announce(listener.local_addr()?);
    let channels = Rc::new(RefCell::new(Channels::new()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let channels = Rc::clone(&channels);
                    tokio::task::spawn_local(connection::serve(stream, channels, batch_writes));
                }
                Err(e) => {
                    eprintln!("floor peer: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            _ = terminate.recv() => return shutdown("SIGTERM"),
            _ = interrupt.recv() => return shutdown("SIGINT"),
        }
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[expect(
    clippy::print_stdout,
    reason = "the line the benchmark scripts wait for"
)]
fn announce(addr: SocketAddr) {
    println!("listening on ws://{addr}/ws");
}

#[expect(
    clippy::print_stdout,
    reason = "the exit line, as the other peers print it"
)]
fn shutdown(signal: &str) -> io::Result<()> {
    println!("floor peer: {signal}, exiting");
    Ok(())
}
