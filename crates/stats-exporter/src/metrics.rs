//! Exporter state and its rendering in the Prometheus text exposition format,
//! version 0.0.4.
//!
//! Pure: the poller records outcomes with explicit times, the HTTP server
//! renders. Timestamps are rendered with millisecond precision and durations
//! with microsecond precision, as fixed-point decimals, so the output is
//! deterministic for given inputs.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one successful poll read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub rooms: i64,
    pub users: i64,
}

/// Everything the exporter reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Counts from the last successful poll; `None` until one succeeds, and
    /// kept (not reset) when later polls fail.
    counts: Option<Counts>,
    last_poll_success: bool,
    /// Since the unix epoch; `None` before the first attempt.
    last_poll_at: Option<Duration>,
    last_success_at: Option<Duration>,
    polls_total: u64,
    poll_errors_total: u64,
    last_poll_duration: Option<Duration>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Records a poll that started at `started` (wall clock), took `took` and
    /// read `counts`.
    pub fn record_success(&mut self, counts: Counts, started: SystemTime, took: Duration) {
        let at = since_epoch(started);
        self.counts = Some(counts);
        self.last_poll_success = true;
        self.last_poll_at = Some(at);
        self.last_success_at = Some(at);
        self.polls_total += 1;
        self.last_poll_duration = Some(took);
    }

    /// Records a poll that started at `started`, took `took` and failed. The
    /// previous counts keep being reported.
    pub fn record_failure(&mut self, started: SystemTime, took: Duration) {
        self.last_poll_success = false;
        self.last_poll_at = Some(since_epoch(started));
        self.polls_total += 1;
        self.poll_errors_total += 1;
        self.last_poll_duration = Some(took);
    }

    pub fn counts(&self) -> Option<Counts> {
        self.counts
    }

    pub fn polls_total(&self) -> u64 {
        self.polls_total
    }

    pub fn poll_errors_total(&self) -> u64 {
        self.poll_errors_total
    }

    /// The whole exposition, ending with a newline.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1536);
        if let Some(counts) = self.counts {
            family(
                &mut out,
                "synapse_total_rooms",
                "gauge",
                "Total number of rooms in Synapse server",
                &counts.rooms.to_string(),
            );
            family(
                &mut out,
                "synapse_total_users",
                "gauge",
                "Total number of users in Synapse server",
                &counts.users.to_string(),
            );
        }
        family(
            &mut out,
            "synapse_stats_exporter_last_poll_success",
            "gauge",
            "Whether the last poll of the Synapse database succeeded (1) or failed (0)",
            if self.last_poll_success { "1" } else { "0" },
        );
        family(
            &mut out,
            "synapse_stats_exporter_last_poll_timestamp_seconds",
            "gauge",
            "Unix time of the last poll attempt (0 before the first one)",
            &timestamp(self.last_poll_at),
        );
        family(
            &mut out,
            "synapse_stats_exporter_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful poll (0 if none succeeded yet)",
            &timestamp(self.last_success_at),
        );
        family(
            &mut out,
            "synapse_stats_exporter_polls_total",
            "counter",
            "Number of polls of the Synapse database attempted",
            &self.polls_total.to_string(),
        );
        family(
            &mut out,
            "synapse_stats_exporter_poll_errors_total",
            "counter",
            "Number of polls of the Synapse database that failed",
            &self.poll_errors_total.to_string(),
        );
        family(
            &mut out,
            "synapse_stats_exporter_poll_duration_seconds",
            "gauge",
            "Duration of the last poll in seconds (0 before the first one)",
            &duration(self.last_poll_duration),
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: &str) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

fn since_epoch(t: SystemTime) -> Duration {
    // A clock before 1970 is reported as 0 rather than failing.
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn timestamp(t: Option<Duration>) -> String {
    match t {
        Some(d) => format!("{}.{:03}", d.as_secs(), d.subsec_millis()),
        None => "0".to_owned(),
    }
}

fn duration(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{}.{:06}", d.as_secs(), d.subsec_micros()),
        None => "0".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn before_any_poll() {
        assert_eq!(
            Metrics::new().render(),
            "\
# HELP synapse_stats_exporter_last_poll_success Whether the last poll of the Synapse database succeeded (1) or failed (0)
# TYPE synapse_stats_exporter_last_poll_success gauge
synapse_stats_exporter_last_poll_success 0
# HELP synapse_stats_exporter_last_poll_timestamp_seconds Unix time of the last poll attempt (0 before the first one)
# TYPE synapse_stats_exporter_last_poll_timestamp_seconds gauge
synapse_stats_exporter_last_poll_timestamp_seconds 0
# HELP synapse_stats_exporter_last_success_timestamp_seconds Unix time of the last successful poll (0 if none succeeded yet)
# TYPE synapse_stats_exporter_last_success_timestamp_seconds gauge
synapse_stats_exporter_last_success_timestamp_seconds 0
# HELP synapse_stats_exporter_polls_total Number of polls of the Synapse database attempted
# TYPE synapse_stats_exporter_polls_total counter
synapse_stats_exporter_polls_total 0
# HELP synapse_stats_exporter_poll_errors_total Number of polls of the Synapse database that failed
# TYPE synapse_stats_exporter_poll_errors_total counter
synapse_stats_exporter_poll_errors_total 0
# HELP synapse_stats_exporter_poll_duration_seconds Duration of the last poll in seconds (0 before the first one)
# TYPE synapse_stats_exporter_poll_duration_seconds gauge
synapse_stats_exporter_poll_duration_seconds 0
"
        );
    }

    #[test]
    fn after_a_successful_poll() {
        let mut m = Metrics::new();
        m.record_success(
            Counts {
                rooms: 12,
                users: 345,
            },
            at(1_700_000_000, 5),
            Duration::from_micros(2_501),
        );
        assert_eq!(
            m.render(),
            "\
# HELP synapse_total_rooms Total number of rooms in Synapse server
# TYPE synapse_total_rooms gauge
synapse_total_rooms 12
# HELP synapse_total_users Total number of users in Synapse server
# TYPE synapse_total_users gauge
synapse_total_users 345
# HELP synapse_stats_exporter_last_poll_success Whether the last poll of the Synapse database succeeded (1) or failed (0)
# TYPE synapse_stats_exporter_last_poll_success gauge
synapse_stats_exporter_last_poll_success 1
# HELP synapse_stats_exporter_last_poll_timestamp_seconds Unix time of the last poll attempt (0 before the first one)
# TYPE synapse_stats_exporter_last_poll_timestamp_seconds gauge
synapse_stats_exporter_last_poll_timestamp_seconds 1700000000.005
# HELP synapse_stats_exporter_last_success_timestamp_seconds Unix time of the last successful poll (0 if none succeeded yet)
# TYPE synapse_stats_exporter_last_success_timestamp_seconds gauge
synapse_stats_exporter_last_success_timestamp_seconds 1700000000.005
# HELP synapse_stats_exporter_polls_total Number of polls of the Synapse database attempted
# TYPE synapse_stats_exporter_polls_total counter
synapse_stats_exporter_polls_total 1
# HELP synapse_stats_exporter_poll_errors_total Number of polls of the Synapse database that failed
# TYPE synapse_stats_exporter_poll_errors_total counter
synapse_stats_exporter_poll_errors_total 0
# HELP synapse_stats_exporter_poll_duration_seconds Duration of the last poll in seconds (0 before the first one)
# TYPE synapse_stats_exporter_poll_duration_seconds gauge
synapse_stats_exporter_poll_duration_seconds 0.002501
"
        );
    }

    #[test]
    fn a_failure_keeps_the_old_counts() {
        let mut m = Metrics::new();
        m.record_success(
            Counts { rooms: 3, users: 7 },
            at(1_700_000_000, 0),
            Duration::from_millis(4),
        );
        m.record_failure(at(1_700_000_060, 250), Duration::from_secs(5));
        assert_eq!(
            m.render(),
            "\
# HELP synapse_total_rooms Total number of rooms in Synapse server
# TYPE synapse_total_rooms gauge
synapse_total_rooms 3
# HELP synapse_total_users Total number of users in Synapse server
# TYPE synapse_total_users gauge
synapse_total_users 7
# HELP synapse_stats_exporter_last_poll_success Whether the last poll of the Synapse database succeeded (1) or failed (0)
# TYPE synapse_stats_exporter_last_poll_success gauge
synapse_stats_exporter_last_poll_success 0
# HELP synapse_stats_exporter_last_poll_timestamp_seconds Unix time of the last poll attempt (0 before the first one)
# TYPE synapse_stats_exporter_last_poll_timestamp_seconds gauge
synapse_stats_exporter_last_poll_timestamp_seconds 1700000060.250
# HELP synapse_stats_exporter_last_success_timestamp_seconds Unix time of the last successful poll (0 if none succeeded yet)
# TYPE synapse_stats_exporter_last_success_timestamp_seconds gauge
synapse_stats_exporter_last_success_timestamp_seconds 1700000000.000
# HELP synapse_stats_exporter_polls_total Number of polls of the Synapse database attempted
# TYPE synapse_stats_exporter_polls_total counter
synapse_stats_exporter_polls_total 2
# HELP synapse_stats_exporter_poll_errors_total Number of polls of the Synapse database that failed
# TYPE synapse_stats_exporter_poll_errors_total counter
synapse_stats_exporter_poll_errors_total 1
# HELP synapse_stats_exporter_poll_duration_seconds Duration of the last poll in seconds (0 before the first one)
# TYPE synapse_stats_exporter_poll_duration_seconds gauge
synapse_stats_exporter_poll_duration_seconds 5.000000
"
        );
        assert_eq!(m.counts(), Some(Counts { rooms: 3, users: 7 }));
    }

    #[test]
    fn failures_before_any_success_report_no_counts() {
        let mut m = Metrics::new();
        m.record_failure(at(1_700_000_000, 0), Duration::from_millis(1));
        m.record_failure(at(1_700_000_001, 0), Duration::from_millis(1));
        let text = m.render();
        assert!(!text.contains("synapse_total_rooms"), "{text}");
        assert!(!text.contains("synapse_total_users"), "{text}");
        assert!(text.contains("\nsynapse_stats_exporter_poll_errors_total 2\n"));
        assert!(text.contains("\nsynapse_stats_exporter_polls_total 2\n"));
        assert!(text.contains("\nsynapse_stats_exporter_last_success_timestamp_seconds 0\n"));
        assert_eq!((m.polls_total(), m.poll_errors_total()), (2, 1 + 1));
    }

    #[test]
    fn recovery_sets_success_again() {
        let mut m = Metrics::new();
        m.record_failure(at(10, 0), Duration::ZERO);
        m.record_success(Counts { rooms: 1, users: 2 }, at(20, 0), Duration::ZERO);
        let text = m.render();
        assert!(text.contains("\nsynapse_stats_exporter_last_poll_success 1\n"));
        assert!(text.contains("\nsynapse_stats_exporter_last_success_timestamp_seconds 20.000\n"));
        assert!(text.contains("\nsynapse_stats_exporter_poll_errors_total 1\n"));
    }

    #[test]
    fn every_line_is_well_formed() {
        let mut m = Metrics::new();
        m.record_success(Counts { rooms: 0, users: 0 }, at(1, 0), Duration::ZERO);
        let text = m.render();
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                assert!(
                    rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                    "{line}"
                );
            } else {
                let (name, value) = line.split_once(' ').unwrap();
                assert!(name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }
}
