//! The feed, for downstream consumers: the events this instance has applied, in log
//! order, each with its outcome, after a position; waiting for news when asked (a long
//! poll, or the pages of a stream). Reading it never blocks the projector or a write: it
//! reads committed snapshots through the read pool like every other query.

use std::time::Duration;

use tokio::time::Instant;

use super::{Service, ServiceError};
use crate::auth::Bearer;
use crate::read_model::{self, FeedFilter, FeedPage};

/// What a consumer asks of the feed.
#[derive(Debug, Clone)]
pub struct FeedRequest {
    /// The position to read after; `None` for the start of the log.
    pub after: Option<i64>,
    pub limit: u64,
    pub filter: FeedFilter,
    /// How long to wait for an event when there is none yet; zero answers at once.
    pub wait: Duration,
}

impl Service {
    /// A page of the feed. With a `wait`, it answers as soon as an event the filter keeps
    /// is applied, when the wait is over (with no items, and `next` past what was looked
    /// at), or when the server stops. The caller's token is checked on every read, so a
    /// revoked one stops a long poll or a stream at its next page.
    pub async fn feed(
        &self,
        caller: Bearer,
        mut request: FeedRequest,
    ) -> Result<FeedPage, ServiceError> {
        let deadline = Instant::now() + request.wait;
        let mut applied = self.outcomes.applied();
        let mut stopping = self.stopping.subscribe();
        loop {
            applied.borrow_and_update();
            let page = self.feed_page(caller, &request).await?;
            if !page.items.is_empty() || Instant::now() >= deadline || *stopping.borrow() {
                return Ok(page);
            }
            request.after = page.next.or(request.after);
            // A filter that kept nothing of a full window: read on, not wait.
            if page.more {
                continue;
            }
            tokio::select! {
                _ = applied.changed() => {}
                _ = stopping.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    async fn feed_page(
        &self,
        caller: Bearer,
        request: &FeedRequest,
    ) -> Result<FeedPage, ServiceError> {
        let (after, limit, filter) = (request.after, request.limit, request.filter.clone());
        let client = self.admin.credential.clone();
        let page = self
            .read(move |conn| {
                super::access::authorize_feed(conn, &caller, &client)?;
                Ok(read_model::feed_page(conn, after, limit, &filter)?)
            })
            .await?;
        let events = self.events_at(page.positions()).await?;
        Ok(page.with_events(events)?)
    }
}
