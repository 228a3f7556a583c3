//! Per-call latency of the Pebble client against a real daemon.
//!
//! Starts its own Pebble (binary from `PEBBLE_BIN`, else
//! `/opt/synapse-charm/bin/pebble`, else `pebble` on PATH) in a temporary
//! directory and times ~200 iterations of the calls a charm hook makes.
//!
//! ```sh
//! cargo run --release -p pebble --example pebble_latency [-- ITERATIONS]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use pebble::{GoDuration, Layer, PushOptions, Service, Startup};

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| {
        let idx = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[idx].as_secs_f64() * 1e3
    };
    println!(
        "pebble {name}: median {:.2} ms, p95 {:.2} ms",
        at(0.5),
        at(0.95)
    );
}

fn time<T>(iterations: usize, mut f: impl FnMut() -> pebble::Result<T>) -> Vec<Duration> {
    // A few warm-up calls first.
    for _ in 0..5 {
        f().unwrap_or_else(|e| panic!("warm-up call failed: {e}"));
    }
    (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f().unwrap_or_else(|e| panic!("call failed: {e}"));
            start.elapsed()
        })
        .collect()
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let daemon = common::Pebble::start();
    let client = daemon.client();
    let info = client.system_info().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "pebble {} at {} ({} iterations per call)",
        info.version,
        daemon.socket().display(),
        iterations
    );

    let mut svc = Service::new("/bin/sleep 100000");
    svc.startup = Some(Startup::Enabled);
    svc.kill_delay = Some(GoDuration::from_secs(1));
    svc.environment
        .insert("CONFIG_HASH".into(), "0123456789abcdef".into());
    let mut layer = Layer::default();
    layer.services.insert("app".into(), svc);
    client
        .add_layer("app", &layer, true)
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .replan(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));

    report("system-info", time(iterations, || client.system_info()));
    report(
        "add-layer",
        time(iterations, || client.add_layer("app", &layer, true)),
    );
    report(
        "replan (no-op)",
        time(iterations, || client.replan(Duration::from_secs(30))),
    );
    let content = vec![b'x'; 1024];
    let path = daemon.dir().join("bench.txt");
    let path = path.to_string_lossy().into_owned();
    report(
        "push 1 KiB",
        time(iterations, || {
            client.push(&path, &content, &PushOptions::default())
        }),
    );
}
