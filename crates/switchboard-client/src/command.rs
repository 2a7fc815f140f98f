//! What the client handles ask of the connection task.

use switchboard_protocol::{ChannelName, PresenceUpdate};
use tokio::sync::oneshot;

use crate::listener::Listener;

/// What the client handles ask of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        channel: ChannelName,
        listener: Listener,
    },
    Unsubscribe {
        channel: ChannelName,
        listener: u64,
    },
    Presence(PresenceUpdate),
    Close {
        done: Option<oneshot::Sender<()>>,
    },
}
