//! Builds the running service from settings: the log, the projector, the read model, the
//! bootstrap, and the HTTP server; and runs them until the server stops.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::{Context, bail};

use crate::auth::{self, Hasher, Tokens};
use crate::http;
use crate::log::{EmbeddedLog, EmbeddedLogSettings, EventLog, KafkaLog};
use crate::projector::{Outcomes, Projector, ProjectorSettings};
use crate::read_model::ClientCredential;
use crate::read_model::ReadModel;
use crate::service::{AdminClient, Service};
use crate::settings::Secret;
use crate::settings::Settings;
use crate::throttle::LoginThrottle;
use crate::{bootstrap, files, secrets};

/// The configured backend: Kafka when brokers are set, else the embedded file.
pub async fn open_log(settings: &Settings) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(match settings.kafka_brokers() {
        Some(brokers) => {
            let kafka = &settings.kafka;
            tracing::info!(brokers, topic = kafka.topic, "the log is in Kafka");
            Arc::new(KafkaLog::connect(kafka).await?)
        }
        None => Arc::new(EmbeddedLog::open(&EmbeddedLogSettings {
            path: settings.log_path(),
            queue_max: settings.log.queue_max,
            batch_max: settings.log.batch_max,
        })?),
    })
}

/// The configured backend, opened only to read: the embedded log must exist already, and
/// Kafka topics are never created.
pub async fn open_existing_log(settings: &Settings) -> anyhow::Result<Box<dyn EventLog>> {
    Ok(match settings.kafka_brokers() {
        Some(_) => Box::new(KafkaLog::connect_existing(&settings.kafka).await?),
        None => {
            let path = settings.log_path();
            if !path.is_file() {
                bail!("there is no log at {}", path.display());
            }
            Box::new(EmbeddedLog::open(&EmbeddedLogSettings {
                path,
                queue_max: settings.log.queue_max,
                batch_max: settings.log.batch_max,
            })?)
        }
    })
}

pub struct Application {
    /// The server, running from the moment it is built (health checks answer during the
    /// replay), and how to stop it.
    server: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    handle: actix_web::dev::ServerHandle,
    addr: SocketAddr,
    /// The listener of `GET /metrics` alone, when `http.metrics_addr` is set.
    metrics: Option<(SocketAddr, actix_web::dev::ServerHandle)>,
    projector: Projector,
    service: web::Data<Service>,
    in_flight: web::Data<http::InFlight>,
    /// The bootstrap client's secret, when it is the one generated into the data dir, and
    /// whether this start generated it.
    stored_client_secret: Option<(Secret, bool)>,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        files::private_dir(&settings.data.dir)
            .with_context(|| format!("preparing the data dir {}", settings.data.dir.display()))?;
        let secrets = secrets::resolve(settings)?;
        let log = open_log(settings).await?;
        let outcomes = Arc::new(Outcomes::default());
        let secret = secrets.client_secret.clone();
        let secret_hash = web::block(move || auth::hash_secret(secret.expose())).await??;
        let tokens = Tokens::new(
            &secrets.token_secret,
            settings.token.ttl_s,
            settings.token.audience.clone(),
        );
        let requests = &settings.requests;
        let service = web::Data::new(Service {
            log,
            read_model: ReadModel::new(
                settings.read_model_path(),
                settings.requests.readers_max,
                Duration::from_millis(settings.requests.wait_timeout_ms),
            ),
            outcomes,
            admin: AdminClient {
                credential: ClientCredential {
                    client_id: settings.admin.client_id.clone(),
                    digest: tokens.client_digest(&secrets.client_secret),
                },
                secret_hash,
            },
            tokens,
            hasher: Hasher::new(
                requests.hashers_max,
                requests.hash_queue_max,
                requests.hash_queue_per_address_max,
            ),
            logins: LoginThrottle::new(&settings.logins),
            wait_timeout: Duration::from_millis(settings.requests.wait_timeout_ms),
            page_size_max: settings.requests.page_size_max,
            provisioning_ttl_s: settings.token.provisioning_ttl_s,
            stopping: tokio::sync::watch::Sender::new(false),
            serving: std::sync::atomic::AtomicBool::new(false),
        });

        let listener = TcpListener::bind(settings.http.addr)
            .with_context(|| format!("binding {}", settings.http.addr))?;
        let addr = listener.local_addr()?;
        let routes = http::routes(settings.http.body_max_bytes);
        let streams = web::Data::new(http::Streams::new(&settings.feed));
        let metrics = web::Data::new(crate::metrics::install()?);
        let metrics_apart = settings.http.metrics_addr.is_some();
        let metrics_server = match settings.http.metrics_addr {
            Some(metrics_addr) => Some(metrics_server(
                metrics_addr,
                (service.clone(), streams.clone(), metrics.clone()),
            )?),
            None => None,
        };
        let in_flight = web::Data::new(http::InFlight::default());
        let counted = in_flight.clone();
        let served = service.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(served.clone())
                .app_data(streams.clone())
                .app_data(metrics.clone())
                .app_data(counted.clone())
                .wrap(from_fn(http::log_and_render_errors))
                .wrap(DefaultHeaders::new().add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")))
                .configure(|cfg| {
                    if !metrics_apart {
                        http::metrics_routes(cfg);
                    }
                })
                .configure(crate::scim::routes)
                .configure(routes.clone())
        })
        .workers(settings.http.workers)
        .shutdown_timeout(10)
        // Stopped by `run_until_stopped`, which first tells long polls and streams.
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        // Polled from now on, so that it accepts connections during the replay.
        let server = actix_web::rt::spawn(server);
        // Listening already, so that health checks answer (live, not ready) during the
        // replay; every other call answers 503 `Starting` until it is over.
        let projector = Projector::spawn(
            service.log.clone(),
            service.outcomes.clone(),
            ProjectorSettings {
                read_model_path: settings.read_model_path(),
                batch_max: settings.projector.batch_max,
                poll_ms: settings.projector.poll_ms,
            },
        )?;
        tracing::info!("replaying the log into the read model");
        let catch_up = Duration::from_millis(settings.projector.catch_up_timeout_ms);
        if tokio::time::timeout(catch_up, service.outcomes.caught_up())
            .await
            .is_err()
        {
            projector.stop();
            anyhow::bail!("the read model did not reach the end of the log within {catch_up:?}");
        }
        bootstrap::ensure_administrator(&service, &settings.admin.client_id).await?;
        service
            .serving
            .store(true, std::sync::atomic::Ordering::SeqCst);

        Ok(Self {
            server,
            handle,
            addr,
            metrics: metrics_server,
            projector,
            service,
            in_flight,
            stored_client_secret: secrets
                .client_secret_stored
                .then_some((secrets.client_secret, secrets.generated)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `GET /metrics` answers alone, when not on [`Application::addr`].
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    /// The bootstrap client's secret, if it is the one the data dir keeps (generated on
    /// the first start), and whether this start generated it; `None` when configured.
    pub fn stored_client_secret(&self) -> Option<(&Secret, bool)> {
        self.stored_client_secret
            .as_ref()
            .map(|(secret, generated)| (secret, *generated))
    }

    /// Serves until SIGTERM or SIGINT: then long polls and streams give their connections
    /// back, the server answers the requests in flight and stops, and so does the
    /// projector.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.handle;
        let mut server = self.server;
        let served = tokio::select! {
            served = &mut server => served.context("the HTTP server panicked")?,
            () = stop_signal() => {
                tracing::info!("stopping");
                self.service.stopping.send_replace(true);
                // New requests are answered 503 `Stopping` meanwhile, so that none waits
                // in the listener's backlog, to be cut off when it closes.
                drain(&self.in_flight, self.service.wait_timeout + DRAIN_MARGIN).await;
                handle.stop(true).await;
                server.await.context("the HTTP server panicked")?
            }
        };
        if let Some((_, metrics)) = &self.metrics {
            metrics.stop(true).await;
        }
        tracing::info!("HTTP server stopped; stopping the projector");
        self.projector.stop();
        served.context("serving HTTP")
    }
}

/// A server of `GET /metrics` alone on `addr`, with one worker, running from now on.
fn metrics_server(
    addr: SocketAddr,
    data: (
        web::Data<Service>,
        web::Data<http::Streams>,
        web::Data<&'static crate::metrics::Metrics>,
    ),
) -> anyhow::Result<(SocketAddr, actix_web::dev::ServerHandle)> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr} (metrics)"))?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.0.clone())
            .app_data(data.1.clone())
            .app_data(data.2.clone())
            .wrap(from_fn(http::log_and_render_errors))
            .configure(http::metrics_routes)
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((addr, handle))
}

/// SIGTERM or SIGINT, whichever comes first.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Beyond the longest a write waits for its outcome, how long a stop waits for the
/// requests in flight before it closes the listener.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// How long no request must come before a stop closes the listener.
const QUIET: Duration = Duration::from_millis(50);

/// Waits until no request is in flight and none came for `QUIET`, or `at_most`.
async fn drain(in_flight: &http::InFlight, at_most: Duration) {
    let deadline = tokio::time::Instant::now() + at_most;
    let mut last = in_flight.counts();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(QUIET).await;
        let counts = in_flight.counts();
        if counts.0 == 0 && counts.1 == last.1 {
            return;
        }
        last = counts;
    }
}
