//! The two secrets the service cannot run without: the bootstrap client's secret and the
//! key that signs bearer tokens. Either may be configured; whatever is not is generated on
//! the first start (256 bits from the OS) and kept in `secrets.json` in the data dir,
//! readable by the owner only, so that later starts reuse it. Nothing committed admits
//! anyone.

use std::path::{Path, PathBuf};

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::files;
use crate::settings::{SECRET_MIN_BYTES, Secret, Settings};

/// Random bytes in each generated secret.
const GENERATED_BYTES: usize = 32;

/// The secrets in force, and where the client's came from.
pub struct Secrets {
    pub client_secret: Secret,
    pub token_secret: Secret,
    /// The client secret is the data dir's generated one, not a configured one: the only
    /// case in which the service prints it.
    pub client_secret_stored: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    admin_client_secret: String,
    token_secret: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets.json")
}

/// The configured secrets, completed from the data dir (generating its file if needed).
pub fn resolve(settings: &Settings) -> anyhow::Result<Secrets> {
    let configured_client = settings.admin.client_secret.clone();
    let configured_token = settings.token.secret.clone();
    if let (Some(client_secret), Some(token_secret)) = (&configured_client, &configured_token) {
        return Ok(Secrets {
            client_secret: client_secret.clone(),
            token_secret: token_secret.clone(),
            client_secret_stored: false,
        });
    }
    let stored = load_or_generate(&path(&settings.data.dir))?;
    Ok(Secrets {
        client_secret_stored: configured_client.is_none(),
        client_secret: configured_client.unwrap_or(Secret::new(stored.admin_client_secret)),
        token_secret: configured_token.unwrap_or(Secret::new(stored.token_secret)),
    })
}

fn load_or_generate(path: &Path) -> anyhow::Result<Stored> {
    match std::fs::read(path) {
        Ok(text) => {
            let stored: Stored = serde_json::from_slice(&text).with_context(|| {
                format!("{} is not the secrets file it should be", path.display())
            })?;
            for (name, secret) in [
                ("adminClientSecret", &stored.admin_client_secret),
                ("tokenSecret", &stored.token_secret),
            ] {
                anyhow::ensure!(
                    secret.len() >= SECRET_MIN_BYTES,
                    "{name} in {} is shorter than {SECRET_MIN_BYTES} bytes",
                    path.display()
                );
            }
            Ok(stored)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let stored = Stored {
                admin_client_secret: generate(),
                token_secret: generate(),
            };
            files::write_private(path, &serde_json::to_vec_pretty(&stored)?)?;
            tracing::info!(path = %path.display(), "generated the client secret and token key");
            Ok(stored)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// 256 bits from the OS, as 64 hexadecimal digits.
fn generate() -> String {
    let mut bytes = [0_u8; GENERATED_BYTES];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        let first = load_or_generate(&path).unwrap();
        let again = load_or_generate(&path).unwrap();
        assert_eq!(first.token_secret, again.token_secret);
        assert_eq!(first.admin_client_secret.len(), 2 * GENERATED_BYTES);
        assert_ne!(first.admin_client_secret, first.token_secret);
    }

    #[test]
    fn a_damaged_secrets_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        std::fs::write(
            &path,
            br#"{"adminClientSecret":"short","tokenSecret":"short"}"#,
        )
        .unwrap();
        let error = load_or_generate(&path).err().unwrap();
        assert!(format!("{error:#}").contains("shorter than"), "{error:#}");
    }
}
