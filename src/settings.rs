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
    pub kafka: KafkaSettings,
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
    pub client_secret: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub secret: Secret,
    pub ttl_s: u64,
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
    pub page_size_max: u64,
}

/// The shortest token-signing secret accepted: 256 bits, as HS256 wants.
const TOKEN_SECRET_MIN_BYTES: usize = 32;

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
        if let Some(dir) = var("MEMBERSHIP_DATA_DIR") {
            self.data.dir = dir.into();
        }
        if let Some(id) = var("MEMBERSHIP_ADMIN_CLIENT_ID") {
            self.admin.client_id = id;
        }
        if let Some(secret) = var("MEMBERSHIP_ADMIN_CLIENT_SECRET") {
            self.admin.client_secret = Secret::new(secret);
        }
        if let Some(secret) = var("MEMBERSHIP_TOKEN_SECRET") {
            self.token.secret = Secret::new(secret);
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
        if self.admin.client_secret.expose().is_empty() {
            bail!("the admin client secret must not be empty");
        }
        if self.token.secret.expose().len() < TOKEN_SECRET_MIN_BYTES {
            bail!("the token secret must be at least {TOKEN_SECRET_MIN_BYTES} bytes long");
        }
        let positive = [
            ("http.body_max_bytes", self.http.body_max_bytes as u64),
            ("http.workers", self.http.workers as u64),
            ("token.ttl_s", self.token.ttl_s),
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
            ("requests.page_size_max", self.requests.page_size_max),
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

    /// Which secrets are still the committed development values: (client, token).
    pub fn development_secrets(&self) -> (bool, bool) {
        let defaults: Settings = toml::from_str(DEFAULTS).expect("the built-in defaults parse");
        (
            self.admin.client_secret.expose() == defaults.admin.client_secret.expose(),
            self.token.secret.expose() == defaults.token.secret.expose(),
        )
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
    fn a_short_token_secret_is_refused() {
        let mut settings = defaults();
        settings.token.secret = Secret::new("short");
        assert!(settings.check().is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let shown = format!("{:?}", defaults());
        assert!(!shown.contains("dev-only-secret"), "{shown}");
    }
}
