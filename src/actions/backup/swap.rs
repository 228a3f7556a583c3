//! The last step of a restore, on the data volume as the charm container sees it:
//! swap the unpacked backup into place with renames (same file system, each one
//! atomic), keeping what it replaces aside until every rename has succeeded. If one
//! fails, the renames done so far are undone in reverse order, so a failed restore
//! leaves the previous data in place.

use std::io;
use std::path::Path;

use super::content::{self, MEDIA_DIRS, PREVIOUS, RENDERED};

/// The backed-up entries under `root` (a data directory, live or unpacked), as paths
/// relative to it: wanted top-level names, and `local_*` in each media store
/// (`media_store/`, and `media/` kept from Canonical's charm). Symbolic links
/// are never followed nor taken: an unpacked archive cannot point outside itself.
pub fn entries(root: &Path) -> io::Result<Vec<String>> {
    let names = |dir: &Path| -> io::Result<Vec<(String, bool)>> {
        let mut out = vec![];
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                for e in rd {
                    let e = e?;
                    let link = e.file_type()?.is_symlink();
                    out.push((e.file_name().to_string_lossy().into_owned(), link));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    };
    let mut out: Vec<String> = names(root)?
        .into_iter()
        .filter(|(n, link)| !link && content::wanted_top(n))
        .map(|(n, _)| n)
        .collect();
    for dir in MEDIA_DIRS {
        let media = root.join(dir);
        if std::fs::symlink_metadata(&media).is_ok_and(|m| m.is_dir()) {
            out.extend(
                names(&media)?
                    .into_iter()
                    .filter(|(n, link)| !link && content::wanted_media(n))
                    .map(|(n, _)| format!("{dir}/{n}")),
            );
        }
    }
    out.sort();
    Ok(out)
}

/// What the swap does (pure).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Live entries moved aside (replaced, or absent from the backup).
    pub aside: Vec<String>,
    /// Unpacked entries moved into place.
    pub install: Vec<String>,
}

/// The swap of `staged` entries over `live` ones: every live entry of the backup's
/// kind goes aside, except the charm's rendered files, which are only filled in when
/// missing, and a SQLite database when the backup holds none (made on PostgreSQL).
pub fn plan(staged: &[String], live: &[String]) -> Plan {
    let rendered = |e: &String| RENDERED.contains(&e.as_str());
    let db_in_backup = staged.iter().any(|e| content::sqlite(e));
    let kept = |e: &String| rendered(e) || (!db_in_backup && content::sqlite(e));
    Plan {
        aside: live.iter().filter(|e| !kept(e)).cloned().collect(),
        install: staged
            .iter()
            .filter(|e| !(rendered(e) && live.contains(e)))
            .cloned()
            .collect(),
    }
}

enum Done {
    Aside(String),
    Installed(String),
}

/// Applies `plan`: `data` is the live volume, `unpacked` the data directory of the
/// unpacked archive. `uid` owns a media store the swap has to create. `rename` is
/// [`std::fs::rename`] (tests inject failures).
pub fn apply(
    data: &Path,
    unpacked: &Path,
    plan: &Plan,
    uid: u32,
    rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let previous = data.join(PREVIOUS);
    if previous.exists() {
        std::fs::remove_dir_all(&previous)?;
    }
    std::fs::create_dir(&previous)?;
    for dir in MEDIA_DIRS {
        std::fs::create_dir(previous.join(dir))?;
    }
    let mut done: Vec<Done> = vec![];
    let result = (|| -> io::Result<()> {
        for e in &plan.aside {
            match rename(&data.join(e), &previous.join(e)) {
                Ok(()) => done.push(Done::Aside(e.clone())),
                // Gone since it was listed (a journal file): nothing to keep.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        for dir in MEDIA_DIRS {
            let media = data.join(dir);
            let prefix = format!("{dir}/");
            if plan.install.iter().any(|e| e.starts_with(&prefix)) && !media.exists() {
                std::fs::create_dir(&media)?;
                std::os::unix::fs::chown(&media, Some(uid), Some(uid))?;
            }
        }
        for e in &plan.install {
            rename(&unpacked.join(e), &data.join(e))?;
            done.push(Done::Installed(e.clone()));
        }
        Ok(())
    })();
    if let Err(e) = result {
        for step in done.iter().rev() {
            let undo = match step {
                Done::Installed(x) => rename(&data.join(x), &unpacked.join(x)),
                Done::Aside(x) => rename(&previous.join(x), &data.join(x)),
            };
            if let Err(u) = undo {
                tracing::error!(
                    "undoing the restore: {u}; the replaced data is in {}",
                    previous.display()
                );
                return Err(e);
            }
        }
        let _ = std::fs::remove_dir_all(&previous);
        return Err(e);
    }
    std::fs::remove_dir_all(&previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn read(p: &Path) -> Option<String> {
        fs::read_to_string(p).ok()
    }

    /// A live volume and an unpacked backup that differ in every way.
    fn volumes() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let unpacked = dir.path().join("staging/data");
        write(&data.join("example.com.signing.key"), "live key");
        write(&data.join("homeserver.yaml"), "live config");
        write(
            &data.join("media_store/local_content/aa/new"),
            "uploaded after",
        );
        write(&data.join("media_store/remote_content/x"), "cache");
        write(&data.join("stats-exporter.password"), "pw");
        write(&unpacked.join("example.com.signing.key"), "backed-up key");
        write(&unpacked.join("homeserver.yaml"), "old config");
        write(&unpacked.join("log.config"), "old log config");
        write(
            &unpacked.join("media_store/local_content/bb/old"),
            "backed-up media",
        );
        write(&unpacked.join("media_store/local_thumbnails/bb/t"), "thumb");
        (dir, data, unpacked)
    }

    #[test]
    fn media_kept_from_canonicals_charm_are_restored() {
        let (_d, data, unpacked) = volumes();
        write(
            &unpacked.join("media/local_content/cc/ref"),
            "reference media",
        );
        write(&data.join("media/local_content/dd/later"), "uploaded after");
        let live = entries(&data).unwrap();
        assert!(
            live.contains(&"media/local_content".to_string()),
            "{live:?}"
        );
        let p = plan(&entries(&unpacked).unwrap(), &live);
        apply(&data, &unpacked, &p, 0, &mut |a, b| fs::rename(a, b)).unwrap();
        assert_eq!(
            read(&data.join("media/local_content/cc/ref")).as_deref(),
            Some("reference media")
        );
        assert_eq!(read(&data.join("media/local_content/dd/later")), None);
    }

    #[test]
    fn the_plan_replaces_the_backups_kind_and_fills_in_rendered_files() {
        let (_d, data, unpacked) = volumes();
        let live = entries(&data).unwrap();
        assert_eq!(
            live,
            vec![
                "example.com.signing.key",
                "homeserver.yaml",
                "media_store/local_content"
            ]
        );
        let p = plan(&entries(&unpacked).unwrap(), &live);
        assert_eq!(
            p.aside,
            vec!["example.com.signing.key", "media_store/local_content"]
        );
        assert_eq!(
            p.install,
            vec![
                "example.com.signing.key",
                "log.config",
                "media_store/local_content",
                "media_store/local_thumbnails"
            ]
        );
    }

    #[test]
    fn a_swap_installs_the_backup_and_keeps_everything_else() {
        let (_d, data, unpacked) = volumes();
        let p = plan(&entries(&unpacked).unwrap(), &entries(&data).unwrap());
        apply(&data, &unpacked, &p, 0, &mut |a, b| fs::rename(a, b)).unwrap();
        assert_eq!(
            read(&data.join("example.com.signing.key")).as_deref(),
            Some("backed-up key")
        );
        assert_eq!(
            read(&data.join("homeserver.yaml")).as_deref(),
            Some("live config")
        );
        assert_eq!(
            read(&data.join("log.config")).as_deref(),
            Some("old log config")
        );
        assert_eq!(
            read(&data.join("media_store/local_content/bb/old")).as_deref(),
            Some("backed-up media")
        );
        assert_eq!(read(&data.join("media_store/local_content/aa/new")), None);
        assert_eq!(
            read(&data.join("media_store/remote_content/x")).as_deref(),
            Some("cache")
        );
        assert_eq!(
            read(&data.join("stats-exporter.password")).as_deref(),
            Some("pw")
        );
        assert!(!data.join(PREVIOUS).exists());
    }

    #[test]
    fn a_wiped_volume_gets_everything_back() {
        let (_d, data, unpacked) = volumes();
        fs::remove_dir_all(&data).unwrap();
        fs::create_dir(&data).unwrap();
        let p = plan(&entries(&unpacked).unwrap(), &entries(&data).unwrap());
        apply(&data, &unpacked, &p, 0, &mut |a, b| fs::rename(a, b)).unwrap();
        assert_eq!(
            read(&data.join("homeserver.yaml")).as_deref(),
            Some("old config")
        );
        assert_eq!(
            read(&data.join("media_store/local_thumbnails/bb/t")).as_deref(),
            Some("thumb")
        );
    }

    #[test]
    fn a_failed_rename_leaves_the_previous_data_in_place() {
        let (_d, data, unpacked) = volumes();
        let p = plan(&entries(&unpacked).unwrap(), &entries(&data).unwrap());
        let mut n = 0;
        let err = apply(&data, &unpacked, &p, 0, &mut |a, b| {
            n += 1;
            // Fail the third install (after two asides and two installs).
            if n == 5 {
                return Err(io::Error::other("disk full"));
            }
            fs::rename(a, b)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(
            read(&data.join("example.com.signing.key")).as_deref(),
            Some("live key")
        );
        assert_eq!(
            read(&data.join("media_store/local_content/aa/new")).as_deref(),
            Some("uploaded after")
        );
        assert_eq!(read(&data.join("log.config")), None);
        assert!(!data.join(PREVIOUS).exists());
        // The unpacked backup is whole again, for another try.
        assert_eq!(entries(&unpacked).unwrap().len(), 5);
    }

    #[test]
    fn a_sqlite_database_stays_unless_the_backup_has_one() {
        let live = vec!["a.key".to_string(), "homeserver.db".to_string()];
        let without = plan(&["a.key".to_string()], &live);
        assert_eq!(without.aside, vec!["a.key"]);
        let with = plan(&["a.key".to_string(), "homeserver.db".to_string()], &live);
        assert_eq!(with.aside, live);
    }

    #[test]
    fn a_live_file_gone_since_the_listing_is_not_an_error() {
        let (_d, data, unpacked) = volumes();
        let mut p = plan(&entries(&unpacked).unwrap(), &entries(&data).unwrap());
        p.aside.push("homeserver.db-journal".into());
        apply(&data, &unpacked, &p, 0, &mut |a, b| fs::rename(a, b)).unwrap();
        assert_eq!(
            read(&data.join("example.com.signing.key")).as_deref(),
            Some("backed-up key")
        );
    }

    #[test]
    fn links_in_an_archive_are_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink("/etc", root.join("evil.key")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join(content::MEDIA_DIR)).unwrap();
        write(&root.join("real.key"), "k");
        assert_eq!(entries(root).unwrap(), vec!["real.key"]);
    }
}
