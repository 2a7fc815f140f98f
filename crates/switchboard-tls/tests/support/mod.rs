//! What the tests share: a throwaway PKI and a wss echo server and client.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub(crate) mod pki;
pub(crate) mod wss;
