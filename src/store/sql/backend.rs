//! What the store's SQL needs from a sqlx driver, said once.
//!
//! Code generic over a sqlx [`Database`] normally repeats a where-clause of driver bounds
//! (`String: Encode<DB> + Type<DB>`, `&mut DB::Connection: Executor`, ...) on every
//! function, because Rust does not carry a trait's where-clauses to its users. Here each
//! bound is instead a small trait *of the driver* ([`Exec`], [`Bind`]) or of its row type
//! ([`Col`]), given to every driver that satisfies it by one blanket impl; [`Backend`]
//! lists them as supertraits (and associated-type bounds), and those do carry. So the
//! concern modules say only `DB: Backend`, and read as plain sqlx:
//!
//! ```ignore
//! let row = sqlx::query::<DB>("SELECT tier FROM users WHERE id = $1")
//!     .arg(id.0.to_string())
//!     .optional(&mut *self.reader().await?)
//!     .await?;
//! let tier: Option<i64> = row.map(|r| r.col("tier")).transpose()?;
//! ```
//!
//! [`QueryExt`] (`arg`, `one`, `optional`, `all`, `run`) and [`Col`] (`col`) are the
//! only spellings that differ from sqlx's own (`bind`, `fetch_*`, `try_get`); they also
//! turn driver errors into [`StoreError`]s through the backend's [`Driver::map_err`].
//!
//! A backend module implements [`Driver`] (its error mapping); [`Backend`] then follows
//! from a blanket impl, which repeats the trait's list because Rust has no trait aliases.

use crate::store::{StoreError, StoreResult};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
use std::future::Future;
use std::pin::Pin;

/// A boxed, `Send` future (what `async_trait` methods can await in generic code).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A query as `sqlx::query` builds it for driver `DB`.
pub type Q<'q, DB> = Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// A SQL driver the store runs on: SQLite or PostgreSQL. The bounds are the Rust types the
/// schema's columns are read and bound as (uuids as text, times as epoch milliseconds,
/// flags, blobs); a new column type is one line here and one in the impl below.
pub trait Backend:
    Driver
    + Exec
    + Database<
        Row: Col<String>
                 + Col<Option<String>>
                 + Col<i64>
                 + Col<Option<i64>>
                 + Col<bool>
                 + Col<Vec<u8>>
                 + Col<Option<Vec<u8>>>,
    > + for<'q> Bind<'q, &'q str>
    + for<'q> Bind<'q, Option<&'q str>>
    + for<'q> Bind<'q, String>
    + for<'q> Bind<'q, Option<String>>
    + for<'q> Bind<'q, i64>
    + for<'q> Bind<'q, Option<i64>>
    + for<'q> Bind<'q, bool>
    + for<'q> Bind<'q, Option<bool>>
    + for<'q> Bind<'q, &'q [u8]>
    + for<'q> Bind<'q, Option<&'q [u8]>>
{
}

impl<DB> Backend for DB where
    DB: Driver
        + Exec
        + Database<
            Row: Col<String>
                     + Col<Option<String>>
                     + Col<i64>
                     + Col<Option<i64>>
                     + Col<bool>
                     + Col<Vec<u8>>
                     + Col<Option<Vec<u8>>>,
        > + for<'q> Bind<'q, &'q str>
        + for<'q> Bind<'q, Option<&'q str>>
        + for<'q> Bind<'q, String>
        + for<'q> Bind<'q, Option<String>>
        + for<'q> Bind<'q, i64>
        + for<'q> Bind<'q, Option<i64>>
        + for<'q> Bind<'q, bool>
        + for<'q> Bind<'q, Option<bool>>
        + for<'q> Bind<'q, &'q [u8]>
        + for<'q> Bind<'q, Option<&'q [u8]>>
{
}

/// What each backend module says about its driver (the rest is derived).
pub trait Driver: Database {
    /// This driver's errors as the store's: which codes mean "unavailable", which
    /// constraint names mean which conflict.
    fn map_err(e: sqlx::Error) -> StoreError;
    /// The rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// Run first in a transaction that may take away an active admin, so two such
    /// changes at once are checked one after the other (the last-admin rule). `None` where
    /// the backend's single writer already serialises them.
    const SERIALISE_ADMIN_CHANGES: Option<&'static str>;
    /// Appended to a sub-`SELECT` whose rows a statement's outcome depends on, so a change
    /// to them that is under way is waited for and seen (`FOR SHARE`); empty where the
    /// single writer already serialises writes.
    const SHARE_ROWS: &'static str;
}

/// Runs a query on one connection (a pool's or a transaction's).
pub trait Exec: Driver {
    fn fetch_all<'e, 'q: 'e>(
        query: Q<'q, Self>,
        conn: &'e mut Self::Connection,
    ) -> BoxFuture<'e, sqlx::Result<Vec<Self::Row>>>;
    fn fetch_optional<'e, 'q: 'e>(
        query: Q<'q, Self>,
        conn: &'e mut Self::Connection,
    ) -> BoxFuture<'e, sqlx::Result<Option<Self::Row>>>;
    /// The number of rows affected.
    fn execute<'e, 'q: 'e>(
        query: Q<'q, Self>,
        conn: &'e mut Self::Connection,
    ) -> BoxFuture<'e, sqlx::Result<u64>>;
}

impl<DB: Driver> Exec for DB
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    fn fetch_all<'e, 'q: 'e>(
        query: Q<'q, DB>,
        conn: &'e mut DB::Connection,
    ) -> BoxFuture<'e, sqlx::Result<Vec<DB::Row>>> {
        Box::pin(query.fetch_all(conn))
    }

    fn fetch_optional<'e, 'q: 'e>(
        query: Q<'q, DB>,
        conn: &'e mut DB::Connection,
    ) -> BoxFuture<'e, sqlx::Result<Option<DB::Row>>> {
        Box::pin(query.fetch_optional(conn))
    }

    fn execute<'e, 'q: 'e>(
        query: Q<'q, DB>,
        conn: &'e mut DB::Connection,
    ) -> BoxFuture<'e, sqlx::Result<u64>> {
        Box::pin(async move { Ok(DB::rows_affected(&conn.execute(query).await?)) })
    }
}

/// Binds a parameter of type `T`.
pub trait Bind<'q, T>: Database {
    fn bind(query: Q<'q, Self>, value: T) -> Q<'q, Self>;
}

impl<'q, DB: Database, T> Bind<'q, T> for DB
where
    T: 'q + Encode<'q, DB> + Type<DB>,
{
    fn bind(query: Q<'q, DB>, value: T) -> Q<'q, DB> {
        query.bind(value)
    }
}

/// Binding and running a query, errors mapped by the backend.
pub trait QueryExt<'q, DB: Backend>: Sized {
    /// Binds the next `$N` parameter (sqlx's `bind`).
    fn arg<T>(self, value: T) -> Self
    where
        DB: Bind<'q, T>;
    /// Every row.
    fn all<'e>(self, conn: &'e mut DB::Connection) -> BoxFuture<'e, StoreResult<Vec<DB::Row>>>
    where
        'q: 'e;
    /// The row, if there is one.
    fn optional<'e>(
        self,
        conn: &'e mut DB::Connection,
    ) -> BoxFuture<'e, StoreResult<Option<DB::Row>>>
    where
        'q: 'e;
    /// The one row; none is an error.
    fn one<'e>(self, conn: &'e mut DB::Connection) -> BoxFuture<'e, StoreResult<DB::Row>>
    where
        'q: 'e;
    /// Runs a statement; the number of rows it affected.
    fn run<'e>(self, conn: &'e mut DB::Connection) -> BoxFuture<'e, StoreResult<u64>>
    where
        'q: 'e;
}

impl<'q, DB: Backend> QueryExt<'q, DB> for Q<'q, DB> {
    fn arg<T>(self, value: T) -> Self
    where
        DB: Bind<'q, T>,
    {
        DB::bind(self, value)
    }

    fn all<'e>(self, conn: &'e mut DB::Connection) -> BoxFuture<'e, StoreResult<Vec<DB::Row>>>
    where
        'q: 'e,
    {
        let rows = DB::fetch_all(self, conn);
        Box::pin(async move { rows.await.map_err(DB::map_err) })
    }

    fn optional<'e>(
        self,
        conn: &'e mut DB::Connection,
    ) -> BoxFuture<'e, StoreResult<Option<DB::Row>>>
    where
        'q: 'e,
    {
        let row = DB::fetch_optional(self, conn);
        Box::pin(async move { row.await.map_err(DB::map_err) })
    }

    fn one<'e>(self, conn: &'e mut DB::Connection) -> BoxFuture<'e, StoreResult<DB::Row>>
    where
        'q: 'e,
    {
        let row = DB::fetch_optional(self, conn);
        Box::pin(async move {
            row.await
                .map_err(DB::map_err)?
                .ok_or_else(|| DB::map_err(sqlx::Error::RowNotFound))
        })
    }

    fn run<'e>(self, conn: &'e mut DB::Connection) -> BoxFuture<'e, StoreResult<u64>>
    where
        'q: 'e,
    {
        let n = DB::execute(self, conn);
        Box::pin(async move { n.await.map_err(DB::map_err) })
    }
}

/// Reads column `column` of a row as a `T` (sqlx's `try_get`), errors mapped.
pub trait Col<T> {
    fn col(&self, column: &str) -> StoreResult<T>;
}

impl<R: Row, T> Col<T> for R
where
    R::Database: Driver,
    T: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    fn col(&self, column: &str) -> StoreResult<T> {
        self.try_get(column)
            .map_err(<R::Database as Driver>::map_err)
    }
}
