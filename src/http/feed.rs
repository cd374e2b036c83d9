//! The event feed over HTTP: `GET .../events` (a page after a position, or a long poll
//! with `waitMs`) and `GET .../events/stream` (Server-Sent Events, resumed with
//! `Last-Event-ID`). Both serve the same items: `{position, outcome, code, event}`, the
//! event as the log holds it and its outcome on this instance.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::ApiError;
use super::extract::Caller;
use crate::domain::EventData;
use crate::read_model::{FeedFilter, FeedItem, FeedPage};
use crate::service::{FeedRequest, Service};
use crate::settings::FeedSettings;

/// The most events one page holds.
const PAGE_SIZE_MAX: u64 = 1000;
/// Events per page when a request does not say.
const PAGE_SIZE_DEFAULT: u64 = 100;
/// The longest a long poll waits.
const WAIT_MAX: Duration = Duration::from_secs(30);

/// The streams open, and the bounds of each.
pub struct Streams {
    open: Arc<Semaphore>,
    max: usize,
    buffer: usize,
    heartbeat: Duration,
}

impl Streams {
    /// A place for a stream or a long poll, given back when dropped; 503 when none is free.
    fn place(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        (self.open.clone().try_acquire_owned()).map_err(|_| ApiError::TooManyStreams)
    }

    /// Streams and long polls open now.
    pub fn open(&self) -> usize {
        self.max - self.open.available_permits()
    }

    pub fn new(settings: &FeedSettings) -> Self {
        Self {
            open: Arc::new(Semaphore::new(settings.streams_max)),
            max: settings.streams_max,
            buffer: settings.stream_buffer,
            heartbeat: Duration::from_millis(settings.heartbeat_ms),
        }
    }
}

/// A feed request's query. Numbers are read from text by hand: serde cannot read them
/// through a `String`-only query with good errors.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedQuery {
    after: Option<String>,
    page_size: Option<String>,
    wait_ms: Option<String>,
    types: Option<String>,
    group: Option<String>,
    user: Option<String>,
    include_rejected: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// A position as a consumer sends it back: the text of a log offset.
fn position(text: &str, name: &str) -> Result<i64, ApiError> {
    (text.trim().parse::<i64>().ok())
        .filter(|p| *p >= 0)
        .ok_or_else(|| {
            bad(format!(
                "{name} must be a position this feed gave (a number)."
            ))
        })
}

impl FeedQuery {
    /// The request, reading after `resume` (a `Last-Event-ID`) if there is one, else
    /// after `after`.
    fn request(&self, resume: Option<&str>, wait_allowed: bool) -> Result<FeedRequest, ApiError> {
        let after = match (resume, &self.after) {
            (Some(id), _) => Some(position(id, "Last-Event-ID")?),
            (None, Some(after)) => Some(position(after, "after")?),
            (None, None) => None,
        };
        let limit = match &self.page_size {
            None => PAGE_SIZE_DEFAULT,
            Some(text) => (text.parse::<u64>().ok())
                .filter(|n| (1..=PAGE_SIZE_MAX).contains(n))
                .ok_or_else(|| bad(format!("pageSize must be 1 to {PAGE_SIZE_MAX}.")))?,
        };
        let wait = match (&self.wait_ms, wait_allowed) {
            (None, _) => Duration::ZERO,
            (Some(_), false) => return Err(bad("waitMs is for pages; a stream waits anyway.")),
            (Some(text), true) => (text.parse::<u64>().ok())
                .map(Duration::from_millis)
                .filter(|wait| *wait <= WAIT_MAX)
                .ok_or_else(|| bad(format!("waitMs must be 0 to {} ms.", WAIT_MAX.as_millis())))?,
        };
        Ok(FeedRequest {
            after,
            limit,
            filter: self.filter()?,
            wait,
        })
    }

    fn filter(&self) -> Result<FeedFilter, ApiError> {
        let types = (self.types.iter())
            .flat_map(|types| types.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| match EventData::PUBLIC_TYPES.contains(&t) {
                true => Ok(t.to_owned()),
                false => Err(bad(format!(
                    "types names {t}, which is no event type of the feed ({}).",
                    EventData::PUBLIC_TYPES.join(", ")
                ))),
            })
            .collect::<Result<_, _>>()?;
        let id = |text: &Option<String>, name: &str| {
            (text.as_deref())
                .map(|t| Uuid::try_parse(t).map_err(|_| bad(format!("{name} must be an id."))))
                .transpose()
        };
        let include_rejected = match self.include_rejected.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(bad("includeRejected must be true or false.")),
        };
        Ok(FeedFilter {
            types,
            group: id(&self.group, "group")?,
            user: id(&self.user, "user")?,
            include_rejected,
        })
    }
}

/// A page as the feed shows it: its items (see [`FeedItem::to_json`]) and where the next
/// page starts.
#[derive(Serialize)]
struct Page {
    items: Vec<Box<RawValue>>,
    next: Option<String>,
}

fn shown(found: &FeedItem) -> Result<Box<RawValue>, ApiError> {
    let text = found.to_json()?;
    Ok(RawValue::from_string(text).map_err(anyhow::Error::new)?)
}

/// `GET .../events?after=&pageSize=&waitMs=&types=&group=&user=&includeRejected=`. A long
/// poll holds one of the places streams have (503 when none is free).
pub async fn list(
    service: web::Data<Service>,
    streams: web::Data<Streams>,
    caller: Caller,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = query.request(None, true)?;
    let _place = match request.wait.is_zero() {
        true => None,
        false => Some(streams.place()?),
    };
    let after = request.after;
    let found = service.feed(caller.0, request).await?;
    let page = Page {
        items: found.items.iter().map(shown).collect::<Result<_, _>>()?,
        next: found.next.or(after).map(|p| p.to_string()),
    };
    Ok(HttpResponse::Ok().json(page))
}

/// `GET .../events/stream`: the feed as Server-Sent Events, each event a message with
/// `id:` its position, `event:` its type and `data:` the item; a comment when nothing has
/// happened for a heartbeat. It ends when the server stops, when the caller's token stops
/// standing, or when the client falls a buffer behind (it resumes from the last `id:` it
/// read). 503 when as many streams are open as are served.
pub async fn stream(
    service: web::Data<Service>,
    streams: web::Data<Streams>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let resume = (req.headers().get("Last-Event-ID"))
        .map(|id| {
            id.to_str()
                .map_err(|_| bad("Last-Event-ID must be a position."))
        })
        .transpose()?;
    let request = query.request(resume, false)?;
    let permit = streams.place()?;
    // The first page before the answer, so that a token that does not stand is a 401.
    let first = service.feed(caller.0, request.clone()).await?;
    let (send, receive) = mpsc::channel(streams.buffer);
    let heartbeat = streams.heartbeat;
    let service = service.into_inner();
    tokio::spawn(async move {
        pump(&service, caller, request, first, &send, heartbeat).await;
        drop(permit);
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        // Proxies such as nginx would otherwise hold the messages back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ReceiverStream::new(receive)))
}

type Sink = mpsc::Sender<Result<Bytes, Infallible>>;

/// Sends pages of the feed to the stream's client until it is gone, falls behind, the
/// token stops standing, or the server stops.
async fn pump(
    service: &Service,
    caller: Caller,
    mut request: FeedRequest,
    mut found: FeedPage,
    send: &Sink,
    heartbeat: Duration,
) {
    request.wait = heartbeat;
    loop {
        let sent = match found.items.is_empty() {
            // A full buffer already shows the stream is alive.
            true => !matches!(
                send.try_send(Ok(Bytes::from_static(b": heartbeat\n\n"))),
                Err(mpsc::error::TrySendError::Closed(_))
            ),
            false => offer_all(service, send, &found.items, heartbeat).await,
        };
        if !sent || *service.stopping.borrow() {
            return;
        }
        request.after = found.next.or(request.after);
        found = tokio::select! {
            next = service.feed(caller.0, request.clone()) => match next {
                Ok(next) => next,
                Err(_) => return,
            },
            () = send.closed() => return,
        };
    }
}

/// Queues the events for the client, each waiting at most `patience` for room; false when
/// the client is gone, or a buffer behind for that long (too slow to keep up: its stream
/// ends, and it resumes from the last event it read).
async fn offer_all(service: &Service, send: &Sink, items: &[FeedItem], patience: Duration) -> bool {
    let mut stopping = service.stopping.subscribe();
    for found in items {
        let Ok(data) = found.to_json() else {
            return false;
        };
        let message = format!(
            "id: {}\nevent: {}\ndata: {data}\n\n",
            found.entry.position, found.entry.event_type
        );
        let sent = tokio::select! {
            sent = tokio::time::timeout(patience, send.send(Ok(Bytes::from(message)))) => sent,
            _ = stopping.wait_for(|stopping| *stopping) => return false,
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                tracing::info!(
                    position = found.entry.position,
                    "an event stream's client fell behind; ending the stream"
                );
                return false;
            }
        }
    }
    true
}
