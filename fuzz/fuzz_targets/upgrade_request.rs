//! Arbitrary upgrade requests (method, path and query, headers): the transport answers every
//! one with a documented status and never panics.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_transport::{Authenticator, TokenVerifier, Transport, TransportConfig};

#[derive(Debug, Arbitrary)]
struct Upgrade {
    method: u8,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    peer: [u8; 4],
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    transport: Transport<MemoryBackplane>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let transport = runtime.block_on(async {
            let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
            let auth = Authenticator::jwt(TokenVerifier::hs256("fuzzing-secret").unwrap());
            Transport::new(
                hub,
                auth,
                TransportConfig::default().allowed_origins(Some(vec!["https://ok".into()])),
            )
        });
        Fixture { runtime, transport }
    })
}

fuzz_target!(|input: Upgrade| {
    let method = ["GET", "POST", "PUT", "HEAD", "OPTIONS"][usize::from(input.method) % 5];
    let mut builder = http::Request::builder().method(method);
    builder = builder
        .uri(http::Uri::try_from(input.target.as_str()).unwrap_or_else(|_| "/ws".parse().unwrap()));
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::header::HeaderValue::from_bytes(value),
        ) {
            builder = builder.header(name, value);
        }
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let fixture = fixture();
    let peer = SocketAddr::from((input.peer, 40000));
    let status = fixture
        .runtime
        .block_on(fixture.transport.upgrade(request, peer))
        .status()
        .as_u16();
    assert!(
        [101, 400, 401, 403, 429, 503].contains(&status),
        "undocumented status {status}"
    );
});
