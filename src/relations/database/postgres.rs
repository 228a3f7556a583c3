//! Preparing a provided PostgreSQL database for Synapse, which insists on the `C`
//! collation and character type. postgresql-k8s creates databases with the
//! cluster's default locale, so the charm (granted a superuser role) switches an
//! EMPTY database to `C`. A database that already holds tables is never touched:
//! changing its collation would invalidate existing text indexes.

use std::time::Duration;

use super::relation::DatabaseInfo;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locale {
    /// Already `C`.
    Ready,
    /// Was empty with another locale; now `C`.
    Switched { from: String },
    /// Holds tables with another locale: needs an operator.
    Unsafe {
        collate: String,
        ctype: String,
        tables: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No endpoint answered; each is named with the reason (refused, unresolvable,
    /// timed out, or PostgreSQL's own refusal such as wrong credentials).
    #[error("cannot reach PostgreSQL at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
    #[error("PostgreSQL: {0}")]
    Query(String),
    #[error("cannot start the database client: {0}")]
    Runtime(std::io::Error),
}

/// What the charm finds in a provided database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `host:port` that answered.
    pub endpoint: String,
    pub collate: String,
    pub ctype: String,
    /// User tables of any kind.
    pub tables: i64,
    /// Synapse's own schema is there (its `schema_version` table).
    pub synapse_schema: bool,
}

fn query_err(e: tokio_postgres::Error) -> DbError {
    DbError::Query(crate::util::bounded(
        &e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string()),
    ))
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbError> {
    tokio::time::timeout(QUERY_TIMEOUT, f)
        .await
        .map_err(|_| DbError::Timeout(QUERY_TIMEOUT))?
        .map_err(query_err)
}

/// Why a connection failed, in an operator's words (never the password).
fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("PostgreSQL refused: {}", db.message());
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::TimedOut => "timed out".into(),
                _ if io.to_string().contains("lookup") || io.to_string().contains("resolve") => {
                    format!("unresolvable ({io})")
                }
                _ => io.to_string(),
            };
        }
        src = s.source();
    }
    let text = e.to_string();
    if text.contains("lookup") || text.contains("resolve") {
        format!("unresolvable ({text})")
    } else {
        text
    }
}

type Connection = (tokio_postgres::Client, tokio::task::JoinHandle<()>, String);

/// Connects to the first endpoint that answers, in the provider's order.
async fn connect(info: &DatabaseInfo) -> Result<Connection, DbError> {
    let endpoints: Vec<(String, u16)> = if info.endpoints.is_empty() {
        vec![(info.host.clone(), info.port)]
    } else {
        info.endpoints
            .iter()
            .map(|e| (e.host.clone(), e.port))
            .collect()
    };
    let mut failures = vec![];
    for (host, port) in &endpoints {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(host)
            .port(*port)
            .user(&info.user)
            .password(info.password.as_bytes())
            .dbname(&info.database)
            .application_name("synapse-charm")
            .connect_timeout(CONNECT_TIMEOUT);
        let endpoint = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, cfg.connect(tokio_postgres::NoTls)).await {
            Ok(Ok((client, conn))) => {
                let driver = tokio::spawn(async move {
                    let _ = conn.await;
                });
                return Ok((client, driver, endpoint));
            }
            Ok(Err(e)) => failures.push((endpoint, reason(&e))),
            Err(_) => failures.push((endpoint, "timed out".to_string())),
        }
    }
    let endpoint = failures
        .iter()
        .map(|(e, _)| e.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let message = failures
        .iter()
        .map(|(e, r)| {
            if failures.len() > 1 {
                format!("{e}: {r}")
            } else {
                r.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(DbError::Connect {
        endpoint,
        message: crate::util::bounded(&message),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, DbError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DbError::Runtime)
}

const LOCALE: &str =
    "SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()";
const TABLES: &str =
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%'";
const SYNAPSE_SCHEMA: &str =
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relname = 'schema_version' AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// Looks at a provided database without changing it: locale, tables, Synapse's schema.
pub fn inspect(info: &DatabaseInfo) -> Result<Inspection, DbError> {
    runtime()?.block_on(async {
        let (client, driver, endpoint) = connect(info).await?;
        let row = timed(client.query_one(LOCALE, &[])).await?;
        let (collate, ctype): (String, String) = (row.get(0), row.get(1));
        let tables: i64 = timed(client.query_one(TABLES, &[])).await?.get(0);
        let synapse: i64 = timed(client.query_one(SYNAPSE_SCHEMA, &[])).await?.get(0);
        drop(client);
        let _ = driver.await;
        Ok(Inspection {
            endpoint,
            collate,
            ctype,
            tables,
            synapse_schema: synapse > 0,
        })
    })
}

/// Checks the database's locale and switches an empty database to `C`.
pub fn prepare(info: &DatabaseInfo) -> Result<Locale, DbError> {
    runtime()?.block_on(async {
        let (client, driver, _) = connect(info).await?;
        let row = timed(client.query_one(LOCALE, &[])).await?;
        let (collate, ctype): (String, String) = (row.get(0), row.get(1));
        let result = if collate == "C" && ctype == "C" {
            Locale::Ready
        } else {
            let tables: i64 = timed(client.query_one(TABLES, &[])).await?.get(0);
            if tables > 0 {
                Locale::Unsafe { collate, ctype, tables }
            } else {
                timed(client.execute(
                    "UPDATE pg_database SET datcollate = 'C', datctype = 'C' WHERE datname = current_database()",
                    &[],
                ))
                .await?;
                Locale::Switched { from: collate }
            }
        };
        drop(client);
        let _ = driver.await;
        Ok(result)
    })
}
