//! A minimal W3C WebDriver client for Debian's headless Chromium through `chromedriver`:
//! sessions, navigation, elements, scripts, and waiting on the page's own DOM mutations.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a page may take to reach a state the test waits for.
pub const PAGE_WAIT: Duration = Duration::from_secs(30);

fn find_program(candidates: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A `chromedriver` process on a free port, killed on drop with every browser it started
/// (they share its process group), also when a test fails before `quit`.
pub struct ChromeDriver {
    addr: SocketAddr,
    chromium: std::path::PathBuf,
    _child: Child,
    group: Option<rustix::process::Pid>,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl ChromeDriver {
    /// Starts `chromedriver` and waits until it says it is ready.
    ///
    /// # Panics
    /// When Chromium or chromedriver is not installed, saying how to install them.
    pub async fn start() -> Self {
        let missing = "the browser tests need Debian's `chromium` and `chromium-driver` packages \
             (/usr/bin/chromium and /usr/bin/chromedriver): run scripts/install-browser-deps \
             as root, or `sudo apt-get install chromium chromium-driver`";
        let chromium = find_program(&["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("chromium not found on PATH: {missing}"));
        let driver = find_program(&["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found on PATH: {missing}"));
        // A port free on 127.0.0.1 can still be taken by the time chromedriver binds it (other
        // tests open sockets meanwhile); a driver that cannot bind exits, so try a few ports.
        let mut attempts = 0;
        let (port, child, mut lines) = loop {
            attempts += 1;
            let port = {
                let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                probe.local_addr().unwrap().port()
            };
            // Without --allowed-ips chromedriver listens on loopback only.
            let mut child = Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                // Its own process group, so dropping it also ends the browsers it started.
                .process_group(0)
                .spawn()
                .expect("chromedriver starts");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let ready = tokio::time::timeout(Duration::from_secs(20), async {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line.contains("started successfully") {
                        return true;
                    }
                }
                false
            })
            .await
            .expect("chromedriver ready in time");
            if ready {
                break (port, child, lines);
            }
            assert!(
                attempts < 5,
                "chromedriver exited before it was ready, {attempts} times (ports in use?)"
            );
            let _ = child.kill().await;
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let group = child
            .id()
            .and_then(|pid| rustix::process::Pid::from_raw(i32::try_from(pid).ok()?));
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            chromium,
            _child: child,
            group,
        }
    }

    /// A new headless browser (its own profile, so its own storage).
    pub async fn session(&self) -> Session {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": self.chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-extensions",
                            "--no-first-run",
                            "--no-default-browser-check",
                            "--window-size=1200,900"
                        ]
                    }
                }
            }
        });
        let value = call(
            self.addr,
            http::Method::POST,
            "/session",
            Some(capabilities),
        )
        .await;
        let id = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        let session = Session {
            addr: self.addr,
            id,
        };
        session
            .command(
                http::Method::POST,
                "timeouts",
                Some(json!({"script": PAGE_WAIT.as_millis() as u64, "pageLoad": 30000})),
            )
            .await;
        session
    }
}

/// One WebDriver command; the answer's `value`.
async fn call(addr: SocketAddr, method: http::Method, path: &str, body: Option<Value>) -> Value {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let request = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let response = tokio::time::timeout(
        PAGE_WAIT + Duration::from_secs(30),
        sender.send_request(request),
    )
    .await
    .unwrap_or_else(|_| panic!("chromedriver did not answer {method} {path}"))
    .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "WebDriver {method} {path} failed with {status}: {}",
        value["value"]
    );
    value["value"].clone()
}

/// One browser.
pub struct Session {
    addr: SocketAddr,
    id: String,
}

impl Session {
    async fn command(&self, method: http::Method, path: &str, body: Option<Value>) -> Value {
        call(
            self.addr,
            method,
            &format!("/session/{}/{path}", self.id),
            body,
        )
        .await
    }

    pub async fn goto(&self, url: &str) {
        self.command(http::Method::POST, "url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            http::Method::POST,
            "execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until the JavaScript expression `condition` is truthy, re-checking it on every
    /// change of the page's DOM (no polling), and returns its value.
    ///
    /// # Panics
    /// When it is not truthy within [`PAGE_WAIT`], with `what` in the message.
    pub async fn wait_until(&self, condition: &str, what: &str) -> Value {
        const WAIT: &str = r"
            const condition = new Function('return (' + arguments[0] + ');');
            const done = arguments[arguments.length - 1];
            const check = () => {
                try {
                    const value = condition();
                    if (value) { done(value); return true; }
                } catch (e) { /* not yet */ }
                return false;
            };
            if (check()) return;
            const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
            observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
        ";
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = http::Request::post(format!("/session/{}/execute/async", self.id))
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({ "script": WAIT, "args": [condition] }).to_string(),
            )))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let page = self
                .execute("return document.body.innerText;", json!([]))
                .await;
            panic!(
                "waited {PAGE_WAIT:?} for {what} ({condition}): {}\n--- the page shows:\n{}",
                value["value"],
                page.as_str().unwrap_or_default()
            );
        }
        value["value"].clone()
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Element<'_> {
        let value = self
            .command(
                http::Method::POST,
                "element",
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        Element {
            session: self,
            id: value[ELEMENT].as_str().expect("an element").to_owned(),
        }
    }

    pub async fn quit(self) {
        call(
            self.addr,
            http::Method::DELETE,
            &format!("/session/{}", self.id),
            None,
        )
        .await;
    }
}

/// An element of a page.
pub struct Element<'a> {
    session: &'a Session,
    id: String,
}

impl Element<'_> {
    /// Types `text` as a user would.
    pub async fn type_text(&self, text: &str) {
        self.session
            .command(
                http::Method::POST,
                &format!("element/{}/value", self.id),
                Some(json!({ "text": text })),
            )
            .await;
    }

    pub async fn click(&self) {
        self.session
            .command(
                http::Method::POST,
                &format!("element/{}/click", self.id),
                Some(json!({})),
            )
            .await;
    }
}
