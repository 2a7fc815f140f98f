//! Test helpers shared by switchboard's test suites.
//!
//! [`RedisServer`] starts a real `redis-server` on a free port in a temporary directory and
//! kills it on drop, so tests never share a server or depend on a fixed port. With
//! `SWITCHBOARD_TEST_REDIS_URL` set, [`RedisServer::start`] uses that server instead (fault
//! tests, which must kill or pause the server, always spawn their own with
//! [`RedisServer::spawn`]).
//!
//! When no server can be had, the error says how to fix it: run `scripts/test` (which installs
//! `redis-server`), install it with `apt-get install redis-server`, or point
//! `SWITCHBOARD_TEST_REDIS_URL` at a server.

mod redis_server;

pub use redis_server::{REDIS_URL_ENV, RedisServer, RedisServerError};
