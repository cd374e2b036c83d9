//! The read model is written without syncs (`synchronous = OFF`, its checkpoints too): no
//! commit of the projector waits for the disk, and none of its writes is forced out ahead
//! of the log's own syncs, which every acknowledged request waits for. A process that
//! stops, however abruptly, loses nothing by it: what it wrote is in the system's page
//! cache, and SQLite keeps a database whole through a crash of the process. A machine
//! that stops may leave the file torn.
//!
//! So while the model is open for writing, a marker beside it (`read.db-unsynced`) names
//! the boot of the system that writes it, made durable before the first write. At the
//! next start, a marker that names another boot means the machine stopped while the model
//! was being written: the model is removed and rebuilt from the log, from which it is
//! derived. A clean stop syncs the model and then removes the marker. Where the boot
//! cannot be told (no `/proc`), a marker left behind always means a rebuild.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::files;

/// Where Linux names the current boot.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// A read model open for writing without syncs; see the module's documentation.
pub struct Unsynced {
    model: PathBuf,
    marker: PathBuf,
}

impl Unsynced {
    /// Before the model at `model` is opened for writing: removes it if a machine stopped
    /// while it was being written, then marks it as written in this boot.
    pub fn claim(model: &Path) -> anyhow::Result<Self> {
        Self::claim_in_boot(model, boot_id())
    }

    fn claim_in_boot(model: &Path, boot: Option<String>) -> anyhow::Result<Self> {
        let marker = PathBuf::from(format!("{}-unsynced", model.display()));
        match std::fs::read_to_string(&marker) {
            Ok(written) if boot.is_some() && boot.as_deref() == Some(written.trim()) => {}
            Ok(written) => {
                tracing::warn!(
                    model = %model.display(),
                    written_in_boot = written.trim(),
                    "the machine stopped while the read model was being written; rebuilding it from the log"
                );
                for file in companions(model) {
                    match std::fs::remove_file(&file) {
                        Err(error) if error.kind() != ErrorKind::NotFound => {
                            return Err(error)
                                .with_context(|| format!("removing {}", file.display()));
                        }
                        _ => {}
                    }
                }
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", marker.display()));
            }
        }
        files::write_private(&marker, boot.unwrap_or_default().as_bytes())?;
        files::sync_dir_of(&marker)?;
        Ok(Self {
            model: model.to_path_buf(),
            marker,
        })
    }

    /// After the model's last commit and checkpoint: syncs it, then removes the marker.
    pub fn release(self) -> anyhow::Result<()> {
        for file in companions(&self.model).take(2) {
            if file.exists() {
                files::sync_to_disk(&file)?;
            }
        }
        std::fs::remove_file(&self.marker)
            .with_context(|| format!("removing {}", self.marker.display()))?;
        files::sync_dir_of(&self.marker)
    }
}

/// The model's file, its write-ahead log, and its shared-memory index.
fn companions(model: &Path) -> impl Iterator<Item = PathBuf> {
    ["", "-wal", "-shm"]
        .into_iter()
        .map(move |suffix| PathBuf::from(format!("{}{suffix}", model.display())))
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string(BOOT_ID).ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_in(dir: &Path) -> PathBuf {
        let model = dir.join("read.db");
        for file in companions(&model) {
            std::fs::write(file, b"pages").unwrap();
        }
        model
    }

    fn left(model: &Path) -> Vec<bool> {
        companions(model).map(|file| file.exists()).collect()
    }

    #[test]
    fn a_model_written_in_this_boot_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let model = model_in(dir.path());
        Unsynced::claim_in_boot(&model, Some("boot-1".into())).unwrap();
        // Not released: the process stopped abruptly; the machine did not.
        Unsynced::claim_in_boot(&model, Some("boot-1".into())).unwrap();
        assert_eq!(left(&model), [true, true, true]);
    }

    #[test]
    fn a_model_written_in_another_boot_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let model = model_in(dir.path());
        Unsynced::claim_in_boot(&model, Some("boot-1".into())).unwrap();
        Unsynced::claim_in_boot(&model, Some("boot-2".into())).unwrap();
        assert_eq!(left(&model), [false, false, false]);
    }

    #[test]
    fn without_a_boot_id_a_marker_left_behind_means_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let model = model_in(dir.path());
        Unsynced::claim_in_boot(&model, None).unwrap();
        Unsynced::claim_in_boot(&model, None).unwrap();
        assert_eq!(left(&model), [false, false, false]);
    }

    #[test]
    fn a_released_model_is_kept_in_any_boot() {
        let dir = tempfile::tempdir().unwrap();
        let model = model_in(dir.path());
        let claimed = Unsynced::claim_in_boot(&model, Some("boot-1".into())).unwrap();
        assert!(claimed.marker.exists());
        claimed.release().unwrap();
        assert!(!dir.path().join("read.db-unsynced").exists());
        Unsynced::claim_in_boot(&model, Some("boot-2".into())).unwrap();
        assert_eq!(left(&model), [true, true, true]);
    }

    #[test]
    fn this_machine_names_its_boot() {
        assert!(
            boot_id().is_some_and(|id| id.len() >= 32),
            "{:?}",
            boot_id()
        );
    }
}
