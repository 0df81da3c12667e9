//! The console in a real browser (feature `browser-tests`): headless Chromium driven through chromedriver with
//! fantoccini, against the example server's router on loopback.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); `CHROMEDRIVER` and `CHROMIUM`
//! override `/usr/bin/chromedriver` and `/usr/bin/chromium`. Screenshots of each run go to
//! `target/console-screenshots/` (the list, the issue dialog, the usage chart, the page at 200% zoom).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tower_api_key::{ManualClock, MemoryStore, NewKey, UsageTracker};

use common::{SERVICE_KEY, USER_KEY};
/// How long the page may take to show the result of an action.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------------------------------

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn driver() -> Driver {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let port = free_port();
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver at {path} ({e}): install Debian's chromium and chromium-driver \
                 (apt-get install chromium chromium-driver), set CHROMEDRIVER, or test without feature browser-tests"
            )
        });
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < PATIENCE, "chromedriver at {path} did not listen on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = std::env::temp_dir().join(format!("tak-chromium-{}", tower_api_key::KeyId::random()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver at {} could not start {binary}: {e}", driver.url))
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

// ---------------------------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------------------------

async fn by_id(c: &Client, id: &str) -> Element {
    c.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"))
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Waits until `script` returns `true`.
async fn until(c: &Client, what: &str, script: &str) {
    let start = Instant::now();
    while js(c, script).await != Value::Bool(true) {
        assert!(start.elapsed() < PATIENCE, "{what}: not within {PATIENCE:?} ({script})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn visible(c: &Client, id: &str) -> bool {
    by_id(c, id).await.is_displayed().await.unwrap()
}

async fn text(c: &Client, id: &str) -> String {
    by_id(c, id).await.text().await.unwrap()
}

async fn fill(c: &Client, id: &str, value: &str) {
    let field = by_id(c, id).await;
    field.clear().await.unwrap();
    if !value.is_empty() {
        field.send_keys(value).await.unwrap();
    }
}

async fn choose(c: &Client, id: &str, value: &str) {
    by_id(c, id).await.select_by_value(value).await.unwrap();
}

async fn sign_in(c: &Client, key: &str) {
    // By keyboard: the key field has the focus when the page opens; Enter submits.
    fill(c, "admin-key", &format!("{key}\n")).await;
}

/// The new key in the copy box, which it then closes; checks the box forgets it.
async fn take_secret(c: &Client, shot: Option<&str>) -> String {
    until(c, "the new-key box opens", "return document.getElementById('secret-dialog').open").await;
    let notice = text(c, "secret-dialog").await;
    assert!(notice.contains("It will not be shown again"), "{notice}");
    let key = by_id(c, "secret-value").await.prop("value").await.unwrap().unwrap();
    assert!(key.starts_with("tak_"), "a key in the crate's format");
    click(c, "#secret-copy").await;
    until(c, "the copy button answers", "return document.getElementById('secret-copied').textContent !== ''").await;
    if let Some(name) = shot {
        screenshot(c, name).await;
    }
    click(c, "#secret-close").await;
    until(c, "the box closes", "return !document.getElementById('secret-dialog').open").await;
    // The page forgets the key on the dialog's `close` event, which the browser fires just after `open` turns false.
    until(c, "closing the box drops the key", "return document.getElementById('secret-value').value === ''").await;
    key
}

/// Finds `css` and clicks it, again while the page re-renders under it (a stale element), for up to `PATIENCE`.
async fn click(c: &Client, css: &str) {
    let start = Instant::now();
    loop {
        let clicked = match c.find(Locator::Css(css)).await {
            Ok(element) => element.click().await,
            Err(e) => Err(e),
        };
        match clicked {
            Ok(()) => return,
            Err(e) => assert!(start.elapsed() < PATIENCE, "clicking {css}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The public id of the listed key whose full text is `key` (the row whose display id starts the key).
async fn row_id(c: &Client, key: &str) -> String {
    let script = "const key = arguments[0];\
        const row = [...document.querySelectorAll('#keys tbody tr')]\
          .find(r => key.startsWith(r.querySelector('td.key').textContent + '_'));\
        return row ? row.dataset.id : null";
    let start = Instant::now();
    loop {
        if let Value::String(id) = c.execute(script, vec![json!(key)]).await.unwrap() {
            return id;
        }
        assert!(start.elapsed() < PATIENCE, "no row for the key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of `css` in the row of `key` (`tr` for the whole row).
async fn cell(c: &Client, key: &str, css: &str) -> String {
    let id = row_id(c, key).await;
    let script = "const row = document.querySelector('#keys tr[data-id=\"' + arguments[0] + '\"]');\
        const cell = row && (arguments[1] === 'tr' ? row : row.querySelector(arguments[1]));\
        return cell ? (arguments[1] === 'tr' ? cell.innerText : cell.textContent) : null";
    let start = Instant::now();
    loop {
        if let Value::String(text) = c.execute(script, vec![json!(id), json!(css)]).await.unwrap() {
            return text;
        }
        assert!(start.elapsed() < PATIENCE, "no {css} in the row of the key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a cell of a key's row until `ok` holds. The page redraws the list after it shows the API's answer, so a
/// cell read at once after an action can still show the row from before it.
async fn cell_until(c: &Client, key: &str, css: &str, what: &str, ok: impl Fn(&str) -> bool) {
    let start = Instant::now();
    loop {
        let text = cell(c, key, css).await;
        if ok(&text) {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "{what}: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits the edit dialog and waits for the API's answer. The last notice is cleared first: an earlier save's
/// "Saved" must not count, or the wait ends before this save has reached the server.
async fn save_edit(c: &Client) {
    js(c, "document.getElementById('notice').textContent = ''; return true").await;
    click(c, "#edit-form button[type=submit]").await;
    until(
        c,
        "saved",
        "return !document.getElementById('edit-dialog').open \
         && document.getElementById('notice').textContent.startsWith('Saved')",
    )
    .await;
}

async fn act(c: &Client, key: &str, action: &str) {
    let id = row_id(c, key).await;
    click(c, &format!("#keys tr[data-id=\"{id}\"] button[data-action={action}]")).await;
}

async fn issue(c: &Client, name: &str, kind: &str, owner: &str, scopes: &str) {
    fill(c, "issue-name", name).await;
    choose(c, "issue-kind", kind).await;
    fill(c, "issue-owner", owner).await;
    fill(c, "issue-scopes", scopes).await;
    click(c, "#issue-form button[type=submit]").await;
}

// ---------------------------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------------------------

struct Demo {
    base: String,
    clock: ManualClock,
    http: reqwest::Client,
    store: MemoryStore,
}

async fn demo() -> Demo {
    let clock = ManualClock::new(SystemTime::now());
    let store = common::demo_store();
    // Usage reaches the store within 100 ms, so the chart shows it without a long wait.
    let usage = UsageTracker::spawn(store.clone(), Duration::from_millis(100));
    let app = server::app(store.clone(), clock.clone(), usage).unwrap();
    Demo { base: format!("http://{}", common::serve(app).await), clock, http: common::client(), store }
}

impl Demo {
    async fn status(&self, path: &str, key: &str) -> u16 {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(key).send().await.unwrap().status().as_u16()
    }
}

/// Everything the browser keeps outside the page's memory, as text: storage, cookies, the URL, the history.
async fn kept_by_the_browser(c: &Client) -> String {
    let storage = js(
        c,
        "return JSON.stringify({local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage), \
         cookie: document.cookie, url: location.href, history: history.length, \
         inputs: [...document.querySelectorAll('input')].map(i => i.value), \
         html: document.documentElement.outerHTML})",
    )
    .await;
    let cookies = c.get_all_cookies().await.unwrap();
    let url = c.current_url().await.unwrap();
    format!("{storage} {cookies:?} {url}")
}

// ---------------------------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_issues_uses_rotates_edits_and_revokes_keys_in_a_real_browser() {
    let demo = demo().await;
    let driver = driver().await;
    let c = browser(&driver).await;
    let outcome = tokio::time::timeout(Duration::from_secs(180), walk_through(&c, &demo)).await;
    let _ = c.close().await;
    outcome.expect("the walk-through took more than 180 s");
}

async fn walk_through(c: &Client, demo: &Demo) {
    c.goto(&format!("{}/admin/", demo.base)).await.unwrap();
    assert!(visible(c, "sign-in").await && !visible(c, "app").await);
    // Anything the policy blocks from here on (a style, a script, a fetch elsewhere) is recorded, and must not be.
    js(
        c,
        "window.__blocked = []; document.addEventListener('securitypolicyviolation', \
         e => window.__blocked.push(e.violatedDirective + ' ' + e.blockedURI)); return true",
    )
    .await;
    // Every field has a label.
    let unlabelled = js(
        c,
        "return [...document.querySelectorAll('input, select')].filter(e => !e.labels || !e.labels.length)\
         .map(e => e.id)",
    )
    .await;
    assert_eq!(unlabelled, json!([]), "inputs without a label");

    // A user key (no keys:admin) cannot sign in, and is told why.
    sign_in(c, USER_KEY).await;
    until(c, "the refusal shows", "return !document.getElementById('sign-in-problem').hidden").await;
    let said = text(c, "sign-in-problem").await;
    assert!(said.contains("keys:admin"), "{said}");
    assert!(!visible(c, "app").await);
    // A key that is not a key at all.
    sign_in(c, "tak_user_nothing").await;
    until(
        c,
        "the refusal shows",
        "return document.getElementById('sign-in-problem').textContent.includes('not accepted')",
    )
    .await;

    // Text no header can carry is refused on the page, with a reason, instead of failing inside the browser.
    sign_in(c, "clé secrète").await;
    until(
        c,
        "the refusal shows",
        "return document.getElementById('sign-in-problem').textContent.includes('not a key')",
    )
    .await;

    // The demo service key signs in; the list shows the demo keys.
    sign_in(c, SERVICE_KEY).await;
    until(c, "signed in", "return !document.getElementById('app').hidden").await;
    until(c, "the list loads", "return document.querySelectorAll('#keys tbody tr').length === 2").await;

    // Issue a key; copy it from the page; use it.
    issue(c, "ci-key", "user", "carol", "whoami").await;
    let key = take_secret(c, Some("issue-dialog")).await;
    assert_eq!(demo.status("/whoami", &key).await, 200);
    for _ in 0..2 {
        assert_eq!(demo.status("/whoami", &key).await, 200);
    }
    let cells = cell(c, &key, "tr").await;
    assert!(cells.contains("ci-key") && cells.contains("carol") && cells.contains("whoami"), "{cells}");

    // Its usage: three requests in the current hour, once the tracker has flushed (every 100 ms here).
    let start = Instant::now();
    loop {
        act(c, &key, "usage").await;
        until(c, "the chart shows", "return !document.getElementById('usage').hidden").await;
        let total = js(c, "const s = document.querySelector('#usage-chart svg'); return s && s.dataset.total").await;
        if total == json!("3") {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "the chart never showed 3 requests: {total}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bars =
        js(c, "return [...document.querySelectorAll('#usage-chart rect.hour')].map(r => +r.dataset.count)").await;
    let bars: Vec<u64> = serde_json::from_value(bars).unwrap();
    assert_eq!(bars.len(), 24, "24 hours");
    assert_eq!(bars.last(), Some(&3), "the current hour is the last bar: {bars:?}");
    // The list is refreshed with the chart: its counts agree.
    until(
        c,
        "the list shows the uses",
        "return [...document.querySelectorAll('#keys td.uses')].some(t => t.textContent === '3')",
    )
    .await;
    js(c, "document.getElementById('keys-title').scrollIntoView(); return true").await;
    screenshot(c, "usage-chart").await;

    // Sorting by last use puts the idle keys first: a key never used comes first, then last.
    issue(c, "idle-key", "user", "idle", "").await;
    take_secret(c, None).await;
    choose(c, "sort", "idle").await;
    until(
        c,
        "sorted, idle first",
        "const rows = [...document.querySelectorAll('#keys tbody td.owner')].map(t => t.textContent);\
         return rows.length === 4 && rows[0] === 'idle'",
    )
    .await;
    choose(c, "sort", "recent").await;
    until(
        c,
        "sorted, recent first",
        "const rows = [...document.querySelectorAll('#keys tbody td.owner')].map(t => t.textContent);\
         return rows.length === 4 && rows[3] === 'idle'",
    )
    .await;
    choose(c, "sort", "id").await;

    // Rotate with a grace of 30 s: both keys work, then the old one stops once the clock passes the grace.
    act(c, &key, "rotate").await;
    until(c, "the rotate dialog opens", "return document.getElementById('rotate-dialog').open").await;
    fill(c, "rotate-grace", "30").await;
    choose(c, "rotate-grace-unit", "1").await;
    click(c, "#rotate-form button[type=submit]").await;
    let rotated = take_secret(c, None).await;
    assert_ne!(rotated, key);
    assert_eq!(demo.status("/whoami", &key).await, 200, "the old key within its grace");
    assert_eq!(demo.status("/whoami", &rotated).await, 200);
    demo.clock.advance(Duration::from_secs(31));
    assert_eq!(demo.status("/whoami", &key).await, 401, "the old key after its grace");
    assert_eq!(demo.status("/whoami", &rotated).await, 200);
    let notice = text(c, "notice").await;
    assert!(notice.starts_with("Rotated ci-key"), "{notice}");

    // Revoke the new key, after a confirmation.
    act(c, &rotated, "revoke").await;
    until(c, "the confirmation opens", "return document.getElementById('revoke-dialog').open").await;
    assert!(text(c, "revoke-what").await.contains("carol"));
    click(c, "#revoke-form button[type=submit]").await;
    until(c, "revoked", "return document.getElementById('notice').textContent.startsWith('Revoked')").await;
    assert_eq!(demo.status("/whoami", &rotated).await, 401);
    cell_until(c, &rotated, "td.status", "the list shows the key revoked", |t| t.starts_with("revoked")).await;

    // Edit scopes: an admin key loses keys:admin, and the admin API answers it 403.
    issue(c, "deputy", "system", "ops", "whoami keys:admin").await;
    let deputy = take_secret(c, None).await;
    assert_eq!(demo.status("/admin/keys", &deputy).await, 200);
    act(c, &deputy, "edit").await;
    until(c, "the edit dialog opens", "return document.getElementById('edit-dialog').open").await;
    assert_eq!(by_id(c, "edit-scopes").await.prop("value").await.unwrap().as_deref(), Some("whoami keys:admin"));
    fill(c, "edit-scopes", "whoami").await;
    fill(c, "edit-name", "deputy, demoted").await;
    save_edit(c).await;
    assert_eq!(demo.status("/admin/keys", &deputy).await, 403, "a scoped route after the edit");
    assert_eq!(demo.status("/whoami", &deputy).await, 200);
    cell_until(c, &deputy, "td.name", "the list shows the new name", |t| t == "deputy, demoted").await;
    // An API error shows its problem-details message: a scope with a quote in it is refused by the API.
    act(c, &deputy, "edit").await;
    until(c, "the edit dialog opens", "return document.getElementById('edit-dialog').open").await;
    fill(c, "edit-scopes", r#"whoami bad"scope"#).await;
    click(c, "#edit-form button[type=submit]").await;
    until(c, "the problem shows", "return !document.getElementById('problem').hidden").await;
    let problem = text(c, "problem").await;
    assert!(problem.to_lowercase().contains("scope"), "the API's detail: {problem}");
    assert_eq!(demo.status("/whoami", &deputy).await, 200, "a refused edit changes nothing");

    // A name that is HTML renders as text.
    let xss = r#"<img src=x onerror="window.__xss=1">"#;
    issue(c, xss, "user", "mallory", "").await;
    let xss_key = take_secret(c, None).await;
    let name = cell(c, &xss_key, "td.name").await;
    assert_eq!(name, xss);
    assert_eq!(js(c, "return document.querySelectorAll('img').length").await, json!(0));
    assert_eq!(js(c, "return window.__xss === undefined").await, json!(true));
    js(c, "document.getElementById('keys-title').scrollIntoView(); return true").await;
    screenshot(c, "list").await;

    // By keyboard alone: Tab between the fields, Enter submits, Escape closes the new-key box (which forgets it).
    by_id(c, "issue-name").await.click().await.unwrap();
    let typing = "keyboard-key\u{E004}\u{E004}keyboard-owner\u{E007}";
    c.active_element().await.unwrap().send_keys(typing).await.unwrap();
    until(c, "the new-key box opens", "return document.getElementById('secret-dialog').open").await;
    assert_eq!(js(c, "return document.activeElement.id").await, json!("secret-value"), "the box takes the focus");
    c.active_element().await.unwrap().send_keys("\u{E00C}").await.unwrap();
    until(c, "Escape closes the box", "return !document.getElementById('secret-dialog').open").await;
    until(c, "closing the box drops the key", "return document.getElementById('secret-value').value === ''").await;
    until(
        c,
        "the key is listed",
        "return [...document.querySelectorAll('#keys td.owner')].some(t => t.textContent === 'keyboard-owner')",
    )
    .await;

    // Disable and enable again from the edit dialog; then an expiry, which the clock passes.
    for (enabled, status) in [(false, 401), (true, 200)] {
        act(c, &deputy, "edit").await;
        until(c, "the edit dialog opens", "return document.getElementById('edit-dialog').open").await;
        let checkbox = by_id(c, "edit-enabled").await;
        if checkbox.is_selected().await.unwrap() != enabled {
            checkbox.click().await.unwrap();
        }
        save_edit(c).await;
        assert_eq!(demo.status("/whoami", &deputy).await, status, "enabled: {enabled}");
    }
    act(c, &deputy, "edit").await;
    until(c, "the edit dialog opens", "return document.getElementById('edit-dialog').open").await;
    choose(c, "edit-expiry", "in").await;
    fill(c, "edit-expires", "1").await;
    choose(c, "edit-expires-unit", "60").await;
    fill(c, "edit-limit", "1000").await;
    fill(c, "edit-period", "60").await;
    save_edit(c).await;
    cell_until(c, &deputy, "td:nth-child(7)", "the Expires column shows the new expiry", |t| t.ends_with(" UTC")).await;
    assert_eq!(demo.status("/whoami", &deputy).await, 200, "before its expiry");
    demo.clock.advance(Duration::from_secs(61));
    assert_eq!(demo.status("/whoami", &deputy).await, 401, "after its expiry");

    // Filters and paging with the API's cursor: 105 keys of one owner come as 100, then 5 more.
    for i in 0..105 {
        demo.store.add(NewKey::user("bulk").name(format!("bulk {i}"))).unwrap();
    }
    fill(c, "filter-owner", "bulk").await;
    click(c, "#filter-form button[type=submit]").await;
    until(c, "the first page", "return document.querySelectorAll('#keys tbody tr').length === 100").await;
    assert!(visible(c, "more").await, "a next page is offered");
    click(c, "#more").await;
    until(c, "the second page", "return document.querySelectorAll('#keys tbody tr').length === 105").await;
    assert!(!visible(c, "more").await, "no page after the last");
    let owners =
        js(c, "return [...new Set([...document.querySelectorAll('#keys td.owner')].map(t => t.textContent))]").await;
    assert_eq!(owners, json!(["bulk"]));
    fill(c, "filter-owner", "").await;
    choose(c, "filter-status", "revoked").await;
    choose(c, "filter-kind", "user").await;
    click(c, "#filter-form button[type=submit]").await;
    until(
        c,
        "only revoked user keys",
        "const rows = [...document.querySelectorAll('#keys tbody tr')];\
         return rows.length >= 1 && rows.every(r => r.querySelector('td.status').textContent.startsWith('revoked') \
           && r.children[1].textContent === 'user')",
    )
    .await;

    assert_eq!(js(c, "return window.__blocked").await, json!([]), "the policy blocked something the page did");

    // No key is ever kept by the browser: not the admin key, not the keys shown once.
    let kept = kept_by_the_browser(c).await;
    for (what, secret) in [("admin", SERVICE_KEY), ("issued", &key), ("rotated", &rotated), ("deputy", &deputy)] {
        assert!(!kept.contains(secret), "the {what} key is kept by the browser");
    }

    // At 200% zoom (a 1280 px window shows 640 CSS px): nothing spills out sideways but the table, which scrolls.
    c.set_window_size(640, 900).await.unwrap();
    until(c, "the page reflows", "return document.documentElement.scrollWidth <= window.innerWidth").await;
    screenshot(c, "zoom-200").await;
    c.set_window_size(1280, 900).await.unwrap();

    // Sign out: the page forgets the key, and the list with it.
    by_id(c, "sign-out").await.click().await.unwrap();
    until(c, "signed out", "return !document.getElementById('sign-in').hidden").await;
    assert_eq!(js(c, "return document.querySelectorAll('#keys tbody tr').length").await, json!(0));
    assert!(!kept_by_the_browser(c).await.contains(SERVICE_KEY));
}
