//! Refreshing the token before it expires, with a token source.

use std::time::Duration;

use switchboard_protocol::{ClientFrame, Refresh};
use tokio::time::Instant;

use super::task::Driver;

/// How long before trying again when a refresh found no token or was refused.
pub(super) const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// The prefix of `refresh` request ids.
pub(super) const REFRESH_ID: &str = "refresh-";

impl Driver {
    /// When to refresh a token that expires at `expires_at` (ms since the epoch): at four
    /// fifths of its remaining lifetime. `None` without a token source or an expiry.
    pub(super) fn refresh_due(&self, expires_at: Option<u64>, now: Instant) -> Option<Instant> {
        self.settings.endpoint.token.source()?;
        let remaining = expires_at?.saturating_sub(switchboard_protocol::now_ms());
        Some(now + Duration::from_millis(remaining / 5 * 4))
    }

    /// Sends a freshly fetched token as a `refresh`; without one, tries again later.
    pub(super) fn send_refresh(&mut self, token: Option<String>) {
        if !self.connected {
            return;
        }
        let Some(token) = token else {
            self.refresh_at = Some(Instant::now() + REFRESH_RETRY);
            return;
        };
        self.next_request += 1;
        self.out.push(
            ClientFrame::Refresh(Refresh {
                token,
                id: Some(format!("{REFRESH_ID}{}", self.next_request)),
            })
            .encode(),
        );
    }
}
