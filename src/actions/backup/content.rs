//! What a backup holds and how it is made (pure): the selection of paths on the data
//! volume, the commands that run in the synapse container, backup ids and object
//! keys, and the listing shown to the operator.
//!
//! The format is the reference charm's, so either charm restores the other's backups:
//! a tar archive of paths under `/data` (stored without the leading `/`, so members
//! are `data/...`), encrypted with `gpg --symmetric` (OpenPGP, a passphrase-derived
//! AES-256 key), stored as one object `<path><backup-id>` in the bucket. An operator
//! decrypts one by hand with `gpg --decrypt backup-... | tar -t`.

use crate::synapse::homeserver::DATA_DIR;

/// The backup id prefix; the rest is the UTC time `%Y%m%d%H%M%S%f` (microseconds).
pub const ID_PREFIX: &str = "backup-";
/// The media directories Synapse keeps for this server's own media (`remote_*` ones
/// are caches of other servers' media and are not backed up).
pub const MEDIA_DIR: &str = "media_store";
/// Every media store a volume may hold: this charm's, and Canonical's charm's, which
/// Synapse keeps using after a switch ([`crate::switch`]).
pub const MEDIA_DIRS: [&str; 2] = [MEDIA_DIR, "media"];
/// Files the charm renders: restored only where the volume lost them (the charm's
/// current rendering wins otherwise, so a restore never starts Synapse with an older
/// configuration than the one the charm computes).
pub const RENDERED: &[&str] = &["homeserver.yaml", "log.config"];
/// Where a restore unpacks, on the data volume (so the swap is a rename).
pub const STAGING: &str = ".charm-restore";
/// Where a restore keeps what it replaces until it has succeeded.
pub const PREVIOUS: &str = ".charm-restore-previous";

/// Whether a top-level entry of the data volume belongs in a backup: the signing
/// key(s), the SQLite database and its journal files (see [`select`]), the configuration the charm
/// rendered, the charm's markers (which database and media bucket Synapse used), and
/// appservice registrations: the bridges' folder the `matrix-auth` relations fill
/// ([`crate::relations::matrix_auth::DIR`]) and the reference charm's
/// `appservice-*.yaml` files.
pub fn wanted_top(name: &str) -> bool {
    name.ends_with(".key")
        || name.starts_with("homeserver.db")
        || RENDERED.contains(&name)
        || name == crate::relations::database::BACKEND_MARKER
        || name == crate::relations::media::MARKER
        || name == crate::switch::MEDIA_MARKER
        || (name.starts_with("appservice-") && name.ends_with(".yaml"))
        || Some(name) == appservices_dir()
}

/// The bridges' registrations folder's name at the top of the data volume.
fn appservices_dir() -> Option<&'static str> {
    crate::relations::matrix_auth::DIR
        .strip_prefix(DATA_DIR)
        .map(|rest| rest.trim_start_matches('/'))
}

/// Whether an entry of the media store belongs in a backup (`local_content`,
/// `local_thumbnails`, ...).
pub fn wanted_media(name: &str) -> bool {
    name.starts_with("local_")
}

/// Whether a name is SQLite's database or one of its journal files.
pub fn sqlite(name: &str) -> bool {
    name.starts_with("homeserver.db")
}

/// The paths to archive, relative to `/` (as `tar -C /` takes them), from the names
/// at the top of the volume and in its media store; sorted. Once Synapse runs on
/// PostgreSQL (`on_postgres`), the SQLite database left from before is not its data.
pub fn select(top: &[String], media: &[String], on_postgres: bool) -> Vec<String> {
    select_stores(top, &[(MEDIA_DIR, media.to_vec())], on_postgres)
}

/// [`select`] with the names in each media store (`(directory, names)`).
pub fn select_stores(
    top: &[String],
    stores: &[(&str, Vec<String>)],
    on_postgres: bool,
) -> Vec<String> {
    let root = DATA_DIR.trim_start_matches('/');
    let mut out: Vec<String> = top
        .iter()
        .filter(|n| wanted_top(n) && !(on_postgres && sqlite(n)))
        .map(|n| format!("{root}/{n}"))
        .chain(stores.iter().flat_map(|(dir, names)| {
            names
                .iter()
                .filter(|n| wanted_media(n))
                .map(move |n| format!("{root}/{dir}/{n}"))
        }))
        .collect();
    out.sort();
    out
}

/// GnuPG's options for a private, throw-away home: batch mode, the passphrase from a
/// file descriptor, nothing cached.
const GPG: &str =
    "gpg --homedir \"$home\" --batch --quiet --no-tty --no-symkey-cache --pinentry-mode loopback";

/// The shell prologue: a private GnuPG home, its agent stopped and removed at exit.
const PROLOGUE: &str = "set -eu -o pipefail\nhome=$(mktemp -d)\ntrap 'gpgconf --homedir \"$home\" --kill gpg-agent >/dev/null 2>&1 || true; rm -rf -- \"$home\"' EXIT\n";

/// The command that writes the encrypted archive of `paths` to its standard output.
/// The passphrase is the first line of its standard input (gpg reads it from a
/// duplicate of that descriptor), never an argument or a variable. tar's exit status
/// 1 ("a file changed while read", e.g. a live SQLite journal) is not a failure.
pub fn create_command(paths: &[String]) -> Vec<String> {
    let script = format!(
        "{PROLOGUE}{{ {{ tar -c -C / -- \"$@\" || test $? -eq 1; }} | {GPG} --passphrase-fd 3 --symmetric --cipher-algo AES256 --output -; }} 3<&0\n"
    );
    let mut cmd = vec![
        "/bin/bash".to_string(),
        "-c".into(),
        script,
        "create-backup".into(),
    ];
    cmd.extend(paths.iter().cloned());
    cmd
}

/// The command that reads a passphrase line then an encrypted archive on its
/// standard input, and unpacks the archive into a fresh `staging` directory.
pub fn restore_command(staging: &str) -> Vec<String> {
    let script = format!(
        "{PROLOGUE}rm -rf -- \"$1\"\nmkdir -m 0700 -- \"$1\"\n{GPG} --passphrase-fd 0 --decrypt | tar -x -C \"$1\" -f -\n"
    );
    vec![
        "/bin/bash".to_string(),
        "-c".into(),
        script,
        "restore-backup".into(),
        staging.to_string(),
    ]
}

/// What a failed restore command's standard error means for the operator.
pub fn restore_failure(id: &str, stderr: &str) -> String {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error output");
    if stderr.contains("Bad session key") || stderr.contains("decryption failed") {
        format!(
            "cannot decrypt backup {id}: wrong backup_passphrase? ({})",
            crate::util::bounded(last)
        )
    } else if stderr.contains("no valid OpenPGP data") {
        format!("backup {id} is not a GnuPG-encrypted backup")
    } else {
        format!(
            "restoring backup {id} failed: {}",
            crate::util::bounded(last)
        )
    }
}

/// A backup id for the UTC time `secs.micros` since the epoch.
pub fn backup_id(secs: u64, micros: u32) -> String {
    let (y, mo, d, h, mi, s) = crate::relations::s3::sigv4::utc(secs);
    format!("{ID_PREFIX}{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{micros:06}")
}

/// Checks an operator-given backup id: one object name, no path.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 200
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || id.starts_with('.')
    {
        return Err(format!(
            "backup-id \"{}\" is not a backup id (letters, digits, '-', '_' and '.', as list-backups shows them)",
            crate::util::bounded(&id.chars().take(64).collect::<String>())
        ));
    }
    Ok(())
}

/// The object key of a backup under the bucket's path (`""` or `prefix/`).
pub fn key(path: &str, id: &str) -> String {
    format!("{path}{id}")
}

/// The backup id of an object key under `path` (the reference charm, with an empty
/// path, stored keys with a leading `/`).
pub fn id_of(path: &str, key: &str) -> Option<String> {
    let id = key.strip_prefix(path)?.trim_start_matches('/');
    (!id.is_empty()).then(|| id.to_string())
}

/// One listed backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub last_modified: String,
    pub size: u64,
}

/// The `formatted` result of `list-backups`: an aligned table, oldest first.
pub fn table(backups: &[Listed]) -> String {
    let w = backups
        .iter()
        .map(|b| b.id.len())
        .max()
        .unwrap_or(0)
        .max("backup-id".len());
    let m = backups
        .iter()
        .map(|b| b.last_modified.len())
        .max()
        .unwrap_or(0)
        .max("last-modified".len());
    let mut out = format!("{:<w$} | {:<m$} | size\n", "backup-id", "last-modified");
    out.push_str(&"-".repeat(w + m + 10));
    for b in backups {
        out.push_str(&format!(
            "\n{:<w$} | {:<m$} | {}",
            b.id, b.last_modified, b.size
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_what_lives_only_on_the_volume_is_selected() {
        let top = names(&[
            "example.com.signing.key",
            "homeserver.db",
            "homeserver.db-wal",
            "homeserver.yaml",
            "homeserver.yaml.candidate",
            "log.config",
            "media_store",
            ".charm-database-backend",
            ".charm-media-s3",
            "stats-exporter.password",
            "media-s3.aws-config",
            "appservice-irc.yaml",
            "appservices",
            ".charm-restore",
        ]);
        let media = names(&[
            "local_content",
            "local_thumbnails",
            "remote_content",
            "url_cache",
        ]);
        assert_eq!(
            select(&top, &media, false),
            names(&[
                "data/.charm-database-backend",
                "data/.charm-media-s3",
                "data/appservice-irc.yaml",
                "data/appservices",
                "data/example.com.signing.key",
                "data/homeserver.db",
                "data/homeserver.db-wal",
                "data/homeserver.yaml",
                "data/log.config",
                "data/media_store/local_content",
                "data/media_store/local_thumbnails",
            ])
        );
        assert_eq!(select(&[], &[], false), Vec::<String>::new());
        // On PostgreSQL, the SQLite database left behind is not backed up.
        let on_pg = select(&top, &media, true);
        assert!(
            !on_pg.iter().any(|p| p.contains("homeserver.db")),
            "{on_pg:?}"
        );
        assert!(on_pg.contains(&"data/.charm-database-backend".to_string()));
    }

    #[test]
    fn the_media_kept_from_canonicals_charm_is_backed_up_too() {
        let stores = [
            (MEDIA_DIRS[0], names(&["remote_content"])),
            ("media", names(&["local_content", "remote_thumbnail"])),
        ];
        assert_eq!(
            select_stores(
                &names(&["a.signing.key", ".charm-media-path"]),
                &stores,
                true
            ),
            names(&[
                "data/.charm-media-path",
                "data/a.signing.key",
                "data/media/local_content"
            ])
        );
    }

    #[test]
    fn no_secret_is_in_the_commands() {
        let create = create_command(&names(&["data/a.key"]));
        assert_eq!(create[0], "/bin/bash");
        assert_eq!(create.last().map(String::as_str), Some("data/a.key"));
        assert!(create[2].contains("--passphrase-fd 3 --symmetric --cipher-algo AES256"));
        assert!(create[2].contains("3<&0"));
        let restore = restore_command("/data/.charm-restore");
        assert!(restore[2].contains("--passphrase-fd 0 --decrypt"));
        assert_eq!(restore[4], "/data/.charm-restore");
        for c in create.iter().chain(restore.iter()) {
            assert!(!c.contains("passphrase="), "{c}");
        }
    }

    #[test]
    fn ids_keys_and_failures() {
        assert_eq!(backup_id(1_369_353_600, 42), "backup-20130524000000000042");
        assert!(check_id("backup-20130524000000000042").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert_eq!(key("", "backup-1"), "backup-1");
        assert_eq!(key("synapse/", "backup-1"), "synapse/backup-1");
        assert_eq!(
            id_of("synapse/", "synapse/backup-1").as_deref(),
            Some("backup-1")
        );
        assert_eq!(id_of("", "/backup-1").as_deref(), Some("backup-1"));
        assert_eq!(id_of("synapse/", "other/backup-1"), None);
        assert!(
            restore_failure("b", "gpg: decryption failed: Bad session key\n")
                .contains("wrong backup_passphrase")
        );
        assert_eq!(
            restore_failure("b", "gpg: no valid OpenPGP data found.\n"),
            "backup b is not a GnuPG-encrypted backup"
        );
        assert_eq!(
            restore_failure("b", "tar: x: Cannot open\n\n"),
            "restoring backup b failed: tar: x: Cannot open"
        );
    }

    #[test]
    fn the_table_aligns_columns() {
        let t = table(&[Listed {
            id: "backup-1".into(),
            last_modified: "2024-05-24T10:00:00.000Z".into(),
            size: 42,
        }]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "backup-id | last-modified            | size");
        assert_eq!(lines[2], "backup-1  | 2024-05-24T10:00:00.000Z | 42");
        assert_eq!(table(&[]).lines().count(), 2);
    }
}
