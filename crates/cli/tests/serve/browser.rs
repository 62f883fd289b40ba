//! Headless Chromium for the console's tests, driven over WebDriver by
//! Debian's chromedriver (both installed by the README's test command).
//! Chromium may reach loopback only: every other request goes to a proxy
//! on 127.0.0.1:9 where nothing listens, and no host name resolves except
//! `localhost`; the console's own certificate is trusted by its key pin
//! and nothing else is.

use super::PATIENCE;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};

/// The browser binary and its driver (overridable for other systems).
fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

/// A running chromedriver and one browser session on it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
}

/// A free loopback port for chromedriver (it takes no port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that trusts the console
    /// certificate whose key hashes to `pin`.
    pub async fn start(pin: &str) -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        // The browser's own log, shown if the test fails (a crashed tab
        // says why only there).
        let log = std::fs::File::create(profile.path().join(LOG)).expect("browser log");
        let mut driver = Command::new(program("CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .arg("--enable-chrome-logs")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect(
                "chromedriver runs: the README's test command installs Debian's chromium-driver",
            );
        // It says when it listens.
        let stdout = driver.stdout.take().expect("stdout");
        let ready = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains("started successfully"))
        });
        assert!(
            tokio::time::timeout(PATIENCE, ready)
                .await
                .is_ok_and(|r| r.unwrap_or(false)),
            "chromedriver did not start"
        );
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": program("CHROMIUM", "/usr/bin/chromium"),
                "args": [
                    "--headless=new",
                    // The tests run as root in CI, where Chromium's own
                    // sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-default-apps",
                    "--disable-sync",
                    "--disable-quic",
                    "--proxy-server=http://127.0.0.1:9",
                    "--proxy-bypass-list=127.0.0.1;localhost",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                    format!("--ignore-certificate-errors-spki-list={pin}"),
                    format!("--user-data-dir={}", profile.path().join("data").display()),
                    "--window-size=1280,900",
                ],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal");
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session in headless Chromium");
        Browser {
            client,
            driver,
            profile,
        }
    }

    /// Opens `url` and returns the path the browser ends up on.
    pub async fn open(&self, url: &str) -> String {
        self.client.goto(url).await.expect("navigate");
        self.path().await
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Runs `act` on the first element `css` selects, waiting for it. The
    /// live approvals list may be replaced between finding an element and
    /// acting on it: then it is found again.
    pub async fn on<T>(
        &self,
        css: &str,
        act: impl AsyncFn(fantoccini::elements::Element) -> Result<T, fantoccini::error::CmdError>,
    ) -> T {
        loop {
            match act(self.wait_for(css).await).await {
                Ok(done) => return done,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
                Err(e) => panic!("on `{css}`: {e}"),
            }
        }
    }

    /// The text of the first element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.on(css, async |element| element.text().await).await
    }

    /// Clicks the first element `css` selects.
    pub async fn click(&self, css: &str) {
        self.on(css, async |element| element.click().await).await;
    }

    /// The first element `css` selects, once there is one.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let at = self.path().await;
                let page = self.client.source().await.unwrap_or_default();
                panic!("no `{css}` on {at}: {e}\n{page}")
            }
        }
    }

    /// Whether `css` selects anything now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// Types `text` into the field `css` selects.
    pub async fn fill(&self, css: &str, text: &str) {
        self.on(css, async |field| {
            field.clear().await?;
            field.send_keys(text).await
        })
        .await;
    }

    /// Runs `script` (its `return` value comes back) in the page.
    pub async fn run(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// `fetch(path, init)` from the page: the response's status.
    pub async fn fetch_status(&self, path: &str, init: &str) -> u64 {
        let script = format!(
            "const done = arguments[0]; fetch({path:?}, {init}).then(r => done(r.status), e => done(String(e)));"
        );
        let status = self
            .client
            .execute_async(&script, vec![])
            .await
            .expect("fetch");
        status
            .as_u64()
            .unwrap_or_else(|| panic!("fetch failed: {status}"))
    }

    /// Saves a screenshot of the page as `docs/console/NAME.png` when
    /// `AIRLOCK_SCREENSHOTS` is set (the README shows them); otherwise
    /// only checks one can be taken.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        if std::env::var_os("AIRLOCK_SCREENSHOTS").is_some() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console");
            std::fs::create_dir_all(&dir).expect("docs/console");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("save screenshot");
        }
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The browser log's file name in the profile directory.
const LOG: &str = "browser.log";

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.profile.path().join(LOG)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("last lines of the browser's log:");
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
    }
}
