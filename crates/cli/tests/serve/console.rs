//! The operator console in a real browser (headless Chromium over
//! WebDriver): pairing with a one-time code, a pending approval appearing
//! live while an MCP client's call waits, deciding it from the page, the
//! journal, tools and devices pages; and what is refused: wrong, reused
//! and expired codes, revoked devices, requests without the CSRF token,
//! and every page but pairing to a browser that is not paired.

use super::browser::Browser;
use super::fixture::{Fixture, Server, Start, airlock_for, printed};
use super::{call_tool, fetch_held_for_approval, text};
use serde_json::{Value, json};

pub(super) async fn console_server(fixture: &Fixture) -> Server<'_> {
    Server::start(
        fixture,
        Start {
            console: true,
            ..Start::default()
        },
    )
    .await
}

pub(super) fn console(server: &Server<'_>) -> (String, String) {
    let at = server.console.as_ref().expect("the console is served");
    (at.url.clone(), at.pin.clone())
}

/// A new pairing code from `airlock devices pair ARGS`.
pub(super) fn pairing_code(server: &Server<'_>, args: &[&str]) -> String {
    let mut command = vec!["devices", "pair"];
    command.extend_from_slice(args);
    let out = server.airlock(&command);
    assert!(out.status.success(), "{}", printed(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Enters `code` on the pairing page, submitting with the keyboard.
pub(super) async fn enter_code(browser: &Browser, url: &str, code: &str, label: &str) {
    assert_eq!(browser.open(&format!("{url}/pair")).await, "/pair");
    browser.fill("#label", label).await;
    browser.fill("#code", &format!("{code}\u{E007}")).await;
}

/// A `fetch` of `path` on the upstream, held for an approval, once the
/// console shows it: the call and the approval id.
async fn held_and_shown(
    server: &Server<'_>,
    client: &rmcp::service::RunningService<rmcp::RoleClient, super::fixture::Recorder>,
    browser: &Browser,
    port: u16,
    path: &str,
) -> (
    tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>>,
    String,
) {
    let url = format!("http://svc.test:{port}{path}");
    let (pending, _, id) = fetch_held_for_approval(server, client, json!({ "url": url })).await;
    browser.wait_for(&format!("#approval-{id}")).await;
    (pending, id)
}

/// Enters `code` and checks the browser is refused, not paired.
async fn assert_code_refused(browser: &Browser, url: &str, code: &str) {
    enter_code(browser, url, code, "refused").await;
    let said = browser.text("#pair-error").await;
    assert!(said.contains("wrong, expired or already used"), "{said}");
}

/// The devices `airlock devices list --json` shows (through the server's
/// socket while it runs, from the state directory after).
fn devices(fixture: &Fixture) -> Vec<Value> {
    let out = airlock_for(fixture, &["devices", "list", "--json"])
        .output()
        .expect("airlock devices list");
    assert!(out.status.success(), "{}", printed(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_browser_allows_a_waiting_mcp_call_live() {
    let upstream = super::fixture::upstream().await;
    let fixture = Fixture::with_upstream("", upstream.addr().port());
    let server = console_server(&fixture).await;
    let (url, pin) = console(&server);
    let browser = Browser::start(&pin).await;

    // Unpaired, every page leads to pairing, and pairing is all there is.
    for page in ["/", "/journal", "/tools", "/devices", "/journal/1"] {
        assert_eq!(
            browser.open(&format!("{url}{page}")).await,
            "/pair",
            "{page}"
        );
    }
    assert!(browser.has("form[action='/pair']").await);
    assert!(!browser.has("nav").await, "no navigation before pairing");
    browser.screenshot("pairing").await;

    let code = pairing_code(&server, &[]);
    enter_code(&browser, &url, &code, "test laptop").await;
    browser.wait_for("#no-approvals").await;
    assert_eq!(browser.path().await, "/");
    assert_eq!(browser.text("#operator").await, super::fixture::user_name());

    // An agent's call waits for an approval; the page shows it without a
    // reload, with the input in full.
    let client = server.client("claude").await;
    let port = upstream.addr().port();
    let (pending, id) = held_and_shown(&server, &client, &browser, port, "/report?q=1").await;
    let target = format!("http://svc.test:{port}/report?q=1");
    let card = format!("#approval-{id}");
    let shown = browser.text(&card).await;
    for expected in ["fetch", "Agent::\"claude\"", "network", &target, "svc.test"] {
        assert!(shown.contains(expected), "`{expected}` not in: {shown}");
    }
    browser.screenshot("approvals").await;

    browser
        .click(&format!("{card} button[value='allow_once']"))
        .await;
    let notice = browser.text("#notice").await;
    assert!(notice.contains("allowed once"), "{notice}");
    let result = pending.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{}", text(&result));

    // The decision names the operator and the device.
    let device = devices(&fixture).pop().expect("one device");
    let shown = server.airlock(&["approvals", "show", &id, "--json"]);
    let approval: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    let by = approval["decided_by"].as_str().unwrap_or_default();
    assert_eq!(
        by,
        format!(
            "operator:{} on device:{}",
            super::fixture::user_name(),
            device["id"].as_str().expect("id")
        )
    );

    // Denied from a phone-sized screen, with a reason typed and Enter:
    // the page fits without sideways scrolling, and the agent reads why.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize");
    let (denied, second) = held_and_shown(&server, &client, &browser, port, "/second").await;
    let fits = browser
        .run("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(fits, json!(true));
    browser.screenshot("phone").await;
    browser
        .fill(&format!("#reason-{second}"), "not from this agent\u{E007}")
        .await;
    assert!(
        browser
            .text("#notice")
            .await
            .contains("denied (not from this agent)")
    );
    let result = denied.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("not from this agent"),
        "{}",
        text(&result)
    );
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("resize");

    // Allowed for two hours: the next call, with another input, runs
    // without asking.
    let (windowed, third) = held_and_shown(&server, &client, &browser, port, "/third").await;
    browser.fill(&format!("#for-{third}"), "2h\u{E007}").await;
    assert!(browser.text("#notice").await.contains("allowed until"));
    let result = windowed.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    let again = call_tool(
        client.peer(),
        "fetch",
        json!({ "url": format!("http://svc.test:{port}/fourth") }),
    )
    .await;
    assert_eq!(again.is_error, Some(false), "{}", text(&again));

    // The journal page finds the decision, and the run's entry proves
    // itself in place.
    browser
        .open(&format!("{url}/journal?kind=approval_decided"))
        .await;
    let row = browser.text("#journal tbody tr").await;
    assert!(row.contains(device["id"].as_str().expect("id")), "{row}");
    browser
        .open(&format!("{url}/journal?tool=fetch&kind=invocation"))
        .await;
    browser.screenshot("journal").await;
    browser.click("#journal tbody tr a").await;
    browser.wait_for("#attestation").await;
    // A head is signed within seconds of the run: look again until it is.
    let deadline = std::time::Instant::now() + super::PATIENCE;
    let verdict = loop {
        let verdict = browser.text("#proof-verdict").await;
        if !verdict.starts_with("No signed tree head") {
            break verdict;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no signed head covers the run: {verdict}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        browser.client.refresh().await.expect("reload");
    };
    assert!(verdict.starts_with("Verified"), "{verdict}");
    assert!(browser.text("#egress-check").await.contains("matches"));
    browser.screenshot("entry").await;

    // Paging: 55 runs of `echo` are 50 on the first page, 5 on the next.
    for n in 0..55 {
        let echoed = call_tool(client.peer(), "echo", json!({ "n": n })).await;
        assert_eq!(echoed.is_error, Some(false));
    }
    browser
        .open(&format!("{url}/journal?tool=echo&kind=invocation"))
        .await;
    let rows = "#journal tbody tr";
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css(rows))
            .await
            .expect("rows")
            .len(),
        50
    );
    browser.click("#older").await;
    browser.wait_for("a[rel='prev']").await;
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css(rows))
            .await
            .expect("rows")
            .len(),
        5
    );
    assert!(
        !browser.has("#older").await,
        "the oldest page has no older one"
    );

    browser.open(&format!("{url}/tools")).await;
    let tool = browser.text("#tool-fetch").await;
    assert!(tool.contains("svc.test") && tool.contains("ok"), "{tool}");
    browser.screenshot("tools").await;
    browser.open(&format!("{url}/devices")).await;
    assert!(browser.text("#devices").await.contains("test laptop"));
    browser.screenshot("devices").await;

    browser.close().await;
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_reused_and_expired_codes_are_refused() {
    let fixture = Fixture::new("");
    let server = console_server(&fixture).await;
    let (url, pin) = console(&server);
    let browser = Browser::start(&pin).await;

    assert_code_refused(&browser, &url, "AAAA-AAAA").await;

    let code = pairing_code(&server, &[]);
    enter_code(&browser, &url, &code, "first").await;
    browser.wait_for("#no-approvals").await;
    // The same code in another (unpaired) browser profile is used up.
    browser.client.delete_all_cookies().await.expect("forget");
    assert_code_refused(&browser, &url, &code).await;

    // A code past its lifetime is refused. Waiting past a deadline the
    // server measures makes the outcome certain, not timing-dependent.
    let short = pairing_code(&server, &["--expires", "1s"]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_code_refused(&browser, &url, &short).await;

    // Too many wrong codes: even a good one waits.
    let good = pairing_code(&server, &[]);
    for _ in 0..3 {
        enter_code(&browser, &url, "BBBB-BBBB", "guess").await;
        browser.wait_for("#pair-error").await;
    }
    enter_code(&browser, &url, &good, "patient").await;
    assert!(
        browser
            .text("#pair-error")
            .await
            .contains("too many wrong pairing codes")
    );
    assert_eq!(
        devices(&fixture).len(),
        1,
        "only the first pairing made a device"
    );

    // An operator may pair devices only for themself.
    let other = server.airlock(&["devices", "pair", "--operator", "mallory"]);
    super::fixture::assert_refused(&other, 2, "operator_mismatch");

    browser.close().await;
    let journal = server.stop_and_journal();
    let changes: Vec<&str> = journal
        .iter()
        .filter(|e| e["kind"] == "device_changed")
        .filter_map(|e| e["payload"]["change"].as_str())
        .collect();
    assert_eq!(
        changes,
        ["code_issued", "paired", "code_issued", "code_issued"]
    );
    assert!(
        journal
            .iter()
            .all(|e| !e.to_string().contains(&code) && !e.to_string().contains("airlock_device_")),
        "no code or cookie is journaled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_devices_and_forged_posts_are_refused() {
    let upstream = super::fixture::upstream().await;
    let fixture = Fixture::with_upstream("", upstream.addr().port());
    let server = console_server(&fixture).await;
    let (url, pin) = console(&server);
    let browser = Browser::start(&pin).await;
    let code = pairing_code(&server, &[]);
    enter_code(&browser, &url, &code, "doomed").await;
    browser.wait_for("#no-approvals").await;

    // The console's headers: no inline script, no framing, no referrer.
    let headers = browser
        .client
        .execute_async(
            "const done = arguments[0]; fetch('/').then(r => done([r.headers.get('content-security-policy'), r.headers.get('x-frame-options'), r.headers.get('referrer-policy'), r.headers.get('strict-transport-security')]));",
            vec![],
        )
        .await
        .expect("fetch");
    let csp = headers[0].as_str().unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers[1], "DENY");
    assert_eq!(headers[2], "no-referrer");
    assert!(
        headers[3]
            .as_str()
            .unwrap_or_default()
            .starts_with("max-age=")
    );

    // A pending approval, and posts that try to decide it without the
    // page's CSRF token: refused, and it stays pending.
    let client = server.client("claude").await;
    let (pending, id) =
        held_and_shown(&server, &client, &browser, upstream.addr().port(), "/").await;
    for body in ["decision=allow_once", "decision=allow_once&csrf=00ff"] {
        let init = format!(
            "{{method: 'POST', headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: {body:?}}}"
        );
        let status = browser
            .fetch_status(&format!("/approvals/{id}"), &init)
            .await;
        assert_eq!(status, 403, "{body}");
    }
    let shown = server.airlock(&["approvals", "show", &id, "--json"]);
    let approval: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(approval["status"], "pending", "{approval}");

    // Revoked from the CLI: the open page is sent to pairing at once, and
    // the old cookie opens nothing.
    let device = devices(&fixture).pop().expect("one device");
    let id_of_device = device["id"].as_str().expect("id").to_string();
    let revoked = server.airlock(&["devices", "revoke", &id_of_device]);
    assert!(revoked.status.success(), "{}", printed(&revoked));
    browser.wait_for("form[action='/pair']").await;
    assert_eq!(browser.path().await, "/pair");
    assert_eq!(browser.open(&format!("{url}/devices")).await, "/pair");
    let init = "{method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'decision=allow_once'}";
    assert_eq!(
        browser
            .fetch_status(&format!("/approvals/{id}"), init)
            .await,
        403
    );

    // The operator decides over the socket instead; the call goes on.
    let denied = server.airlock(&["approvals", "decide", &id, "--deny", "not today"]);
    assert!(denied.status.success(), "{}", printed(&denied));
    let result = pending.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(true));

    browser.close().await;
    let journal = server.stop_and_journal();
    // Without a server, the CLI reads the state directory itself.
    let listed = devices(&fixture);
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["revoked"].is_string(), "{listed:?}");
    let revocation = journal
        .iter()
        .find(|e| e["kind"] == "device_changed" && e["payload"]["change"] == "revoked")
        .expect("the revocation is journaled");
    assert_eq!(revocation["payload"]["device"], id_of_device.as_str());
    assert_eq!(
        revocation["payload"]["by"],
        format!("operator:{}", super::fixture::user_name())
    );
}
