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
    #[error("cannot reach PostgreSQL at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
    #[error("PostgreSQL: {0}")]
    Query(String),
    #[error("cannot start the database client: {0}")]
    Runtime(std::io::Error),
}

fn query_err(e: tokio_postgres::Error) -> DbError {
    DbError::Query(
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string()),
    )
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbError> {
    tokio::time::timeout(QUERY_TIMEOUT, f)
        .await
        .map_err(|_| DbError::Timeout(QUERY_TIMEOUT))?
        .map_err(query_err)
}

/// Checks the database's locale and switches an empty database to `C`.
pub fn prepare(info: &DatabaseInfo) -> Result<Locale, DbError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DbError::Runtime)?;
    rt.block_on(async {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&info.host)
            .port(info.port)
            .user(&info.user)
            .password(info.password.as_bytes())
            .dbname(&info.database)
            .application_name("synapse-charm")
            .connect_timeout(CONNECT_TIMEOUT);
        let endpoint = format!("{}:{}", info.host, info.port);
        let (client, conn) = tokio::time::timeout(CONNECT_TIMEOUT * 2, cfg.connect(tokio_postgres::NoTls))
            .await
            .map_err(|_| DbError::Timeout(CONNECT_TIMEOUT * 2))?
            .map_err(|e| DbError::Connect { endpoint, message: e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()) })?;
        let driver = tokio::spawn(conn);
        let row = timed(client.query_one("SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()", &[])).await?;
        let (collate, ctype): (String, String) = (row.get(0), row.get(1));
        let result = if collate == "C" && ctype == "C" {
            Locale::Ready
        } else {
            let tables: i64 = timed(client.query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg_toast%'",
                &[],
            ))
            .await?
            .get(0);
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
