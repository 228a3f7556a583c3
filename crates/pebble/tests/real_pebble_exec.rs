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

/// Counts what it is given, optionally failing after `fail_after` bytes.
struct Counter {
    bytes: usize,
    fail_after: Option<usize>,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.fail_after.is_some_and(|n| self.bytes >= n) {
            return Err(std::io::Error::other("sink full"));
        }
        self.bytes += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reader of `len` bytes that fails with an error after `fail_at` bytes, if set.
struct Source {
    left: usize,
    fail_at: Option<usize>,
    sent: usize,
}

impl std::io::Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.fail_at.is_some_and(|n| self.sent >= n) {
            return Err(std::io::Error::other("source broke"));
        }
        let n = buf.len().min(self.left).min(100_000);
        buf[..n].fill(b'x');
        self.left -= n;
        self.sent += n;
        Ok(n)
    }
}

#[test]
fn exec_streaming_moves_more_than_the_buffered_limit_both_ways() {
    let p = Pebble::start();
    let c = p.client();
    // 40 MB out: far more than the 1 MiB `exec` keeps.
    let mut sink = Counter {
        bytes: 0,
        fail_after: None,
    };
    let out = c
        .exec_streaming(
            &opts(&["/bin/sh", "-c", "head -c 40000000 /dev/zero; echo done >&2"]),
            &mut std::io::empty(),
            &mut sink,
        )
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(sink.bytes, 40_000_000);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "done\n");
    assert!(out.stdin_error.is_none() && out.stdout_error.is_none());
    // 30 MB in, after a first line the command reads on its own.
    let mut src = Source {
        left: 30_000_000,
        fail_at: None,
        sent: 0,
    };
    let mut sink = Vec::new();
    let out = c
        .exec_streaming(
            &ExecOptions {
                stdin: b"secret line\n".to_vec(),
                ..opts(&["/bin/sh", "-c", "read -r first; echo \"$first\"; wc -c"])
            },
            &mut src,
            &mut sink,
        )
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&sink), "secret line\n30000000\n");
}

#[test]
fn exec_streaming_reports_broken_streams_and_never_hangs() {
    let p = Pebble::start();
    let c = p.client();
    // The sink fails: the command still runs to its end, the error comes back.
    let mut sink = Counter {
        bytes: 0,
        fail_after: Some(1),
    };
    let out = c
        .exec_streaming(
            &opts(&["/bin/sh", "-c", "head -c 5000000 /dev/zero"]),
            &mut std::io::empty(),
            &mut sink,
        )
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout_error.unwrap().to_string(), "sink full");
    // The source fails: the command's input ends early (it sees a short input).
    let mut src = Source {
        left: 10_000_000,
        fail_at: Some(1_000_000),
        sent: 0,
    };
    let mut sink = Vec::new();
    let out = c
        .exec_streaming(&opts(&["/bin/sh", "-c", "wc -c"]), &mut src, &mut sink)
        .unwrap();
    assert_eq!(out.stdin_error.unwrap().to_string(), "source broke");
    assert!(src.sent >= 1_000_000 && src.sent < 10_000_000);
    assert_eq!(String::from_utf8_lossy(&sink).trim(), src.sent.to_string());
    // The command exits without reading its input: the call returns its exit code.
    let mut src = Source {
        left: 200_000_000,
        fail_at: None,
        sent: 0,
    };
    let started = std::time::Instant::now();
    let res = c.exec_streaming(
        &opts(&["/bin/sh", "-c", "echo bad >&2; exit 2"]),
        &mut src,
        &mut Vec::new(),
    );
    match res {
        Ok(out) => {
            assert_eq!(out.exit_code, 2);
            assert_eq!(String::from_utf8_lossy(&out.stderr), "bad\n");
        }
        Err(e) => panic!("{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}
