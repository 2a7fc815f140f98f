//! End-to-end tests across switchboard's crates live in `tests/`: each one composes real
//! parts — sockets on 127.0.0.1, TLS handshakes with generated certificates, a real
//! `redis-server` — the way an embedding service would.
