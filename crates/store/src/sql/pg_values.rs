//! PostgreSQL's side of the value conversions: interchange JSON values bound to statements'
//! parameters and read back from rows, and the server's errors as one line.

use postgres::types::{ToSql, Type};
use serde_json::Value;

use super::{SqlError, mismatch};

/// A PostgreSQL error as one line: the server's message with its SQLSTATE, or the client's
/// error and its causes. The connection string is never part of it.
#[must_use]
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; {detail}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// Binds JSON values to a prepared statement's parameters, converted to the types the server
/// inferred for them.
pub(crate) fn bind(
    stmt: &postgres::Statement,
    params: &[Value],
) -> Result<Vec<Box<dyn ToSql + Sync>>, SqlError> {
    stmt.params()
        .iter()
        .zip(params)
        .enumerate()
        .map(|(i, (ty, v))| -> Result<Box<dyn ToSql + Sync>, SqlError> {
            let name = format!("${}", i + 1);
            let as_int = |v: &Value| crate::sql::int(&name, v);
            Ok(match (ty, v) {
                (t, Value::Null) if *t == Type::INT8 => Box::new(None::<i64>),
                (t, Value::Null) if *t == Type::INT4 => Box::new(None::<i32>),
                (t, Value::Null) if *t == Type::FLOAT8 => Box::new(None::<f64>),
                (t, Value::Null) if *t == Type::BOOL => Box::new(None::<bool>),
                (_, Value::Null) => Box::new(None::<String>),
                (t, v) if *t == Type::INT8 => Box::new(as_int(v)?),
                (t, v) if *t == Type::INT4 => Box::new(
                    i32::try_from(as_int(v)?)
                        .map_err(|_| mismatch(&name, v, "a 32-bit integer"))?,
                ),
                (t, v) if *t == Type::INT2 => Box::new(
                    i16::try_from(as_int(v)?)
                        .map_err(|_| mismatch(&name, v, "a 16-bit integer"))?,
                ),
                (t, v) if *t == Type::FLOAT8 => {
                    Box::new(v.as_f64().ok_or_else(|| mismatch(&name, v, "a number"))?)
                }
                (t, v) if *t == Type::BOOL => Box::new(as_int(v)? != 0),
                (_, Value::String(s)) => Box::new(s.clone()),
                (_, other) => Box::new(other.to_string()),
            })
        })
        .collect()
}

pub(crate) fn refs(bound: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    bound
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Column `i` of `row` as a JSON value (the interchange format's types).
pub(crate) fn to_json(row: &postgres::Row, i: usize, name: &str) -> Result<Value, SqlError> {
    let ty = row.columns()[i].type_().clone();
    let finite = |f: Option<f64>| {
        f.and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    };
    Ok(if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::from)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, Value::from)
    } else if ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map_or(Value::Null, Value::from)
    } else if ty == Type::FLOAT8 {
        finite(row.try_get::<_, Option<f64>>(i)?)
    } else if ty == Type::FLOAT4 {
        finite(row.try_get::<_, Option<f32>>(i)?.map(f64::from))
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, Value::from)
    } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(&ty) {
        row.try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::from)
    } else {
        return Err(SqlError::Type {
            column: name.to_owned(),
            found: format!("PostgreSQL type {ty}"),
            expected: "an integer, a float, a boolean or text",
        });
    })
}
