//! Measures the exporter's idle memory and scrape latency against a real
//! throwaway PostgreSQL (the test harness).
//!
//! ```text
//! cargo build --release -p synapse-stats-exporter --bins --examples
//! target/release/examples/scrape_latency [SCRAPES]
//! ```
//!
//! The exporter binary is taken from `$SYNAPSE_STATS_EXPORTER_BIN`, else from
//! next to this example's directory (`target/<profile>/synapse-stats-exporter`).
//! Prints one line:
//! `stats exporter: idle RSS X MiB (from /proc/<pid>/status VmRSS), scrape
//! latency median Y ms, p95 Z ms over N scrapes`.

#[path = "../tests/common/postgres.rs"]
mod postgres;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exporter_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SYNAPSE_STATS_EXPORTER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = me
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or("cannot locate the target directory")?;
    let bin = profile_dir.join("synapse-stats-exporter");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p synapse-stats-exporter --bins) \
             or set SYNAPSE_STATS_EXPORTER_BIN",
            bin.display()
        ))
    }
}

fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn run() -> Result<String, String> {
    let scrapes: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("bad scrape count {n:?}"))?,
        None => 200,
    };
    if scrapes == 0 {
        return Err("scrape count must be at least 1".into());
    }
    let bin = exporter_bin()?;

    let pg = postgres::try_start(postgres::PgOptions::default())?;
    pg.create_role("synapse", "bench-password", false);
    pg.create_database("synapse", "synapse");
    pg.psql_in(
        "synapse",
        "SET ROLE synapse;
         CREATE TABLE rooms(room_id text PRIMARY KEY);
         CREATE TABLE users(name text PRIMARY KEY);
         INSERT INTO rooms SELECT '!r' || i || ':bench' FROM generate_series(1, 1000) i;
         INSERT INTO users SELECT '@u' || i || ':bench' FROM generate_series(1, 5000) i;",
    );

    let port = postgres::free_port();
    let child = Command::new(&bin)
        .env_clear()
        .env("PROM_SYNAPSE_HOST", pg.host())
        .env("PROM_SYNAPSE_PORT", pg.port().to_string())
        .env("PROM_SYNAPSE_USER", "synapse")
        .env("PROM_SYNAPSE_PASSWORD", "bench-password")
        .env("PROM_SYNAPSE_DATABASE", "synapse")
        .env("EXPORTER_PORT", port.to_string())
        .env("POLLING_INTERVAL_SECONDS", "60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let child = Killed(child);
    let pid = child.0.id();

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if scrape(port).is_some_and(|s| s.contains("\nsynapse_total_rooms 1000\n")) {
            break;
        }
        if Instant::now() > deadline {
            return Err("the exporter did not complete its first poll within 15 s".into());
        }
        sleep(Duration::from_millis(50));
    }
    // Let it settle, then read its idle memory.
    sleep(Duration::from_millis(500));
    let rss = vm_rss_kib(pid).ok_or("cannot read VmRSS")?;

    let mut latencies = Vec::with_capacity(scrapes);
    for _ in 0..scrapes {
        let started = Instant::now();
        let body = scrape(port).ok_or("a scrape failed")?;
        latencies.push(started.elapsed());
        if !body.starts_with("HTTP/1.1 200 OK\r\n") {
            return Err(format!("unexpected response: {body}"));
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(format!(
        "stats exporter: idle RSS {:.1} MiB (from /proc/{pid}/status VmRSS), \
         scrape latency median {:.3} ms, p95 {:.3} ms over {scrapes} scrapes",
        rss as f64 / 1024.0,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scrape_latency: {e}");
            ExitCode::FAILURE
        }
    }
}
