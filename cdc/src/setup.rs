//! The control connection and everything checked or made before streaming: the tables and
//! their primary keys, the user's rights, the publication, the slot's state, and the column
//! catalog the records' schemas come from. Checks come first so a bad setup fails before
//! anything is created.

use tokio_postgres::{Client, NoTls};

use crate::columns::Column;
use crate::error::{postgres_reason, CdcError};

/// A table named `schema.table` in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn parse(text: &str) -> Self {
        match text.split_once('.') {
            Some((schema, table)) => Self { schema: schema.to_owned(), table: table.to_owned() },
            None => Self { schema: "public".to_owned(), table: text.to_owned() },
        }
    }

    /// As SQL: both parts quoted.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.table))
    }

    pub fn dotted(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// An identifier quoted for SQL.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Opens a normal (non-replication) connection; its driver runs on the runtime.
pub async fn connect(connection: &str) -> Result<Client, CdcError> {
    let shown = redact(connection);
    let (client, driver) = tokio_postgres::connect(connection, NoTls)
        .await
        .map_err(|error| CdcError::Connect { connection: shown.clone(), reason: postgres_reason(&error) })?;
    tokio::spawn(async move {
        if let Err(error) = driver.await {
            tracing::warn!(error = %postgres_reason(&error), "PostgreSQL control connection closed");
        }
    });
    Ok(client)
}

/// The connection string without its password, for messages.
pub fn redact(connection: &str) -> String {
    if connection.starts_with("postgres") {
        // postgresql://user:secret@host → postgresql://user:***@host
        if let (Some(scheme_end), Some(at)) = (connection.find("://"), connection.rfind('@')) {
            let credentials = &connection[scheme_end + 3..at];
            if let Some(colon) = credentials.find(':') {
                return format!("{}***{}", &connection[..scheme_end + 3 + colon + 1], &connection[at..]);
            }
        }
        return connection.to_owned();
    }
    connection
        .split_whitespace()
        .map(|pair| if pair.starts_with("password=") { "password=***" } else { pair })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks what streaming needs, then makes the publication if it is missing. Nothing is
/// created unless every check passed.
pub async fn prepare(
    client: &Client,
    tables: &[TableName],
    publication: &str,
    create_publication: bool,
) -> Result<(), CdcError> {
    let level: String = client.query_one("SHOW wal_level", &[]).await.map_err(CdcError::query("wal_level"))?.get(0);
    if level != "logical" {
        return Err(CdcError::WalLevel { level });
    }
    let role = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(CdcError::query("role"))?;
    let user: String = role.get(0);
    if !role.get::<_, bool>(1) {
        return Err(CdcError::NotReplicationUser { user });
    }
    for name in tables {
        let quoted = name.quoted();
        let found = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&quoted])
            .await
            .map_err(CdcError::query("table lookup"))?;
        if !found.get::<_, bool>(0) {
            return Err(CdcError::MissingTable { table: name.dotted() });
        }
        let readable = client
            .query_one("SELECT has_table_privilege($1, 'SELECT')", &[&quoted])
            .await
            .map_err(CdcError::query("table privilege"))?;
        if !readable.get::<_, bool>(0) {
            return Err(CdcError::NoSelect { user: user.clone(), table: name.dotted() });
        }
        if !columns(client, name).await?.iter().any(|c| c.key) {
            return Err(CdcError::NoPrimaryKey { table: name.dotted() });
        }
    }
    ensure_publication(client, tables, publication, create_publication).await
}

async fn ensure_publication(
    client: &Client,
    tables: &[TableName],
    publication: &str,
    create: bool,
) -> Result<(), CdcError> {
    let list = tables.iter().map(TableName::quoted).collect::<Vec<_>>().join(", ");
    let exists = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", &[&publication])
        .await
        .map_err(CdcError::query("publication lookup"))?
        .get::<_, bool>(0);
    if !exists {
        if !create {
            return Err(CdcError::MissingPublication { publication: publication.to_owned(), tables: list });
        }
        let sql = format!("CREATE PUBLICATION {} FOR TABLE {list}", quote(publication));
        client.batch_execute(&sql).await.map_err(|error| CdcError::CreatePublication {
            publication: publication.to_owned(),
            tables: list.clone(),
            reason: postgres_reason(&error),
        })?;
        tracing::info!(publication, tables = %list, "created publication");
        return Ok(());
    }
    let published: Vec<String> = client
        .query("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", &[&publication])
        .await
        .map_err(CdcError::query("publication tables"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let missing: Vec<String> = tables.iter().map(TableName::dotted).filter(|name| !published.contains(name)).collect();
    if !missing.is_empty() {
        return Err(CdcError::PublicationLacks { publication: publication.to_owned(), missing: missing.join(", ") });
    }
    Ok(())
}

/// The table's columns in order, with their types, primary-key membership and nullability.
pub async fn columns(client: &Client, name: &TableName) -> Result<Vec<Column>, CdcError> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid::int8, a.atttypmod, a.attnotnull,
                    COALESCE(a.attnum = ANY (i.indkey), false)
               FROM pg_attribute a
               LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&name.quoted()],
        )
        .await
        .map_err(CdcError::query("column catalog"))?;
    Ok(rows
        .iter()
        .map(|row| Column {
            name: row.get(0),
            type_oid: u32::try_from(row.get::<_, i64>(1)).unwrap_or_default(),
            typmod: row.get(2),
            not_null: row.get(3),
            key: row.get(4),
        })
        .collect())
}

/// The slot as PostgreSQL keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    pub plugin: String,
    pub confirmed_flush_lsn: Option<String>,
}

pub async fn slot(client: &Client, slot: &str) -> Result<Option<SlotState>, CdcError> {
    let row = client
        .query_opt(
            "SELECT COALESCE(plugin::text, ''), confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(CdcError::query("slot lookup"))?;
    Ok(row.map(|row| SlotState { plugin: row.get(0), confirmed_flush_lsn: row.get(1) }))
}

/// Drops a slot this run created and could not finish snapshotting, so the next start
/// snapshots again instead of streaming with no baseline.
pub async fn drop_slot(client: &Client, slot: &str) {
    let result = client
        .execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
        .await;
    if let Err(error) = result {
        tracing::warn!(slot, error = %postgres_reason(&error), "cannot drop the unfinished slot; drop it by hand");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("host=db user=cdc password=s3cret dbname=shop"), "host=db user=cdc password=*** dbname=shop");
        assert_eq!(redact("postgresql://cdc:s3cret@db:5432/shop"), "postgresql://cdc:***@db:5432/shop");
        assert_eq!(TableName::parse("public.products").quoted(), "\"public\".\"products\"");
    }
}
