//! SQLite's side of the value conversions: interchange JSON values to and from SQLite's.

use std::collections::BTreeSet;

use rusqlite::Connection;
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

pub(crate) fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

pub(crate) fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real))
            .unwrap_or(SqlValue::Null),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Columns of `table` that can be written (generated columns are derived, never copied).
pub(crate) fn writable_columns(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<BTreeSet<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, hidden FROM pragma_table_xinfo('{table}')"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = BTreeSet::new();
    for row in rows {
        let (name, hidden) = row?;
        if hidden == 0 {
            out.insert(name);
        }
    }
    Ok(out)
}
