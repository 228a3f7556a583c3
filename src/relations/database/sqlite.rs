//! A look into the embedded SQLite database (on the `data` volume, which is mounted in
//! the charm container too) before Synapse moves to PostgreSQL: users or rooms there
//! must not be silently left behind.

use std::path::Path;

/// Users and rooms in Synapse's SQLite database, not counting the charm's own admin account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contents {
    pub users: i64,
    pub rooms: i64,
}

impl Contents {
    pub fn is_empty(&self) -> bool {
        self.users == 0 && self.rooms == 0
    }
}

/// `Ok(None)` when there is no SQLite database (or it has no Synapse schema).
pub fn contents(path: &Path) -> Result<Option<Contents>, rusqlite::Error> {
    if !path.exists() {
        return Ok(None);
    }
    let db = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    let has = |table: &str| -> Result<bool, rusqlite::Error> {
        db.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if !has("users")? || !has("rooms")? {
        return Ok(None);
    }
    let users = db.query_row(
        "SELECT count(*) FROM users WHERE name NOT LIKE '@charm-admin-%'",
        [],
        |r| r.get(0),
    )?;
    let rooms = db.query_row("SELECT count(*) FROM rooms", [], |r| r.get(0))?;
    Ok(Some(Contents { users, rooms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_users_and_rooms_but_not_the_charm_admin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("homeserver.db");
        assert_eq!(contents(&path).unwrap(), None);
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE users(name TEXT); CREATE TABLE rooms(room_id TEXT);")
            .unwrap();
        assert_eq!(
            contents(&path).unwrap(),
            Some(Contents { users: 0, rooms: 0 })
        );
        db.execute_batch("INSERT INTO users VALUES ('@charm-admin-abc:x');")
            .unwrap();
        assert!(contents(&path).unwrap().unwrap().is_empty());
        db.execute_batch(
            "INSERT INTO users VALUES ('@alice:x'); INSERT INTO rooms VALUES ('!r:x');",
        )
        .unwrap();
        assert_eq!(
            contents(&path).unwrap(),
            Some(Contents { users: 1, rooms: 1 })
        );
    }
}
