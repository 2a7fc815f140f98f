//! [`Backplane`] for [`RedisBackplane`]: each operation handed to the part that owns it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::call::publish_raw;
use super::handle::RedisBackplane;
use super::scripts;
use super::survey;
use crate::backplane::Backplane;
use crate::error::{BackplaneError, Result};
use crate::events::{EventReceiver, EventSink};
use crate::types::{
    GroupJoin, Health, Position, PresenceAction, PresenceEntry, PublishOptions, Published,
    Recovery, Scope, Survey,
};

impl Backplane for RedisBackplane {
    async fn publish_with(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Result<Published> {
        self.handle
            .shared
            .publish_with(channel, data, options)
            .await
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        self.handle.shared.subscribe(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.handle.shared.unsubscribe(channel).await
    }

    fn events(&self) -> EventReceiver {
        match &self.handle.shared.state.lock().events {
            Some(outlet) => outlet.subscribe(),
            // Shut down: a receiver whose sender is already gone, so `recv` says `None`.
            None => EventReceiver::new(broadcast::channel(1).1),
        }
    }

    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<()> {
        match &self.handle.shared.state.lock().events {
            Some(outlet) => {
                outlet.attach(sink);
                Ok(())
            }
            None => Err(BackplaneError::Closed),
        }
    }

    async fn position(&self, channel: &str) -> Result<Position> {
        Ok(self.handle.shared.read(channel, 0, "").await?.position)
    }

    async fn since(&self, channel: &str, offset: u64, epoch: &str) -> Result<Recovery> {
        self.handle.shared.read(channel, offset, epoch).await
    }

    async fn presence_set(
        &self,
        channel: &str,
        connection_id: &str,
        data: Bytes,
    ) -> Result<PresenceAction> {
        self.handle
            .shared
            .presence_set(channel, connection_id, data)
            .await
    }

    async fn presence_remove(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> Result<Option<PresenceEntry>> {
        self.handle
            .shared
            .presence_remove(channel, connection_id)
            .await
    }

    async fn presence_touch(&self, channel: &str, connection_id: &str) -> Result<()> {
        self.handle
            .shared
            .presence_touch(channel, connection_id)
            .await
    }

    async fn presence_list(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        self.handle.shared.presence_list(channel).await
    }

    async fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool> {
        let shared = &self.handle.shared;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        shared
            .on_redis(|mut conn| async move {
                scripts::lease_acquire(&mut conn, &shared.keys, key, holder, limit, ttl_ms).await
            })
            .await
    }

    async fn lease_release(&self, key: &str, holder: &str) -> Result<()> {
        let shared = &self.handle.shared;
        shared
            .on_redis(|mut conn| async move {
                scripts::lease_release(&mut conn, &shared.keys, key, holder).await
            })
            .await
    }

    async fn group_join(&self, group: &str, member: &str, ttl: Duration) -> Result<GroupJoin> {
        let shared = &self.handle.shared;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        shared
            .on_redis(|mut conn| async move {
                scripts::group_join(&mut conn, &shared.keys, group, member, ttl_ms).await
            })
            .await
    }

    async fn group_leave(&self, group: &str, member: &str) -> Result<bool> {
        let shared = &self.handle.shared;
        shared
            .on_redis(|mut conn| async move {
                scripts::group_leave(&mut conn, &shared.keys, group, member).await
            })
            .await
    }

    async fn group_reap(&self) -> Result<Vec<String>> {
        let shared = &self.handle.shared;
        shared
            .on_redis(|mut conn| async move { scripts::group_reap(&mut conn, &shared.keys).await })
            .await
    }

    async fn survey(&self, request: Bytes, timeout: Duration) -> Result<Survey> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let Some(live) = shared.live() else {
            return Ok(shared.survey_locally(&request));
        };
        let open = shared.surveys.open();
        let payload = survey::request(&shared.node, open.id(), &request);
        let publish = publish_raw(&live, shared.control_channel.clone(), payload);
        // Redis answers with how many instances listen on the control channel: each replies.
        let asked = match shared.call(live.generation, publish).await {
            Ok(listening) => usize::try_from(listening).unwrap_or(0),
            Err(_) => return Ok(shared.survey_locally(&request)),
        };
        let deadline = Instant::now() + timeout;
        while open.replied() < asked {
            if tokio::time::timeout_at(deadline, open.next_reply())
                .await
                .is_err()
            {
                break;
            }
        }
        let (answers, replied) = open.finish();
        Ok(Survey::new(answers, asked, replied, Scope::Cluster))
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.handle.shared.health.subscribe()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
