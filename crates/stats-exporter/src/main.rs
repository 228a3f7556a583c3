//! `synapse-stats-exporter`: see the library documentation. Exit codes: 0 on
//! SIGTERM/SIGINT, 1 when it cannot start (port in use, ...), 2 for a bad
//! configuration or command line.

use std::process::ExitCode;

use synapse_stats_exporter::config::Config;
use synapse_stats_exporter::{log, run};

const USAGE: &str = "\
Usage: synapse-stats-exporter

Serves Synapse room and user counts, read from its PostgreSQL database, in the
Prometheus text format on every GET path. Configured by environment variables:

  PROM_SYNAPSE_DATABASE       database name                 (synapse)
  PROM_SYNAPSE_HOST           host, or unix socket directory (host)
  PROM_SYNAPSE_PORT           port                          (5432)
  PROM_SYNAPSE_USER           user                          (user)
  PROM_SYNAPSE_PASSWORD       password                      (password)
  PROM_SYNAPSE_PASSWORD_FILE  file holding the password; takes precedence
  POLLING_INTERVAL_SECONDS    seconds between polls         (60)
  EXPORTER_PORT               port to serve metrics on      (9877)
  EXPORTER_BIND               address to listen on          (::, else 0.0.0.0)
";

fn main() -> ExitCode {
    if let Some(arg) = std::env::args_os().nth(1) {
        return match arg.to_str() {
            Some("-h" | "--help") => {
                print!("{USAGE}");
                ExitCode::SUCCESS
            }
            Some("-V" | "--version") => {
                println!("synapse-stats-exporter {}", env!("CARGO_PKG_VERSION"));
                ExitCode::SUCCESS
            }
            _ => {
                log(&format!(
                    "unexpected argument {arg:?}: configuration is by environment (see --help)"
                ));
                ExitCode::from(2)
            }
        };
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            log(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            log(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(&e);
            ExitCode::FAILURE
        }
    }
}
