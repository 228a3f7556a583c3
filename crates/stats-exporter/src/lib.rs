//! Synapse stats exporter: polls Synapse's PostgreSQL database for the number
//! of rooms and users and serves them to Prometheus.
//!
//! * [`config`]: environment variables (pure).
//! * [`metrics`]: state and text exposition (pure).
//! * [`poller`]: the database polling loop.
//! * [`http`]: the HTTP responder.
//! * [`run`]: wires them together until SIGTERM/SIGINT.

pub mod config;
pub mod http;
pub mod metrics;
pub mod poller;

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use config::Config;
use metrics::Metrics;
use poller::{describe_target, Poller};

/// Writes one line to stderr in a single write; errors (closed stderr) are
/// ignored rather than fatal.
pub fn log(message: &str) {
    let line = format!("synapse-stats-exporter: {message}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Runs the exporter until SIGTERM or SIGINT. Must be called inside a tokio
/// runtime with I/O and time enabled. Errors are start-up failures (the port
/// cannot be bound, signal handlers cannot be installed).
pub async fn run(config: Config) -> Result<(), String> {
    let listener = http::bind(config.bind, config.exporter_port)
        .and_then(TcpListener::from_std)
        .map_err(|e| format!("cannot listen on port {}: {e}", config.exporter_port))?;
    let mut sigterm = signal(SignalKind::terminate())
        .map_err(|e| format!("cannot install the SIGTERM handler: {e}"))?;
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|e| format!("cannot install the SIGINT handler: {e}"))?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| format!("port {}", config.exporter_port));
    log(&format!(
        "listening on {local}; polling PostgreSQL at {} every {}s",
        describe_target(&config),
        config.polling_interval.as_secs()
    ));

    let metrics = Arc::new(Mutex::new(Metrics::new()));
    let poller = Poller::new(&config);
    tokio::select! {
        () = poller.run(metrics.clone(), config.polling_interval) => {}
        () = http::serve(listener, metrics) => {}
        _ = sigterm.recv() => log("received SIGTERM, exiting"),
        _ = sigint.recv() => log("received SIGINT, exiting"),
    }
    Ok(())
}
