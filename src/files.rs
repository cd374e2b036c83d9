//! Files only the service's owner can read: the data dir is 0700 and everything in it
//! 0600, whatever the umask, because the log holds every password hash it was ever given.
//!
//! SQLite gives a database's `-wal` and `-shm` files the database file's own mode, so
//! creating each database file here, before SQLite opens it, is enough for its companions.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) if needed, with only the owner allowed in; an existing
/// dir that others may enter or read is tightened, and so is every file in it.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    tighten(dir, DIR_MODE)?;
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            tighten(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

/// Creates `path` empty if it does not exist, readable and writable by the owner only;
/// an existing file open to others is tightened.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    tighten(path, FILE_MODE)
}

/// Writes `contents` to `path` whole or not at all (a private temporary file renamed over
/// it), readable by the owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(FILE_MODE)
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    tighten(&temporary, FILE_MODE)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("moving {} into place", temporary.display()))?;
    Ok(())
}

/// Syncs the file at `path` and the directory that names it.
pub fn sync_to_disk(path: &Path) -> anyhow::Result<()> {
    sync(path)?;
    sync_dir_of(path)
}

/// Syncs the directory that names `path`: its creation, renaming or removal.
pub fn sync_dir_of(path: &Path) -> anyhow::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => sync(dir),
        None => sync(Path::new(".")),
    }
}

fn sync(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

/// Takes away any permission beyond `mode` (the umask may have given fewer; never more).
fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    let current = std::fs::metadata(path)
        .with_context(|| format!("reading the permissions of {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if current != mode {
        std::fs::set_permissions(path, Permissions::from_mode(mode))
            .with_context(|| format!("restricting {} to its owner", path.display()))?;
        if current & !mode != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{current:o}"), "restricted to the owner");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_wide_data_dir_and_its_files_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("log.db");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&file), FILE_MODE);
    }

    #[test]
    fn files_are_created_for_the_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("read.db");
        private_file(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        let secrets = root.path().join("secrets.json");
        write_private(&secrets, b"{}").unwrap();
        assert_eq!(mode(&secrets), FILE_MODE);
        assert_eq!(std::fs::read(&secrets).unwrap(), b"{}");
    }
}
