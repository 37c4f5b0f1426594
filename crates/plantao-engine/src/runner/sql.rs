//! An `sql` step: one query on a named connection (PostgreSQL, MySQL/MariaDB, SQLite). The
//! first row's numeric columns become counters, its other values outputs.

use std::time::Duration;

use futures::StreamExt;
use plantao_config::{Connection, ConnectionKind};
use plantao_model::StageStatus;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Connection as _, Row, TypeInfo};

use super::attempt::{Attempt, StopSignal, cancelled};

/// How many rows the log shows.
const SHOWN_ROWS: usize = 20;

#[derive(Debug, PartialEq)]
enum Cell {
    Number(f64),
    Text(String),
    Null,
    /// A type read neither as a number nor as text (e.g. an interval).
    Unreadable(String),
}

pub(crate) async fn run(
    connection: &Connection,
    name: &str,
    query: &str,
    limit: Option<Duration>,
    cancel: StopSignal,
) -> Attempt {
    let work = fetch(connection, query);
    let cancelled = cancelled(cancel);
    let timed = async {
        match limit {
            Some(l) => tokio::time::timeout(l, work).await.ok(),
            None => Some(work.await),
        }
    };
    let outcome = tokio::select! {
        r = timed => r,
        () = cancelled => {
            return Attempt { status: Some(StageStatus::Cancelled), error: Some("cancelled".into()), ..Default::default() };
        }
    };
    match outcome {
        None => Attempt {
            status: Some(StageStatus::TimedOut),
            error: Some("the query did not finish in time".into()),
            log: format!("query on `{name}` did not finish in time\n"),
            ..Default::default()
        },
        Some(Err(e)) => Attempt::failed(
            format!("query on `{name}` failed: {e}"),
            format!("{query}\n\n{e}\n"),
        ),
        Some(Ok((columns, rows))) => describe(name, query, &columns, &rows),
    }
}

type Rows = (Vec<(String, String)>, Vec<Vec<Cell>>);

/// The first rows `query` answers on `connection`, as a JSON array of objects by column name
/// (what a probe's conditions read as `rows`).
pub(crate) async fn rows_json(
    connection: &Connection,
    query: &str,
) -> Result<serde_json::Value, sqlx::Error> {
    let (columns, rows) = fetch(connection, query).await?;
    let objects = rows
        .into_iter()
        .map(|row| {
            let object: serde_json::Map<String, serde_json::Value> = columns
                .iter()
                .zip(row)
                .map(|((name, _), cell)| {
                    let value = match cell {
                        Cell::Number(n) => serde_json::Value::from(n),
                        Cell::Text(t) => serde_json::Value::from(t),
                        Cell::Null | Cell::Unreadable(_) => serde_json::Value::Null,
                    };
                    (name.clone(), value)
                })
                .collect();
            serde_json::Value::Object(object)
        })
        .collect();
    Ok(serde_json::Value::Array(objects))
}

async fn fetch(connection: &Connection, query: &str) -> Result<Rows, sqlx::Error> {
    let url = connection.url.expose();
    let q = sqlx::AssertSqlSafe(query.to_owned());
    match connection.kind {
        ConnectionKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let rows = first_rows(sqlx::query(q).fetch(&mut c), pg_cell).await;
            c.close().await?;
            rows
        }
        ConnectionKind::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(url).await?;
            let rows = first_rows(sqlx::query(q).fetch(&mut c), my_cell).await;
            c.close().await?;
            rows
        }
        ConnectionKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await?;
            let rows = first_rows(sqlx::query(q).fetch(&mut c), lite_cell).await;
            c.close().await?;
            rows
        }
    }
}

async fn first_rows<R: Row>(
    mut stream: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    cell: fn(&R, usize) -> Cell,
) -> Result<Rows, sqlx::Error> {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        let row = row?;
        if columns.is_empty() {
            columns = row
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
                .collect();
        }
        rows.push((0..row.columns().len()).map(|i| cell(&row, i)).collect());
        if rows.len() == SHOWN_ROWS {
            break;
        }
    }
    Ok((columns, rows))
}

/// Tries each type in turn; NULL of a compatible type is `Null`.
macro_rules! read_cell {
    ($row:expr, $i:expr, $($t:ty => $conv:expr),+ $(,)?) => {{
        $(
            match $row.try_get::<Option<$t>, _>($i) {
                Ok(Some(v)) => return $conv(v),
                Ok(None) => return Cell::Null,
                Err(_) => {}
            }
        )+
        Cell::Unreadable($row.columns()[$i].type_info().name().to_owned())
    }};
}

fn num<T: Into<f64>>(v: T) -> Cell {
    Cell::Number(v.into())
}

/// Whole numbers beyond 2^53 lose precision as counters, which are floating-point.
#[allow(clippy::cast_precision_loss)]
fn big(v: i64) -> Cell {
    Cell::Number(v as f64)
}

#[allow(clippy::cast_precision_loss)]
fn ubig(v: u64) -> Cell {
    Cell::Number(v as f64)
}

/// DECIMAL and NUMERIC: counters are floating-point, so the last digits of a very long
/// decimal may round.
fn decimal(v: rust_decimal::Decimal) -> Cell {
    use rust_decimal::prelude::ToPrimitive;
    v.to_f64()
        .map_or_else(|| Cell::Text(v.to_string()), Cell::Number)
}

fn flag(v: bool) -> Cell {
    Cell::Text(v.to_string())
}

fn pg_cell(row: &PgRow, i: usize) -> Cell {
    read_cell!(row, i, i64 => big, i32 => num, i16 => num, f64 => num, f32 => num,
        rust_decimal::Decimal => decimal, bool => flag, String => Cell::Text)
}

fn my_cell(row: &MySqlRow, i: usize) -> Cell {
    read_cell!(row, i, i64 => big, u64 => ubig, i32 => num, f64 => num, f32 => num,
        rust_decimal::Decimal => decimal, bool => flag, String => Cell::Text)
}

fn lite_cell(row: &SqliteRow, i: usize) -> Cell {
    read_cell!(row, i, i64 => big, f64 => num, String => Cell::Text)
}

fn describe(name: &str, query: &str, columns: &[(String, String)], rows: &[Vec<Cell>]) -> Attempt {
    let mut log = format!("{query}\n\n");
    let mut counters = Vec::new();
    let mut outputs = Vec::new();
    if rows.is_empty() {
        log.push_str(&format!(
            "query on `{name}` returned no rows: no counters\n"
        ));
    }
    let header: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    if !rows.is_empty() {
        log.push_str(&header.join(" | "));
        log.push('\n');
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Cell::Number(n) => n.to_string(),
                Cell::Text(t) => t.clone(),
                Cell::Null => "NULL".into(),
                Cell::Unreadable(t) => format!("<{t}>"),
            })
            .collect();
        log.push_str(&cells.join(" | "));
        log.push('\n');
    }
    if let Some(first) = rows.first() {
        for ((column, type_name), cell) in columns.iter().zip(first) {
            match cell {
                Cell::Number(n) => {
                    counters.push((column.clone(), *n));
                    outputs.push((column.clone(), n.to_string()));
                }
                Cell::Text(t) => outputs.push((column.clone(), t.clone())),
                Cell::Null => {}
                Cell::Unreadable(_) => log.push_str(&format!(
                    "note: column `{column}` of type {type_name} is not read as a counter; cast it, e.g. {column}::double precision\n"
                )),
            }
        }
    }
    Attempt {
        status: Some(StageStatus::Succeeded),
        log,
        counters,
        outputs,
        ..Default::default()
    }
}
