//! Where a host keeps its state: the `store` key and the `[postgres]`
//! table of `airlock.toml`.
//!
//! ```toml
//! store = "postgres://airlock@db.example.com/airlock?sslmode=require"   # default: "sqlite"
//!
//! [postgres]
//! password_file = "/run/secrets/airlock-db"   # or password_env = "AIRLOCK_DB_PASSWORD"
//! ca_file = "/etc/airlock/db-ca.pem"          # TLS roots (default: the Web PKI roots)
//! replica = "eu-1"                            # this replica's name (default: the host name)
//! ```
//!
//! The password never sits in the URL (configs are digested, shown and
//! copied around), and a database on another machine is reached over
//! verified TLS only.

use crate::toml_file::{ConfigError, TomlText};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;

/// Where a host keeps its journal, approvals, agents and devices.
#[derive(Clone, Debug, Default)]
pub enum StoreLocation {
    /// One SQLite database in the state directory (the embedded default).
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by replicas.
    Postgres(Box<PostgresSettings>),
}

impl StoreLocation {
    /// `sqlite`, or the shared database and this replica's name (no
    /// password): what a reload compares, since the store is kept until
    /// the server restarts.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite => "sqlite".to_string(),
            StoreLocation::Postgres(settings) => {
                shared_label(&settings.describe(), settings.replica())
            }
        }
    }
}

/// A shared store as [`StoreLocation::describe`] and
/// [`Store::describe`](super::Store::describe) name it.
pub(crate) fn shared_label(database: &str, replica: &str) -> String {
    format!("{database} as replica {replica}")
}

/// How to reach the shared PostgreSQL database, and who this replica is.
#[derive(Clone, Debug)]
pub struct PostgresSettings {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) password: PasswordSource,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) tls: bool,
    replica: String,
}

/// Where the database password comes from (never the URL, never argv).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password (peer or certificate authentication, or trust).
    None,
    /// An environment variable of the server's process.
    Env(String),
    /// A file readable by the server (its first line).
    File(PathBuf),
}

impl PostgresSettings {
    /// Settings for `url` (a `postgres://` URL or `key=value` string) as
    /// replica `replica`; the same checks as the config file's.
    pub fn new(
        url: &str,
        password: PasswordSource,
        replica: &str,
    ) -> Result<Self, StoreLocationError> {
        let config = parse_url(url)?;
        let tls = wants_tls(&config)?;
        check_replica(replica)?;
        Ok(Self {
            config,
            password,
            ca_file: None,
            tls,
            replica: replica.to_string(),
        })
    }

    /// The file the password is read from, if it is read from one.
    pub fn password_file(&self) -> Option<&std::path::Path> {
        match &self.password {
            PasswordSource::File(path) => Some(path),
            PasswordSource::None | PasswordSource::Env(_) => None,
        }
    }

    /// This replica's name in the shared store.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The database as `user@host:port/dbname`, for messages (no password).
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{}:{port}/{}",
            self.config.get_user().unwrap_or(""),
            hosts.join(","),
            self.config.get_dbname().unwrap_or("")
        )
    }
}

/// Why a store location is not usable.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreLocationError {
    /// Not a PostgreSQL connection string.
    #[error("`{detail}`: the store must be \"sqlite\" or a postgres:// URL")]
    Url {
        /// The parser's complaint.
        detail: String,
    },
    /// The URL holds a password.
    #[error(
        "the store URL holds a password: remove it and name where it is kept instead ([postgres] password_file or password_env)"
    )]
    PasswordInUrl,
    /// A remote database without verified TLS.
    #[error(
        "the database at {host} is not on this machine, so it is reached over TLS only: add `sslmode=require` to the URL (certificates are always verified)"
    )]
    PlainRemote {
        /// The remote host.
        host: String,
    },
    /// A replica name that is empty, too long or has odd characters.
    #[error(
        "replica name `{name}` is not usable: 1 to 64 letters, digits, `.`, `_` or `-` (set [postgres] replica)"
    )]
    Replica {
        /// The name given.
        name: String,
    },
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreLocationError> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| StoreLocationError::Url {
        detail: e.to_string(),
    })?;
    if config.get_password().is_some() {
        return Err(StoreLocationError::PasswordInUrl);
    }
    Ok(config)
}

/// Whether TLS is used: required for any host that is not loopback or a
/// Unix socket, never merely "preferred" (a downgrade would go unseen).
fn wants_tls(config: &tokio_postgres::Config) -> Result<bool, StoreLocationError> {
    use tokio_postgres::config::{Host, SslMode};
    let require = config.get_ssl_mode() == SslMode::Require;
    if require {
        return Ok(true);
    }
    let remote = config.get_hosts().iter().find_map(|host| match host {
        Host::Tcp(name) if !is_loopback(name) => Some(name.clone()),
        _ => None,
    });
    match remote {
        Some(host) => Err(StoreLocationError::PlainRemote { host }),
        None => Ok(false),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_replica(name: &str) -> Result<(), StoreLocationError> {
    if crate::vocabulary::is_plain_name(name) {
        Ok(())
    } else {
        Err(StoreLocationError::Replica {
            name: name.to_string(),
        })
    }
}

/// This machine's name: the default replica name.
fn host_name() -> String {
    #[cfg(unix)]
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|n| n.into_string().ok());
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.filter(|n| check_replica(n).is_ok())
        .unwrap_or_else(|| "airlock".to_string())
}

/// The `[postgres]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPostgres {
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    replica: Option<Spanned<String>>,
}

/// Checks the `store` key with its `[postgres]` table; relative files are
/// taken from `base`.
pub(crate) fn store_location(
    store: Option<Spanned<String>>,
    postgres: Option<Spanned<RawPostgres>>,
    base: &Path,
    source: &TomlText<'_>,
) -> Result<StoreLocation, ConfigError> {
    let url = match &store {
        None => None,
        Some(s) if s.get_ref() == "sqlite" => None,
        Some(s) => Some(s),
    };
    let Some(url) = url else {
        return match postgres {
            Some(table) => Err(source.error(
                table.span(),
                "a [postgres] table without `store = \"postgres://…\"`: set the store, or remove the table",
            )),
            None => Ok(StoreLocation::Sqlite),
        };
    };
    let at = |span: std::ops::Range<usize>| {
        move |e: StoreLocationError| source.error(span, e.to_string())
    };
    let config = parse_url(url.get_ref()).map_err(at(url.span()))?;
    let tls = wants_tls(&config).map_err(at(url.span()))?;
    let raw = postgres.map(Spanned::into_inner);
    let (password_env, password_file, ca_file, replica) = match raw {
        Some(r) => (r.password_env, r.password_file, r.ca_file, r.replica),
        None => (None, None, None, None),
    };
    let password = match (password_env, password_file) {
        (Some(env), Some(_)) => {
            return Err(source.error(
                env.span(),
                "give the password in `password_env` or `password_file`, not both",
            ));
        }
        (Some(env), None) => PasswordSource::Env(env.into_inner()),
        (None, Some(file)) => PasswordSource::File(base.join(file.into_inner())),
        (None, None) => PasswordSource::None,
    };
    let replica = match replica {
        Some(name) => {
            check_replica(name.get_ref()).map_err(at(name.span()))?;
            name.into_inner()
        }
        None => host_name(),
    };
    Ok(StoreLocation::Postgres(Box::new(PostgresSettings {
        config,
        password,
        ca_file: ca_file.map(|f| base.join(f.into_inner())),
        tls,
        replica,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<PostgresSettings, StoreLocationError> {
        PostgresSettings::new(url, PasswordSource::None, "a")
    }

    fn config(text: &str) -> Result<crate::Config, String> {
        crate::Config::from_toml(text, "airlock.toml", Path::new("/etc/airlock"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_store_key_and_the_postgres_table() {
        let sqlite = config("").expect("default");
        assert!(matches!(sqlite.store(), StoreLocation::Sqlite));
        assert!(matches!(
            config("store = \"sqlite\"").expect("sqlite").store(),
            StoreLocation::Sqlite
        ));
        let shared = config(
            "store = \"postgres://airlock@localhost/airlock\"\n[postgres]\n\
             password_file = \"db-password\"\nreplica = \"eu-1\"\n",
        )
        .expect("postgres");
        let StoreLocation::Postgres(settings) = shared.store() else {
            panic!("a shared store");
        };
        assert_eq!(settings.replica(), "eu-1");
        assert_eq!(
            settings.password,
            PasswordSource::File(PathBuf::from("/etc/airlock/db-password"))
        );
        assert_eq!(settings.describe(), "airlock@localhost:5432/airlock");

        for (text, says) in [
            ("[postgres]\nreplica = \"a\"\n", "without `store"),
            (
                "store = \"postgres://a@localhost/a\"\n[postgres]\npassword_env = \"X\"\npassword_file = \"f\"\n",
                "not both",
            ),
            (
                "store = \"postgres://a:secret-pw@localhost/a\"\n",
                "holds a password",
            ),
            (
                "store = \"postgres://a@db.example.com/a\"\n",
                "sslmode=require",
            ),
            (
                "store = \"postgres://a@localhost/a\"\n[postgres]\nreplica = \"a b\"\n",
                "replica name",
            ),
            ("store = \"mysql://x\"\n", "\"sqlite\" or a postgres:// URL"),
            (
                "store = \"postgres://a@localhost/a\"\n[postgres]\nuser = \"x\"\n",
                "unknown field",
            ),
        ] {
            let error = config(text).map(|_| ()).expect_err(text);
            assert!(error.contains(says), "{text}: {error}");
            assert!(!error.contains("secret-pw"), "{error}");
        }
    }

    #[test]
    fn remote_databases_need_tls_and_passwords_stay_out_of_urls() {
        assert!(
            !settings("postgres://airlock@127.0.0.1/airlock")
                .expect("loopback")
                .tls
        );
        assert!(
            !settings("host=/run/postgresql dbname=airlock")
                .expect("socket")
                .tls
        );
        assert!(
            settings("postgres://airlock@db.example.com/airlock?sslmode=require")
                .expect("tls")
                .tls
        );
        assert_eq!(
            settings("postgres://airlock@db.example.com/airlock").map(|_| ()),
            Err(StoreLocationError::PlainRemote {
                host: "db.example.com".into()
            })
        );
        assert_eq!(
            settings("postgres://airlock@db.example.com/airlock?sslmode=prefer").map(|_| ()),
            Err(StoreLocationError::PlainRemote {
                host: "db.example.com".into()
            })
        );
        let leaked = settings("postgres://airlock:hunter2@127.0.0.1/airlock").map(|_| ());
        assert_eq!(leaked, Err(StoreLocationError::PasswordInUrl));
        assert!(!format!("{leaked:?}").contains("hunter2"));
        assert!(matches!(
            settings("mysql:/nope"),
            Err(StoreLocationError::Url { .. })
        ));
        assert!(matches!(
            PostgresSettings::new("host=/tmp", PasswordSource::None, "a b"),
            Err(StoreLocationError::Replica { .. })
        ));
    }
}
