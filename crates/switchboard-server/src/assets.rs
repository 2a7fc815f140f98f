//! The demo page and the browser client, embedded in the binary.

/// The demo page served at `/`: connection quality, presence, a live event feed and chat
/// with delivery receipts and an offline queue. It loads [`CLIENT_JS`] from `/client.js`.
pub const DEMO_HTML: &str = include_str!("../assets/index.html");

/// The dependency-free browser client served at `/client.js`: reconnect with backoff and
/// full jitter, resubscribe with recovery, an offline queue with priorities persisted in
/// `localStorage`, and connection quality from application-level pings. Copy it freely.
pub const CLIENT_JS: &str = include_str!("../assets/client.js");
