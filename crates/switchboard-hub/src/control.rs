//! Operations on the whole cluster: a user's connections on every instance (disconnect,
//! subscribe, unsubscribe) and who is on which channel anywhere.
//!
//! Each is one [`Backplane::survey`]: the request (JSON, below) reaches every hub's sink on
//! every instance, each acts on its own connections and answers with what it did or saw, and
//! the asking hub adds the answers up. An instance that does not answer within
//! [`HubConfig::survey_timeout`](crate::HubConfig::survey_timeout) is missing from the sum,
//! and the result says it is incomplete.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_backplane::Backplane;
use switchboard_metrics::ServerCommand;
use switchboard_protocol::{ChannelName, StreamPosition};

use crate::hub::{Hub, HubError};
use crate::outbox::Command;
use crate::state::HubInner;

/// The lowest close code [`Hub::disconnect_user`] accepts: the application range 4000–4999.
const MIN_CLOSE: u16 = 4000;
/// The highest.
const MAX_CLOSE: u16 = 4999;
/// The longest close reason a WebSocket close frame carries.
const MAX_REASON: usize = 123;

/// A question or an order to every hub, as it travels (JSON). Unknown operations are
/// ignored, so that instances of different versions can run side by side.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Disconnect {
        user: String,
        code: u16,
        reason: String,
    },
    Subscribe {
        user: String,
        channel: ChannelName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<StreamPosition>,
    },
    Unsubscribe {
        user: String,
        channel: ChannelName,
    },
    Channels {
        prefix: String,
    },
    Occupancy {
        channel: ChannelName,
    },
}

/// One hub's answer.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Answer {
    /// Connections acted on, or on the channel.
    #[serde(default)]
    connections: usize,
    /// For `occupancy`: the users among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    users: Vec<String>,
    /// For `channels`: each channel and its local subscribers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    channels: Vec<(String, usize)>,
}

/// This hub's answer to a survey `request` from any instance; `None` for a request it does
/// not know. Runs inside the backplane: everything here is quick and never waits.
pub(crate) fn answer<B: Backplane>(hub: &HubInner<B>, request: &[u8]) -> Option<Bytes> {
    let request: Request = serde_json::from_slice(request).ok()?;
    let answer = match request {
        Request::Disconnect { user, code, reason } => {
            let reason: Arc<str> = reason.into();
            order(hub, &user, ServerCommand::Disconnect, None, |_| {
                Some(Command::Disconnect {
                    code,
                    reason: Arc::clone(&reason),
                })
            })
        }
        Request::Subscribe {
            user,
            channel,
            since,
        } => order(hub, &user, ServerCommand::Subscribe, Some(&channel), |_| {
            Some(Command::Subscribe {
                channel: channel.clone(),
                since: since.clone(),
            })
        }),
        Request::Unsubscribe { user, channel } => {
            // Only the connections subscribed to it.
            let subscribed: HashSet<u64> =
                hub.registry.subscriber_keys(&channel).into_iter().collect();
            order(
                hub,
                &user,
                ServerCommand::Unsubscribe,
                Some(&channel),
                |key| {
                    subscribed.contains(&key).then(|| Command::Unsubscribe {
                        channel: channel.clone(),
                    })
                },
            )
        }
        Request::Channels { prefix } => Answer {
            channels: hub
                .registry
                .channels_with_prefix(&prefix)
                .into_iter()
                .map(|(name, count)| (name.to_string(), count))
                .collect(),
            ..Answer::default()
        },
        Request::Occupancy { channel } => {
            let keys = hub.registry.subscriber_keys(&channel);
            Answer {
                connections: keys.len(),
                users: hub
                    .users
                    .users_of(&keys)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                ..Answer::default()
            }
        }
    };
    Some(Bytes::from(
        serde_json::to_vec(&answer).expect("answers always serialize"),
    ))
}

/// Hands each local connection of `user` the command `command` gives for its key (none:
/// skipped); counts and audits those that took it, and answers how many did.
fn order<B: Backplane>(
    hub: &HubInner<B>,
    user: &str,
    action: ServerCommand,
    channel: Option<&ChannelName>,
    command: impl Fn(u64) -> Option<Command>,
) -> Answer {
    let connections = hub
        .users
        .of(user)
        .iter()
        .filter(|(key, outbox)| command(*key).is_some_and(|c| outbox.command(c)))
        .count();
    record(hub, action, user, channel, connections);
    Answer {
        connections,
        ..Answer::default()
    }
}

/// Counts the orders carried to connections of this instance, and writes them to the audit
/// log as the denials are: who was acted on, how, and on how many connections.
fn record<B: Backplane>(
    hub: &HubInner<B>,
    action: ServerCommand,
    user: &str,
    channel: Option<&ChannelName>,
    connections: usize,
) {
    if connections > 0 {
        hub.metrics.server_commands(action, connections as u64);
        tracing::info!(
            target: "switchboard::audit",
            event = "server_action",
            action = action.as_str(),
            user_id = user,
            channel = channel.map_or("-", ChannelName::as_str),
            connections,
            "server api"
        );
    }
}

/// What every instance answered to a cluster-wide operation, and whether every one did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterAnswer<T> {
    /// The answers added up.
    pub value: T,
    /// Whether every instance answered in time
    /// ([`Survey::is_complete`](switchboard_backplane::Survey::is_complete)): when not, some
    /// instance's share is missing (an order still reaches an instance that answers late).
    pub complete: bool,
}

/// A channel with subscribers somewhere in the cluster, from [`Hub::channels`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelCount {
    /// The channel.
    pub channel: String,
    /// How many connections are subscribed to it, on every instance together.
    pub connections: usize,
}

/// Who is on a channel across the cluster, from [`Hub::occupancy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Occupancy {
    /// Subscribed connections, on every instance together.
    pub connections: usize,
    /// Distinct signed-in users among them (anonymous connections count in `connections`
    /// only).
    pub users: usize,
}

impl<B: Backplane> Hub<B> {
    async fn survey(&self, request: &Request) -> Result<(Vec<Answer>, bool), HubError> {
        let bytes = Bytes::from(serde_json::to_vec(request).expect("requests always serialize"));
        let survey = self
            .inner
            .backplane
            .survey(bytes, self.inner.config.survey_timeout)
            .await?;
        let complete = survey.is_complete();
        let answers = survey
            .answers
            .iter()
            .filter_map(|a| serde_json::from_slice::<Answer>(a).ok())
            .collect();
        Ok((answers, complete))
    }

    async fn survey_count(&self, request: &Request) -> Result<ClusterAnswer<usize>, HubError> {
        let (answers, complete) = self.survey(request).await?;
        Ok(ClusterAnswer {
            value: answers.iter().map(|a| a.connections).sum(),
            complete,
        })
    }

    /// Closes every connection of `user`, on every instance, with `code` (4000–4999; 4003,
    /// [`CloseCode::Disconnected`](switchboard_protocol::CloseCode::Disconnected), is the
    /// usual one) and `reason` (at most 123 bytes), after what is already queued for each.
    /// Returns how many connections were closed.
    ///
    /// # Errors
    /// [`HubError::InvalidClose`] for a code or reason out of range;
    /// [`HubError::Backplane`] after the backplane shut down.
    pub async fn disconnect_user(
        &self,
        user: &str,
        code: u16,
        reason: &str,
    ) -> Result<ClusterAnswer<usize>, HubError> {
        if !(MIN_CLOSE..=MAX_CLOSE).contains(&code) || reason.len() > MAX_REASON {
            return Err(HubError::InvalidClose);
        }
        self.survey_count(&Request::Disconnect {
            user: user.to_owned(),
            code,
            reason: reason.to_owned(),
        })
        .await
    }

    /// Subscribes every connection of `user`, on every instance, to `channel`, without
    /// authorization (the server decides), recovering from `since` when given: each client
    /// gets `subscribed` with `"server": true` and then what it missed, as for its own
    /// subscribe. Returns how many connections were given the order.
    ///
    /// # Errors
    /// [`HubError::Backplane`] after the backplane shut down.
    pub async fn subscribe_user(
        &self,
        user: &str,
        channel: &ChannelName,
        since: Option<StreamPosition>,
    ) -> Result<ClusterAnswer<usize>, HubError> {
        self.survey_count(&Request::Subscribe {
            user: user.to_owned(),
            channel: channel.clone(),
            since,
        })
        .await
    }

    /// Ends the subscription to `channel` of every connection of `user`, on every instance:
    /// each client gets `unsubscribed` with `"reason": "server"`. Returns how many
    /// connections were subscribed and were given the order.
    ///
    /// # Errors
    /// [`HubError::Backplane`] after the backplane shut down.
    pub async fn unsubscribe_user(
        &self,
        user: &str,
        channel: &ChannelName,
    ) -> Result<ClusterAnswer<usize>, HubError> {
        self.survey_count(&Request::Unsubscribe {
            user: user.to_owned(),
            channel: channel.clone(),
        })
        .await
    }

    /// Every channel whose name starts with `prefix` (`""`: all) that has at least one
    /// subscriber on some instance, with its subscribers on all of them, sorted by name.
    ///
    /// # Errors
    /// [`HubError::Backplane`] after the backplane shut down.
    pub async fn channels(
        &self,
        prefix: &str,
    ) -> Result<ClusterAnswer<Vec<ChannelCount>>, HubError> {
        let (answers, complete) = self
            .survey(&Request::Channels {
                prefix: prefix.to_owned(),
            })
            .await?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (channel, count) in answers.into_iter().flat_map(|a| a.channels) {
            *counts.entry(channel).or_default() += count;
        }
        let mut value: Vec<ChannelCount> = counts
            .into_iter()
            .map(|(channel, connections)| ChannelCount {
                channel,
                connections,
            })
            .collect();
        value.sort_unstable_by(|a, b| a.channel.cmp(&b.channel));
        Ok(ClusterAnswer { value, complete })
    }

    /// How many connections are subscribed to `channel` on every instance together, and
    /// how many distinct users they belong to.
    ///
    /// # Errors
    /// [`HubError::Backplane`] after the backplane shut down.
    pub async fn occupancy(
        &self,
        channel: &ChannelName,
    ) -> Result<ClusterAnswer<Occupancy>, HubError> {
        let (answers, complete) = self
            .survey(&Request::Occupancy {
                channel: channel.clone(),
            })
            .await?;
        let connections = answers.iter().map(|a| a.connections).sum();
        let users: HashSet<&str> = answers
            .iter()
            .flat_map(|a| a.users.iter().map(String::as_str))
            .collect();
        Ok(ClusterAnswer {
            value: Occupancy {
                connections,
                users: users.len(),
            },
            complete,
        })
    }
}
