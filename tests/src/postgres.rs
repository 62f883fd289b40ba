//! The throwaway PostgreSQL cluster that `.ci/test` starts (see
//! `.ci/postgres`): each test gets a database of its own in it.

use airlock::store::{PasswordSource, PostgresSettings};
use std::path::PathBuf;

/// A fresh, empty database in the test cluster.
pub struct TestDatabase {
    /// Its connection string (no password).
    pub url: String,
    /// The file holding the cluster's password.
    pub password_file: PathBuf,
}

impl TestDatabase {
    /// Settings for replica `replica` of this database.
    pub fn settings(&self, replica: &str) -> PostgresSettings {
        PostgresSettings::new(
            &self.url,
            PasswordSource::File(self.password_file.clone()),
            replica,
        )
        .expect("the test database's settings")
    }

    /// Runs `sql` on this database as the cluster's superuser (to look
    /// behind airlock's back, or to tamper).
    pub fn execute(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let url = self.url.clone();
        let password = self.password();
        let sql = sql.to_string();
        on_own_runtime(async move {
            connect(&url, &password)
                .await
                .query(&sql, &[])
                .await
                .expect("the SQL runs")
        })
    }

    fn password(&self) -> String {
        std::fs::read_to_string(&self.password_file)
            .expect("the cluster's password file")
            .trim()
            .to_string()
    }
}

/// The cluster's connection string, or a failure saying how to get one:
/// tests that need PostgreSQL never skip.
fn cluster() -> (String, PathBuf) {
    match (
        std::env::var("AIRLOCK_TEST_POSTGRES"),
        std::env::var_os("AIRLOCK_TEST_POSTGRES_PASSWORD_FILE"),
    ) {
        (Ok(url), Some(password)) => (url, PathBuf::from(password)),
        _ => panic!(
            "no test PostgreSQL cluster: run the suite with `bash .ci/test`, which installs \
             PostgreSQL and starts one (it sets AIRLOCK_TEST_POSTGRES and \
             AIRLOCK_TEST_POSTGRES_PASSWORD_FILE)"
        ),
    }
}

/// Creates a database of its own for one test.
pub fn fresh_database() -> TestDatabase {
    let (url, password_file) = cluster();
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let password = std::fs::read_to_string(&password_file)
        .expect("the cluster's password file")
        .trim()
        .to_string();
    let admin = url.clone();
    let create = format!("CREATE DATABASE {name}");
    on_own_runtime(async move {
        connect(&admin, &password)
            .await
            .batch_execute(&create)
            .await
            .expect("a test database");
    });
    TestDatabase {
        url: format!("{url} dbname={name}"),
        password_file,
    }
}

async fn connect(url: &str, password: &str) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = url.parse().expect("the cluster's connection string");
    config.password(password);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the test cluster accepts connections");
    tokio::spawn(connection);
    client
}

/// Runs `future` on a runtime of its own on another thread (callers may
/// be inside a runtime already).
fn on_own_runtime<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    })
    .join()
    .expect("the database helper")
}
