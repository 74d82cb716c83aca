//! What can stop `clickstream cdc`, each naming what to fix.

/// A failure of the PostgreSQL source or the Kafka sink.
#[derive(Debug, thiserror::Error)]
pub enum CdcError {
    #[error("cannot connect to PostgreSQL ({connection}): {reason}")]
    Connect { connection: String, reason: String },
    #[error("table {table} does not exist (or this user cannot see it); cdc.tables names tables as schema.table")]
    MissingTable { table: String },
    #[error(
        "table {table} has no primary key, so its changes cannot be keyed: add one (ALTER TABLE {table} ADD \
         PRIMARY KEY (...)); REPLICA IDENTITY DEFAULT then sends that key with each update and delete"
    )]
    NoPrimaryKey { table: String },
    #[error("user {user} cannot read table {table}: GRANT SELECT ON {table} TO {user}")]
    NoSelect { user: String, table: String },
    #[error(
        "user {user} may not stream changes: ALTER ROLE {user} WITH REPLICATION (and allow it a replication \
         connection in pg_hba.conf)"
    )]
    NotReplicationUser { user: String },
    #[error(
        "publication {publication} does not exist and cdc.create_publication is off: CREATE PUBLICATION \
         {publication} FOR TABLE {tables}"
    )]
    MissingPublication { publication: String, tables: String },
    #[error(
        "cannot create publication {publication}: {reason} (creating it needs CREATE on the database and \
         ownership of the tables; or create it yourself: CREATE PUBLICATION {publication} FOR TABLE {tables})"
    )]
    CreatePublication { publication: String, tables: String, reason: String },
    #[error(
        "publication {publication} does not publish {missing}: ALTER PUBLICATION {publication} ADD TABLE {missing}"
    )]
    PublicationLacks { publication: String, missing: String },
    #[error(
        "PostgreSQL's wal_level is {level}; logical replication needs wal_level = logical (then restart PostgreSQL)"
    )]
    WalLevel { level: String },
    #[error("replication slot {slot} exists but uses the {plugin} plugin, not pgoutput")]
    SlotPlugin { slot: String, plugin: String },
    #[error("PostgreSQL query failed ({what}): {reason}")]
    Query { what: &'static str, reason: String },
    #[error("replication stream failed: {0}")]
    Replication(String),
    #[error("Kafka: {0}")]
    Kafka(String),
}

impl CdcError {
    pub(crate) fn query(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |error| Self::Query { what, reason: postgres_reason(&error) }
    }
}

/// The server's own message when there is one (`password authentication failed for user`),
/// which tokio-postgres's `Display` hides behind "db error".
pub(crate) fn postgres_reason(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => error.to_string(),
    }
}
