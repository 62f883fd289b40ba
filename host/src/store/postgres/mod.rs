//! The shared store: one PostgreSQL database that several `airlock serve`
//! replicas use at once (approvals, agents, devices, and each replica's
//! own journal).
//!
//! The store traits are synchronous, like SQLite's calls. A
//! [`PostgresStore`] keeps its connections on a runtime of its own (one
//! thread); a call waits for its query on the calling thread, which
//! needs no Tokio context and cannot deadlock the caller's runtime.

mod listen;
mod replicas;
mod schema;
mod tx;

pub use replicas::{ReplicaStatus, now_ms};
pub use schema::SCHEMA_VERSION;

use super::StoreError;
use super::location::{PasswordSource, PostgresSettings};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use ed25519_dalek::VerifyingKey;
use listen::{AgentsHeard, News};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Connections kept open per replica.
const POOL_SIZE: usize = 16;
/// How long a call waits for a connection before failing.
const WAIT: Duration = Duration::from_secs(10);

/// One replica's handle on the shared database.
pub struct PostgresStore {
    pool: Pool,
    /// Drives the connections; shut down (not dropped in place) on drop,
    /// which is allowed from inside another runtime.
    runtime: Option<tokio::runtime::Runtime>,
    replica: String,
    describe: String,
    /// Moves when an approval is requested or decided on any replica.
    news: tokio::sync::watch::Receiver<u64>,
    /// Moves when an agent is added or removed on any replica.
    agents: Arc<AgentsHeard>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.describe)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects as `settings` say, brings the schema up to date (refusing
    /// a database a newer airlock has migrated) and registers this replica
    /// with its journal `key`.
    pub fn open(settings: &PostgresSettings, key: &VerifyingKey) -> Result<Self, StoreError> {
        let store = Self::start(settings, true)?;
        store.run(store.register(key))?;
        Ok(store)
    }

    /// Connects and brings the schema up to date, as [`PostgresStore::open`]
    /// does, for a command that is not a replica (`airlock vault` on the
    /// shared vault): nothing registered, no approval news.
    pub fn connect(settings: &PostgresSettings) -> Result<Self, StoreError> {
        Self::start(settings, false)
    }

    fn start(settings: &PostgresSettings, listen: bool) -> Result<Self, StoreError> {
        let mut config = settings.config.clone();
        if let Some(password) = password(&settings.password)? {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("airlock {}", settings.replica()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(WAIT);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("airlock-postgres")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Runtime { source })?;
        let (news_sender, news) = tokio::sync::watch::channel(0);
        let agents = Arc::new(AgentsHeard::default());
        let heard = News {
            approvals: news_sender,
            agents: Arc::clone(&agents),
        };
        let manager = if settings.tls {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                settings.ca_file.as_deref(),
            )?);
            if listen {
                runtime.spawn(listen::listen(config.clone(), tls.clone(), heard));
            }
            Manager::from_config(config, tls, manager_config)
        } else {
            let tls = tokio_postgres::NoTls;
            if listen {
                runtime.spawn(listen::listen(config.clone(), tls, heard));
            }
            Manager::from_config(config, tls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(WAIT))
            .build()
            .map_err(|e| StoreError::Pool {
                detail: e.to_string(),
            })?;
        let store = Self {
            pool,
            runtime: Some(runtime),
            replica: settings.replica().to_string(),
            describe: settings.describe(),
            news,
            agents,
        };
        store.run(async { schema::migrate(&mut *store.client().await?).await })?;
        Ok(store)
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The database, for messages (`user@host:port/dbname`).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// A counter that moves whenever an approval is requested or decided
    /// on any replica (PostgreSQL LISTEN/NOTIFY).
    pub(crate) fn approval_news(&self) -> tokio::sync::watch::Receiver<u64> {
        self.news.clone()
    }

    /// A generation that moves whenever an agent is added or removed on any
    /// replica; `None` while this replica cannot hear it (not listening, or
    /// its listener reconnecting).
    pub fn agents_generation(&self) -> Option<u64> {
        self.agents.generation()
    }

    /// Runs `future` to its end on this thread, with the store's runtime
    /// as the Tokio context (connections are spawned and timed there).
    pub(crate) fn run<F: Future>(&self, future: F) -> F::Output {
        let _context = self.runtime.as_ref().map(|rt| rt.handle().enter());
        futures_executor::block_on(future)
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            use deadpool_postgres::PoolError;
            let why = match &e {
                PoolError::Backend(e) => detail(e),
                PoolError::Timeout(_) => "no connection within 10s (is the database up?)".into(),
                other => other.to_string(),
            };
            StoreError::Pool {
                detail: format!("{}: {why}", self.describe),
            }
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What the server (or the connection) said: the driver's own display
/// is only "db error".
pub(crate) fn detail(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// The password, read now from where the settings say it is kept.
fn password(source: &PasswordSource) -> Result<Option<Vec<u8>>, StoreError> {
    match source {
        PasswordSource::None => Ok(None),
        PasswordSource::Env(name) => match std::env::var_os(name) {
            Some(value) => Ok(Some(value.into_encoded_bytes())),
            None => Err(StoreError::Password {
                detail: format!(
                    "the environment variable `{name}` ([postgres] password_env) is not set"
                ),
            }),
        },
        PasswordSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| StoreError::Password {
                detail: format!(
                    "cannot read {} ([postgres] password_file): {e}",
                    path.display()
                ),
            })?;
            let first = text.lines().next().unwrap_or("");
            Ok(Some(first.as_bytes().to_vec()))
        }
    }
}

/// Verified TLS: the Web PKI roots, or only the certificates in `ca_file`.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let unreadable = |detail: String| StoreError::Tls {
                detail: format!("{} ([postgres] ca_file): {detail}", path.display()),
            };
            for cert in
                CertificateDer::pem_file_iter(path).map_err(|e| unreadable(e.to_string()))?
            {
                let cert = cert.map_err(|e| unreadable(e.to_string()))?;
                roots.add(cert).map_err(|e| unreadable(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(unreadable("holds no certificate".to_string()));
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls {
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
