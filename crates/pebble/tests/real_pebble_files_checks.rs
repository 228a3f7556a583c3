//! Tests against a real Pebble daemon (see tests/common/mod.rs): checks and
//! health, files, signals and notices. Services, changes and layers are in
//! real_pebble.rs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{api_error, eventually, layer_with, path_error, Pebble, WAIT};
use pebble::{
    Check, CheckLevel, CheckStatus, FileType, GoDuration, Layer, MakeDirOptions, PushOptions,
    Service,
};

// ----- checks and health ----------------------------------------------------

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn checks_health_start_and_stop() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let port = free_port();
    let mut down = Check::tcp(port);
    down.level = Some(CheckLevel::Alive);
    down.period = Some(GoDuration::from_millis(100));
    down.threshold = Some(1);
    if let Some(t) = down.tcp.as_mut() {
        t.host = Some("127.0.0.1".into());
    }
    // A generous period: an exec check's timeout is capped at its period,
    // and a loaded machine can take more than 100 ms to run /bin/true.
    let mut up = Check::exec("/bin/true");
    up.level = Some(CheckLevel::Ready);
    up.period = Some(GoDuration::from_secs(2));
    up.threshold = Some(3);
    let mut layer = Layer::default();
    layer.checks.insert("down".into(), down);
    layer.checks.insert("up".into(), up);
    client.add_layer("checks", &layer, true).unwrap();

    // Checks start with add-layer: no replan needed.
    assert!(eventually(Duration::from_secs(10), || {
        client
            .checks(None, &["down"])
            .map(|c| c[0].status == CheckStatus::Down)
            .unwrap_or(false)
    }));
    assert!(
        !client.health(None, &[]).unwrap(),
        "502 must read as unhealthy"
    );
    assert!(!client.health(Some(CheckLevel::Alive), &[]).unwrap());
    // `ready` includes `alive` checks...
    assert!(!client.health(Some(CheckLevel::Ready), &[]).unwrap());
    // ...but names narrow it down.
    assert!(client.health(None, &["up"]).unwrap());

    let all = client.checks(None, &[]).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].failures >= 1, "{all:?}");
    assert_eq!(all[0].threshold, 1);
    assert_eq!(all[1].status, CheckStatus::Up, "{all:?}");
    // On /v1/checks the level filter is exact.
    let alive = client.checks(Some(CheckLevel::Alive), &[]).unwrap();
    assert_eq!(alive.len(), 1);
    assert_eq!(alive[0].name, "down");

    // Something starts listening: the check recovers, health is back.
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        client.health(None, &[]).unwrap_or(false)
    }));
    assert_eq!(
        client.checks(None, &["down"]).unwrap()[0].status,
        CheckStatus::Up
    );

    // Stop/start only a steadily healthy check. Pebble v1.32.1 panics and
    // EXITS ("change N unexpectedly became unready (Undo)") when stop-checks
    // hits a check whose perform/recover change has just finished, which
    // happens readily with a failing short-period check.
    assert_eq!(client.stop_checks(&["up"]).unwrap(), ["up"]);
    assert!(client.stop_checks(&["up"]).unwrap().is_empty());
    assert_eq!(
        client.checks(None, &["up"]).unwrap()[0].status,
        CheckStatus::Inactive
    );
    assert!(client.health(None, &["up"]).unwrap());
    assert_eq!(client.start_checks(&["up"]).unwrap(), ["up"]);
    assert!(client.start_checks(&["down", "up"]).unwrap().is_empty());

    let (status, _, message) = api_error(client.start_checks(&["nope"]).unwrap_err());
    eprintln!("unknown check: {status} {message}");
    assert_eq!(status, 400);
}

// ----- files -------------------------------------------------------------------

#[test]
fn push_pull_binary_with_owner_and_permissions() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let path = pebble.dir().join("data/sub/blob.bin");
    let path = path.to_str().unwrap();
    let content: Vec<u8> = (0..=255u8).collect();
    let opts = PushOptions {
        make_dirs: true,
        permissions: Some(0o640),
        user_id: Some(65534),
        group_id: Some(65534),
        ..PushOptions::default()
    };
    client.push(path, &content, &opts).unwrap();
    assert_eq!(client.pull(path).unwrap(), content);
    assert_eq!(fs::read(path).unwrap(), content);

    let info = client.list_files(path, None, false).unwrap();
    assert_eq!(info.len(), 1);
    let f = &info[0];
    assert_eq!(f.name, "blob.bin");
    assert_eq!(f.path, path);
    assert_eq!(f.file_type, FileType::File);
    assert_eq!(f.size, Some(256));
    assert_eq!(f.permissions, 0o640);
    assert_eq!(f.user_id, Some(65534));
    assert_eq!(f.group_id, Some(65534));
    assert_eq!(f.user.as_deref(), Some("nobody"));

    // Parent directories created by make-dirs are chowned too.
    let parent = client
        .list_files(&format!("{}/data/sub", pebble.dir().display()), None, true)
        .unwrap();
    assert_eq!(parent[0].file_type, FileType::Directory);
    assert_eq!(parent[0].permissions, 0o755);
    assert_eq!(parent[0].user_id, Some(65534));

    // Overwrite by user name; default permissions 0644.
    client
        .push(
            path,
            b"new",
            &PushOptions {
                user: Some("nobody".into()),
                group: Some("nogroup".into()),
                ..PushOptions::default()
            },
        )
        .unwrap();
    let f = &client.list_files(path, None, true).unwrap()[0];
    assert_eq!(f.permissions, 0o644);
    assert_eq!(f.group.as_deref(), Some("nogroup"));
    assert_eq!(client.pull(path).unwrap(), b"new");
}

#[test]
fn push_pull_large_and_empty_files() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let big: Vec<u8> = (0..(3 << 20) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = pebble.dir().join("big.bin");
    let path = path.to_str().unwrap();
    client.push(path, &big, &PushOptions::default()).unwrap();
    assert_eq!(client.pull(path).unwrap(), big);

    let empty = pebble.dir().join("empty");
    let empty = empty.to_str().unwrap();
    client.push(empty, b"", &PushOptions::default()).unwrap();
    assert_eq!(client.pull(empty).unwrap(), b"");

    // Paths with spaces and quotes survive the multipart filename.
    let odd = pebble.dir().join("we \"ird\" name.txt");
    let odd = odd.to_str().unwrap();
    client.push(odd, b"odd", &PushOptions::default()).unwrap();
    assert_eq!(client.pull(odd).unwrap(), b"odd");
}

#[test]
fn file_errors_are_path_errors() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let dir = pebble.dir().display().to_string();

    let missing = format!("{dir}/missing.txt");
    let e = client.pull(&missing).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    eprintln!("pull missing: {e}");
    let (kind, message) = path_error(e);
    assert_eq!(kind, "not-found");
    assert!(message.contains("no such file or directory"), "{message}");

    let (kind, message) = path_error(client.pull(&dir).unwrap_err());
    eprintln!("pull dir: {kind} {message}");
    assert_eq!(kind, "generic-file-error");
    assert!(
        message.contains("can only read a regular file"),
        "{message}"
    );

    // No parent directory and no make_dirs.
    let e = client
        .push(
            &format!("{dir}/no/such/dir/f"),
            b"x",
            &PushOptions::default(),
        )
        .unwrap_err();
    eprintln!("push without parent: {e}");
    assert!(e.is_not_found(), "{e:?}");

    let (kind, message) = path_error(
        client
            .push("relative/path", b"x", &PushOptions::default())
            .unwrap_err(),
    );
    eprintln!("push relative: {kind} {message}");
    assert!(message.contains("absolute"), "{message}");

    // Pebble accepts exactly three octal digits.
    let e = client
        .push(
            &format!("{dir}/f"),
            b"x",
            &PushOptions {
                permissions: Some(0o4755),
                ..PushOptions::default()
            },
        )
        .unwrap_err();
    eprintln!("push 4755: {e}");

    // Unknown user.
    let e = client
        .push(
            &format!("{dir}/f"),
            b"x",
            &PushOptions {
                user: Some("no-such-user-xyz".into()),
                ..PushOptions::default()
            },
        )
        .unwrap_err();
    eprintln!("push unknown user: {e}");
}

#[test]
fn list_and_remove() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let dir = format!("{}/tree", pebble.dir().display());
    for name in ["a.txt", "b.txt", "c.log"] {
        client
            .push(
                &format!("{dir}/{name}"),
                name.as_bytes(),
                &PushOptions {
                    make_dirs: true,
                    ..PushOptions::default()
                },
            )
            .unwrap();
    }
    let all = client.list_files(&dir, None, false).unwrap();
    let names: Vec<_> = all.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a.txt", "b.txt", "c.log"]);
    let txt = client.list_files(&dir, Some("*.txt"), false).unwrap();
    assert_eq!(txt.len(), 2);
    let itself = client.list_files(&dir, None, true).unwrap();
    assert_eq!(itself.len(), 1);
    assert_eq!(itself[0].file_type, FileType::Directory);
    assert_eq!(itself[0].size, None);
    assert!(client
        .list_files(&dir, Some("*.none"), false)
        .unwrap()
        .is_empty());

    let e = client
        .list_files(&format!("{dir}/missing"), None, false)
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    eprintln!("list missing: {e}");

    // Non-recursive remove of a file, then of a non-empty directory.
    client.remove_path(&format!("{dir}/c.log"), false).unwrap();
    assert_eq!(client.list_files(&dir, None, false).unwrap().len(), 2);
    let (kind, message) = path_error(client.remove_path(&dir, false).unwrap_err());
    eprintln!("remove non-empty: {kind} {message}");
    let e = client
        .remove_path(&format!("{dir}/missing"), false)
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    // Recursive removes everything, and a missing path is fine.
    client.remove_path(&dir, true).unwrap();
    assert!(!Path::new(&dir).exists());
    client.remove_path(&dir, true).unwrap();
}

#[test]
fn make_dir_variants() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let base = pebble.dir().display().to_string();
    let deep = format!("{base}/x/y/z");
    client
        .make_dir(
            &deep,
            &MakeDirOptions {
                make_parents: true,
                permissions: Some(0o700),
                user_id: Some(65534),
                group_id: Some(65534),
                ..MakeDirOptions::default()
            },
        )
        .unwrap();
    let info = &client.list_files(&deep, None, true).unwrap()[0];
    assert_eq!(info.file_type, FileType::Directory);
    assert_eq!(info.permissions, 0o700);
    assert_eq!(info.user_id, Some(65534));
    // Existing directory: fine with make_parents, an error without.
    client
        .make_dir(
            &deep,
            &MakeDirOptions {
                make_parents: true,
                ..MakeDirOptions::default()
            },
        )
        .unwrap();
    let (kind, message) = path_error(
        client
            .make_dir(&deep, &MakeDirOptions::default())
            .unwrap_err(),
    );
    eprintln!("make_dir existing: {kind} {message}");
    // Missing parent without make_parents.
    let e = client
        .make_dir(&format!("{base}/p/q"), &MakeDirOptions::default())
        .unwrap_err();
    eprintln!("make_dir missing parent: {e}");
    assert!(e.is_not_found(), "{e:?}");
    // Default mode 0755.
    client
        .make_dir(&format!("{base}/plain"), &MakeDirOptions::default())
        .unwrap();
    assert_eq!(
        client
            .list_files(&format!("{base}/plain"), None, true)
            .unwrap()[0]
            .permissions,
        0o755
    );
}

// ----- signals ------------------------------------------------------------------

#[test]
fn signals() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let marker = pebble.dir().join("hup");
    let mut svc = Service::new(format!(
        "/bin/sh -c 'trap \"echo hup >> {}\" HUP; while true; do sleep 0.1; done'",
        marker.display()
    ));
    svc.kill_delay = Some(GoDuration::from_secs(1));
    client
        .add_layer("base", &layer_with("svc", svc), true)
        .unwrap();

    let (status, _, message) = api_error(client.send_signal("SIGHUP", &["svc"]).unwrap_err());
    assert_eq!(status, 500);
    assert_eq!(
        message,
        "cannot send signal to \"svc\": service is not running"
    );

    client.start(&["svc"], WAIT).unwrap();
    client.send_signal("SIGHUP", &["svc"]).unwrap();
    assert!(eventually(Duration::from_secs(5), || marker.exists()));

    let (status, _, message) = api_error(client.send_signal("SIGFOO", &["svc"]).unwrap_err());
    eprintln!("bad signal: {status} {message}");
    assert_eq!(status, 500);
    assert!(message.contains("SIGFOO"), "{message}");

    let (status, _, message) = api_error(client.send_signal("SIGHUP", &[]).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(message, "must specify one or more services");
}

// ----- notices -------------------------------------------------------------------

#[test]
fn notices_add_and_list() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let data = BTreeMap::from([("reason".to_string(), "config-changed".to_string())]);
    let id = client.notify("example.com/synapse/reload", &data).unwrap();
    assert!(!id.is_empty());
    let id2 = client
        .notify("example.com/synapse/reload", &BTreeMap::new())
        .unwrap();
    assert_eq!(id, id2, "same key, same notice");
    client
        .notify("example.com/other", &BTreeMap::new())
        .unwrap();

    let found = client
        .notices(&["custom"], &["example.com/synapse/reload"])
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let n = &found[0];
    eprintln!("notice: {n:?}");
    assert_eq!(n.id, id);
    assert_eq!(n.notice_type, "custom");
    assert_eq!(n.occurrences, 2);
    assert_eq!(n.last_data, BTreeMap::new());
    assert_eq!(client.notices(&["custom"], &[]).unwrap().len(), 2);
    assert!(client.notices(&["warning"], &[]).unwrap().is_empty());

    let (status, _, message) = api_error(client.notify("not-a-key", &data).unwrap_err());
    eprintln!("bad key: {message}");
    assert_eq!(status, 400);
}
