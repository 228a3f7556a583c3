//! The database polling loop.
//!
//! One connection is kept between polls and replaced when it is closed or
//! broken. Each poll runs `SELECT COUNT(*) FROM rooms` and
//! `SELECT COUNT(*) FROM users`; its outcome goes into the shared [`Metrics`].
//! Failures never stop the loop: they are logged (one line per failed poll)
//! and the previous counts keep being served.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinHandle;
use tokio::time::{timeout, MissedTickBehavior};
use tokio_postgres::{Client, NoTls};

use crate::config::Config;
use crate::log;
use crate::metrics::{Counts, Metrics};

/// The state shared by the poller (writer) and the HTTP server (reader).
pub type SharedMetrics = Arc<Mutex<Metrics>>;

/// Limit for establishing a connection, authentication included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit for running both queries of one poll.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

pub const ROOMS_QUERY: &str = "SELECT COUNT(*) FROM rooms";
pub const USERS_QUERY: &str = "SELECT COUNT(*) FROM users";

/// Locks the shared metrics; a poisoned lock still holds usable data.
pub fn lock(metrics: &SharedMetrics) -> MutexGuard<'_, Metrics> {
    metrics.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Connection {
    client: Client,
    task: JoinHandle<()>,
}

/// Why one attempt failed.
enum Failure {
    /// The connection turned out to be closed: worth one retry when it was a
    /// kept connection (the server may have restarted since the last poll).
    ConnectionLost(String),
    /// Anything else (cannot connect, SQL error, timeout): no retry.
    Other(String),
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::ConnectionLost(m) | Failure::Other(m) => m,
        }
    }
}

pub struct Poller {
    pg: tokio_postgres::Config,
    /// "host:port (database D, user U)", for messages. No password.
    target: String,
    connection: Option<Connection>,
}

impl Poller {
    pub fn new(config: &Config) -> Poller {
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.host)
            .port(config.port)
            .dbname(&config.database)
            .user(&config.user)
            .password(&config.password)
            .application_name("synapse-stats-exporter")
            .connect_timeout(CONNECT_TIMEOUT);
        Poller {
            pg,
            target: describe_target(config),
            connection: None,
        }
    }

    /// Runs one poll, reconnecting first if needed. If a kept connection turns
    /// out to be dead (for example PostgreSQL restarted since the last poll),
    /// it retries once on a fresh connection.
    pub async fn poll_once(&mut self) -> Result<Counts, String> {
        let reusing = self
            .connection
            .as_ref()
            .is_some_and(|c| !c.client.is_closed());
        match self.try_poll().await {
            Ok(counts) => Ok(counts),
            Err(Failure::ConnectionLost(_)) if reusing => {
                self.try_poll().await.map_err(Failure::into_message)
            }
            Err(failure) => Err(failure.into_message()),
        }
    }

    async fn try_poll(&mut self) -> Result<Counts, Failure> {
        if self
            .connection
            .as_ref()
            .is_none_or(|c| c.client.is_closed())
        {
            self.connection = None;
            self.connection = Some(self.connect().await.map_err(Failure::Other)?);
        }
        let Some(connection) = self.connection.as_ref() else {
            return Err(Failure::Other("no database connection".to_owned()));
        };
        let client = &connection.client;
        let queries = async {
            let rooms = count(client, ROOMS_QUERY).await?;
            let users = count(client, USERS_QUERY).await?;
            Ok::<_, tokio_postgres::Error>(Counts { rooms, users })
        };
        match timeout(QUERY_TIMEOUT, queries).await {
            Ok(Ok(counts)) => Ok(counts),
            Ok(Err(e)) => {
                let message = format!("query failed on {}: {}", self.target, one_line(&e));
                if client.is_closed() {
                    self.connection = None;
                    Err(Failure::ConnectionLost(message))
                } else {
                    // A server-side error (missing table, permissions): the
                    // connection itself is fine and is kept.
                    Err(Failure::Other(message))
                }
            }
            Err(_) => {
                // The connection is in an unknown state: ask the server to
                // cancel the query, then drop the connection.
                let cancel = client.cancel_token();
                tokio::spawn(async move {
                    let _ = timeout(CONNECT_TIMEOUT, cancel.cancel_query(NoTls)).await;
                });
                if let Some(connection) = self.connection.take() {
                    connection.task.abort();
                }
                Err(Failure::Other(format!(
                    "queries on {} timed out after {}s",
                    self.target,
                    QUERY_TIMEOUT.as_secs()
                )))
            }
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        match timeout(CONNECT_TIMEOUT, self.pg.connect(NoTls)).await {
            Ok(Ok((client, connection))) => {
                // Errors of the connection task surface as errors of the next
                // query (the client is then closed), so they are not logged
                // here: one line per failed poll.
                let task = tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Connection { client, task })
            }
            Ok(Err(e)) => Err(format!(
                "cannot connect to PostgreSQL at {}: {}",
                self.target,
                one_line(&e)
            )),
            Err(_) => Err(format!(
                "cannot connect to PostgreSQL at {}: timed out after {}s",
                self.target,
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    /// Polls every `interval`, the first time at once, forever.
    pub async fn run(mut self, metrics: SharedMetrics, interval: Duration) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut succeeded_before = false;
        let mut failing = false;
        loop {
            ticker.tick().await;
            let started = SystemTime::now();
            let clock = Instant::now();
            let outcome = self.poll_once().await;
            let took = clock.elapsed();
            match outcome {
                Ok(counts) => {
                    lock(&metrics).record_success(counts, started, took);
                    if !succeeded_before || failing {
                        log(&format!(
                            "poll succeeded: {} rooms, {} users",
                            counts.rooms, counts.users
                        ));
                    }
                    succeeded_before = true;
                    failing = false;
                }
                Err(reason) => {
                    lock(&metrics).record_failure(started, took);
                    log(&format!("poll failed: {reason}"));
                    failing = true;
                }
            }
        }
    }
}

async fn count(client: &Client, query: &str) -> Result<i64, tokio_postgres::Error> {
    client.query_one(query, &[]).await?.try_get(0)
}

/// "host:port (database D, user U)"; a unix socket directory is shown as is.
pub fn describe_target(config: &Config) -> String {
    let host = if config.host.contains(':') && !config.host.starts_with('/') {
        format!("[{}]", config.host)
    } else {
        config.host.clone()
    };
    format!(
        "{host}:{} (database {}, user {})",
        config.port, config.database, config.user
    )
}

/// Error text with its causes (tokio-postgres shows a server error as just
/// "db error" and keeps the message in the source), on a single line
/// (PostgreSQL messages may carry DETAIL/HINT lines).
fn one_line(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.split(['\r', '\n'])
        .filter(|part| !part.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> Config {
        Config::from_lookup(
            |name| match name {
                "PROM_SYNAPSE_HOST" => Some(host.to_owned()),
                "PROM_SYNAPSE_PASSWORD" => Some("hunter2".to_owned()),
                _ => None,
            },
            |_| Err(std::io::Error::other("unused")),
        )
        .unwrap()
    }

    #[test]
    fn target_description_has_no_password() {
        let text = describe_target(&config("db.internal"));
        assert_eq!(text, "db.internal:5432 (database synapse, user user)");
        assert_eq!(
            describe_target(&config("fd00::5")),
            "[fd00::5]:5432 (database synapse, user user)"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refused_connection_is_an_error_not_a_panic() {
        // Port 1 on loopback: nothing listens there.
        let mut c = config("127.0.0.1");
        c.port = 1;
        let mut poller = Poller::new(&c);
        let err = poller.poll_once().await.unwrap_err();
        assert!(
            err.starts_with(
                "cannot connect to PostgreSQL at 127.0.0.1:1 (database synapse, user user): "
            ),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(poller.connection.is_none());
    }
}
