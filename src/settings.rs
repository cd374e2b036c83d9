//! Settings: `config/default.toml` (or the file named by `MEMBERSHIP_CONFIG`), then the
//! environment variables below. Loaded once in `main` and passed down.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The committed defaults, built in so that the binary runs from any directory.
const DEFAULTS: &str = include_str!("../config/default.toml");
const DEFAULT_PATH: &str = "config/default.toml";

/// A secret: Debug and logs show `[redacted]`, never the value.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub data: DataSettings,
    pub admin: AdminSettings,
    pub token: TokenSettings,
    pub log: LogSettings,
    pub projector: ProjectorSettings,
    pub requests: RequestSettings,
    pub logins: LoginSettings,
    pub feed: FeedSettings,
    pub kafka: KafkaSettings,
}

/// How many failed token requests are allowed before the next answer is 429.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Failures per (client id or username, source address) in a window.
    pub failures_per_name_max: u32,
    /// Failures per source address (an IPv6 address counts by its /64) in a window.
    pub failures_per_address_max: u32,
    /// The window: a count drains at `max` per `window_s`.
    pub window_s: u64,
    /// Counters kept at most per table; the one idle longest is forgotten first.
    pub counters_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Empty: the embedded log. Otherwise `host:port,...`, and the log is in Kafka.
    pub brokers: String,
    /// The events topic; credentials go to `<topic>.credentials`.
    pub topic: String,
    pub replication_factor: i32,
    /// librdkafka's `message.timeout.ms`: how long a record may take to be acknowledged.
    pub delivery_timeout_ms: u64,
    pub linger_ms: u64,
    /// How long the broker may hold a fetch that has nothing new. On brokers that do not
    /// answer a waiting fetch when records arrive, this bounds read-your-writes latency.
    pub fetch_wait_max_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    pub body_max_bytes: usize,
    pub workers: usize,
    /// Where `GET /metrics` is served instead of the main listener, when set.
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub client_id: String,
    /// Unset: generated on the first start and kept in the data dir (see `secrets`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// The HS256 signing key. Unset: generated like the client secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    pub ttl_s: u64,
    /// The lifetime of a `scim` client's tokens (see `service::clients`).
    pub provisioning_ttl_s: u64,
    /// Put in every token as `aud`, and required of every token, when set.
    #[serde(default)]
    pub audience: Option<String>,
}

/// The event feed's bounds (see `http::feed`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    pub streams_max: usize,
    pub stream_buffer: usize,
    pub heartbeat_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub queue_max: usize,
    pub batch_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectorSettings {
    pub batch_max: usize,
    pub poll_ms: u64,
    pub catch_up_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSettings {
    pub wait_timeout_ms: u64,
    pub readers_max: usize,
    pub hashers_max: usize,
    /// Hashing requests waiting for a hasher, at most; more answer 503.
    pub hash_queue_max: usize,
    /// Hashing requests from one address, running or waiting, at most; more answer 503.
    pub hash_queue_per_address_max: usize,
    pub page_size_max: u64,
}

/// The shortest secret accepted, for the client and for signing tokens: 256 bits, as
/// HS256 wants.
pub const SECRET_MIN_BYTES: usize = 32;

impl Settings {
    pub fn load() -> anyhow::Result<Self> {
        let text = match std::env::var_os("MEMBERSHIP_CONFIG") {
            Some(path) => std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", PathBuf::from(path).display()))?,
            None => std::fs::read_to_string(DEFAULT_PATH).unwrap_or_else(|_| DEFAULTS.into()),
        };
        let mut settings: Settings = toml::from_str(&text).context("parsing the settings")?;
        settings.override_from(|name| std::env::var(name).ok())?;
        settings.check()?;
        Ok(settings)
    }

    fn override_from(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(addr) = var("MEMBERSHIP_HTTP_ADDR") {
            self.http.addr = addr
                .parse()
                .with_context(|| format!("MEMBERSHIP_HTTP_ADDR={addr} is not HOST:PORT"))?;
        }
        if let Some(addr) = var("MEMBERSHIP_HTTP_METRICS_ADDR") {
            self.http.metrics_addr = Some(addr.as_str())
                .filter(|addr| !addr.is_empty())
                .map(str::parse)
                .transpose()
                .with_context(|| format!("MEMBERSHIP_HTTP_METRICS_ADDR={addr} is not HOST:PORT"))?;
        }
        if let Some(dir) = var("MEMBERSHIP_DATA_DIR") {
            self.data.dir = dir.into();
        }
        if let Some(id) = var("MEMBERSHIP_ADMIN_CLIENT_ID") {
            self.admin.client_id = id;
        }
        if let Some(secret) = var("MEMBERSHIP_ADMIN_CLIENT_SECRET") {
            self.admin.client_secret = Some(Secret::new(secret));
        }
        if let Some(secret) = var("MEMBERSHIP_TOKEN_SECRET") {
            self.token.secret = Some(Secret::new(secret));
        }
        if let Some(audience) = var("MEMBERSHIP_TOKEN_AUDIENCE") {
            self.token.audience = Some(audience).filter(|a| !a.is_empty());
        }
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            var(name)
                .map(|value| {
                    value
                        .parse()
                        .with_context(|| format!("{name}={value} is not a whole number"))
                })
                .transpose()
        };
        if let Some(n) = number("MEMBERSHIP_LOGINS_FAILURES_PER_NAME_MAX")? {
            self.logins.failures_per_name_max = n.try_into()?;
        }
        if let Some(n) = number("MEMBERSHIP_LOGINS_FAILURES_PER_ADDRESS_MAX")? {
            self.logins.failures_per_address_max = n.try_into()?;
        }
        if let Some(n) = number("MEMBERSHIP_LOGINS_WINDOW_S")? {
            self.logins.window_s = n;
        }
        if let Some(n) = number("MEMBERSHIP_TOKEN_TTL_S")? {
            self.token.ttl_s = n;
        }
        if let Some(n) = number("MEMBERSHIP_FEED_STREAMS_MAX")? {
            self.feed.streams_max = n.try_into()?;
        }
        if let Some(n) = number("MEMBERSHIP_FEED_STREAM_BUFFER")? {
            self.feed.stream_buffer = n.try_into()?;
        }
        if let Some(n) = number("MEMBERSHIP_FEED_HEARTBEAT_MS")? {
            self.feed.heartbeat_ms = n;
        }
        if let Some(n) = number("MEMBERSHIP_TOKEN_PROVISIONING_TTL_S")? {
            self.token.provisioning_ttl_s = n;
        }
        if let Some(brokers) = var("MEMBERSHIP_KAFKA_BROKERS") {
            self.kafka.brokers = brokers;
        }
        if let Some(topic) = var("MEMBERSHIP_KAFKA_TOPIC") {
            self.kafka.topic = topic;
        }
        if let Some(ms) = var("MEMBERSHIP_KAFKA_DELIVERY_TIMEOUT_MS") {
            self.kafka.delivery_timeout_ms = ms.parse().with_context(|| {
                format!("MEMBERSHIP_KAFKA_DELIVERY_TIMEOUT_MS={ms} is not milliseconds")
            })?;
        }
        if let Some(ms) = var("MEMBERSHIP_WAIT_TIMEOUT_MS") {
            self.requests.wait_timeout_ms = ms
                .parse()
                .with_context(|| format!("MEMBERSHIP_WAIT_TIMEOUT_MS={ms} is not milliseconds"))?;
        }
        Ok(())
    }

    fn check(&self) -> anyhow::Result<()> {
        let id = &self.admin.client_id;
        if id.is_empty()
            || id.len() > 100
            || id.contains('@')
            || id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            bail!("the admin client id must be 1 to 100 characters, without '@' or spaces");
        }
        let secrets = [
            (
                "admin.client_secret (MEMBERSHIP_ADMIN_CLIENT_SECRET)",
                &self.admin.client_secret,
            ),
            ("token.secret (MEMBERSHIP_TOKEN_SECRET)", &self.token.secret),
        ];
        for (name, secret) in secrets {
            if secret
                .as_ref()
                .is_some_and(|s| s.expose().len() < SECRET_MIN_BYTES)
            {
                bail!("{name} must be at least {SECRET_MIN_BYTES} bytes long");
            }
        }
        let positive = [
            ("http.body_max_bytes", self.http.body_max_bytes as u64),
            ("http.workers", self.http.workers as u64),
            ("token.ttl_s", self.token.ttl_s),
            ("token.provisioning_ttl_s", self.token.provisioning_ttl_s),
            ("log.queue_max", self.log.queue_max as u64),
            ("log.batch_max", self.log.batch_max as u64),
            ("projector.batch_max", self.projector.batch_max as u64),
            ("projector.poll_ms", self.projector.poll_ms),
            (
                "projector.catch_up_timeout_ms",
                self.projector.catch_up_timeout_ms,
            ),
            ("requests.wait_timeout_ms", self.requests.wait_timeout_ms),
            ("requests.readers_max", self.requests.readers_max as u64),
            ("requests.hashers_max", self.requests.hashers_max as u64),
            (
                "requests.hash_queue_max",
                self.requests.hash_queue_max as u64,
            ),
            (
                "requests.hash_queue_per_address_max",
                self.requests.hash_queue_per_address_max as u64,
            ),
            (
                "logins.failures_per_name_max",
                self.logins.failures_per_name_max.into(),
            ),
            (
                "logins.failures_per_address_max",
                self.logins.failures_per_address_max.into(),
            ),
            ("logins.window_s", self.logins.window_s),
            ("logins.counters_max", self.logins.counters_max as u64),
            ("requests.page_size_max", self.requests.page_size_max),
            ("feed.streams_max", self.feed.streams_max as u64),
            ("feed.stream_buffer", self.feed.stream_buffer as u64),
            ("feed.heartbeat_ms", self.feed.heartbeat_ms),
            (
                "kafka.replication_factor",
                self.kafka.replication_factor.max(0) as u64,
            ),
            ("kafka.delivery_timeout_ms", self.kafka.delivery_timeout_ms),
            ("kafka.fetch_wait_max_ms", self.kafka.fetch_wait_max_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("{name} must be greater than zero");
            }
        }
        Ok(())
    }

    /// Where the log is kept: Kafka when brokers are set, else the embedded file.
    pub fn kafka_brokers(&self) -> Option<&str> {
        Some(self.kafka.brokers.trim()).filter(|b| !b.is_empty())
    }

    pub fn log_path(&self) -> PathBuf {
        self.data.dir.join("log.db")
    }

    pub fn read_model_path(&self) -> PathBuf {
        self.data.dir.join("read.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        toml::from_str(DEFAULTS).unwrap()
    }

    #[test]
    fn the_committed_defaults_are_valid() {
        defaults().check().unwrap();
    }

    #[test]
    fn environment_variables_override_the_file() {
        let mut settings = defaults();
        settings
            .override_from(|name| match name {
                "MEMBERSHIP_HTTP_ADDR" => Some("127.0.0.1:0".into()),
                "MEMBERSHIP_ADMIN_CLIENT_ID" => Some("ops".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(settings.http.addr.port(), 0);
        assert_eq!(settings.admin.client_id, "ops");
    }

    #[test]
    fn the_committed_defaults_hold_no_secret() {
        let settings = defaults();
        assert!(settings.admin.client_secret.is_none());
        assert!(settings.token.secret.is_none());
    }

    #[test]
    fn a_short_secret_is_refused_by_its_setting_name() {
        let mut settings = defaults();
        settings.token.secret = Some(Secret::new("short"));
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("MEMBERSHIP_TOKEN_SECRET"), "{error}");
        let mut settings = defaults();
        settings.admin.client_secret = Some(Secret::new("x".repeat(SECRET_MIN_BYTES - 1)));
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("MEMBERSHIP_ADMIN_CLIENT_SECRET"), "{error}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let mut settings = defaults();
        settings.token.secret = Some(Secret::new("a-token-secret-of-at-least-32-bytes"));
        let shown = format!("{settings:?}");
        assert!(!shown.contains("a-token-secret"), "{shown}");
    }
}
