//! The Pebble request counter (`JUJULOCAL_COUNT_PEBBLE=1`, used by `make bench`)
//! against a real Pebble: the client sees the same daemon through the proxy, every
//! request is noted with pushes told apart from the other file actions, and the real
//! socket is back afterwards. Needs Pebble (`PEBBLE_BIN`, else the tools directory).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jujulocal::pebble_count::Counter;
use pebble::{Client, MakeDirOptions, PushOptions};

mod support;
use support::pebble_bin;

struct Daemon(Child, PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[test]
fn a_real_pebble_is_counted_through_the_proxy_and_gets_its_socket_back() {
    let dir = tempfile::Builder::new()
        .prefix("jl-count-")
        .tempdir_in("/tmp")
        .unwrap()
        .keep();
    let socket = dir.join("pebble.socket");
    let child = Command::new(pebble_bin())
        .args(["run", "--create-dirs"])
        .env("PEBBLE", dir.join("state"))
        .env("PEBBLE_SOCKET", &socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Daemon(child, dir.clone());
    let client = Client::new(&socket).with_timeout(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(30);
    let boot = loop {
        match client.system_info() {
            Ok(info) => break info.boot_id,
            Err(e) if Instant::now() > deadline => panic!("Pebble did not answer: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };

    let counter = Counter::start(&[("synapse".into(), socket.clone())]);
    let file = dir.join("files/greeting");
    let file = file.to_str().unwrap();
    let opts = PushOptions {
        make_dirs: true,
        ..Default::default()
    };
    client.push(file, b"hello", &opts).unwrap();
    let parents = MakeDirOptions {
        make_parents: true,
        ..Default::default()
    };
    client
        .make_dir(dir.join("other").to_str().unwrap(), &parents)
        .unwrap();
    assert_eq!(
        client.system_info().unwrap().boot_id,
        boot,
        "the same daemon"
    );
    let calls = counter.finish();

    let seen: Vec<(&str, &str, bool)> = calls
        .iter()
        .map(|c| (c.container.as_str(), c.method.as_str(), c.push))
        .collect();
    assert_eq!(
        seen,
        [
            ("synapse", "POST", true),
            ("synapse", "POST", false),
            ("synapse", "GET", false)
        ],
        "{calls:?}"
    );
    assert!(calls[2].target.starts_with("/v1/system-info"), "{calls:?}");
    // Back on the real socket: the pushed file is there, nothing is left aside.
    assert_eq!(client.pull(file).unwrap(), b"hello");
    assert!(!dir.join(".pebble-real.socket").exists());
}
