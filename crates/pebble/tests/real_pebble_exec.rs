//! Exec and service logs against the real Pebble daemon.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Pebble;
use pebble::{ExecOptions, Layer, Service, Startup};

fn opts(command: &[&str]) -> ExecOptions {
    ExecOptions {
        command: command.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

#[test]
fn exec_returns_exit_code_and_separate_output() {
    let p = Pebble::start();
    let c = p.client();
    let out = c
        .exec(&ExecOptions {
            environment: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
            ..opts(&[
                "/bin/sh",
                "-c",
                "echo \"$GREETING out\"; echo err >&2; exit 3",
            ])
        })
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let ok = c.exec(&opts(&["/bin/true"])).unwrap();
    assert_eq!((ok.exit_code, ok.stdout.len(), ok.stderr.len()), (0, 0, 0));
}

#[test]
fn exec_passes_stdin_and_working_dir() {
    let p = Pebble::start();
    let c = p.client();
    let out = c
        .exec(&ExecOptions {
            stdin: b"line one\nline two\n".to_vec(),
            working_dir: Some("/tmp".into()),
            ..opts(&["/bin/sh", "-c", "pwd; wc -l"])
        })
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/tmp\n2\n");
}

#[test]
fn exec_of_a_missing_program_is_a_change_error() {
    let p = Pebble::start();
    let err = p
        .client()
        .exec(&opts(&["/nonexistent/program"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            pebble::Error::Change { .. } | pebble::Error::Api { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/program"), "{err}");
}

#[test]
fn exec_timeout_kills_the_command() {
    let p = Pebble::start();
    let started = std::time::Instant::now();
    let err = p
        .client()
        .exec(&ExecOptions {
            timeout: Duration::from_secs(1),
            ..opts(&["/bin/sleep", "30"])
        })
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn logs_give_a_services_last_lines() {
    let p = Pebble::start();
    let c = p.client();
    let svc = Service {
        startup: Some(Startup::Enabled),
        command: Some("/bin/sh -c 'for i in 1 2 3 4 5; do echo line$i; done; sleep 60'".into()),
        ..Service::default()
    };
    let layer = Layer {
        services: BTreeMap::from([("talker".to_string(), svc)]),
        ..Layer::default()
    };
    c.add_layer("t", &layer, true).unwrap();
    c.replan(Duration::from_secs(20)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let logs = c.logs(&["talker"], 3).unwrap();
        if logs.last().is_some_and(|l| l.message.trim() == "line5") {
            break logs;
        }
        assert!(std::time::Instant::now() < deadline, "{logs:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let messages: Vec<&str> = lines.iter().map(|l| l.message.trim()).collect();
    assert_eq!(messages, ["line3", "line4", "line5"]);
    assert!(lines.iter().all(|l| l.service == "talker"));
}
