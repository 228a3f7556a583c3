//! Synapse's database: the PostgreSQL relation, preparing a provided database
//! (locale), and looking into the embedded SQLite default before leaving it.

pub mod postgres;
pub mod relation;
pub mod sqlite;

pub use relation::{DatabaseInfo, Provided};
