//! End-to-end tests of the real app window: the debug build of the desktop
//! app under Xvfb, driven through WebDriver (tauri-driver with
//! WebKitWebDriver), selecting elements by their accessible labels, next to
//! real headless `dan` instances. Screenshots of the main views go to
//! `docs/screenshots/`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dan_tests::{
    Instance, dan_bin, modified_copy, modified_copy_with, modified_dan_bin, wait_until,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const APP: &str = env!("CARGO_BIN_EXE_dan-desktop");
const PASSWORD: &str = "desktop admin password";

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process stopped with SIGTERM (tauri-driver must not be killed
/// hard, or WebKitWebDriver keeps its port).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A virtual X display, on a display number Xvfb itself found free (two
/// tests that picked one by looking at lock files could both take the same
/// display, and one's window got the other's close request).
fn start_xvfb() -> anyhow::Result<(Process, String)> {
    use std::io::BufRead;
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xvfb (package xvfb)")?;
    let stdout = child.stdout.take().context("Xvfb's output")?;
    let process = Process(child);
    // Xvfb writes the number once it accepts connections; read on a thread
    // so that an Xvfb that never does fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .context("Xvfb did not say which display it opened within 30 s")??;
    let number: u32 = line
        .trim()
        .parse()
        .with_context(|| format!("Xvfb said {line:?} instead of a display number"))?;
    Ok((process, format!(":{number}")))
}

/// tauri-driver on a free port, with the app's environment.
fn start_driver(display: &str) -> anyhow::Result<(Process, u16)> {
    start_driver_with(display, &[])
}

/// tauri-driver on a free port, with the app's environment plus `env`.
fn start_driver_with(display: &str, env: &[(&str, &Path)]) -> anyhow::Result<(Process, u16)> {
    let port = free_port()?;
    let native = free_port()?;
    let driver = std::env::var_os("TAURI_DRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tauri-driver")
        });
    let child = Command::new(&driver)
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", display)
        .env("DAN_NO_MDNS", "1")
        .env("DAN_NO_UPNP", "1")
        .env("DAN_LISTEN", "/ip4/127.0.0.1/tcp/0")
        .env("DAN_SYNC_INTERVAL", "1")
        // No session bus: the keyring is tested on its own (tests/keyring.rs).
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/dan-test-bus",
        )
        .env_remove("DAN_DATA_DIR")
        .env_remove("DAN_RELEASE_MANIFEST")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} (cargo install tauri-driver)", driver.display()))?;
    let process = Process(child);
    wait_until(Duration::from_secs(30), "tauri-driver to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok((process, port))
}

/// The app window on `data_dir`.
async fn open_app(port: u16, data_dir: &Path) -> anyhow::Result<Client> {
    open_build(port, Path::new(APP), data_dir).await
}

/// The window of the app executable `app` (another build) on `data_dir`.
async fn open_build(port: u16, app: &Path, data_dir: &Path) -> anyhow::Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert(
        "tauri:options".into(),
        json!({ "application": app, "args": ["--data-dir", data_dir.to_string_lossy()] }),
    );
    let mut builder = ClientBuilder::rustls()?;
    builder.capabilities(caps);
    let url = format!("http://127.0.0.1:{port}");
    let connect = builder.connect(&url);
    let client = tokio::time::timeout(Duration::from_secs(90), connect)
        .await
        .context("the app window did not open within 90 s")?
        .context("connecting to tauri-driver")?;
    Ok(client)
}

/// Closes the window and waits until the app has exited (its hand-over
/// socket no longer answers): a new start on the same data directory
/// would otherwise hand over to it and exit.
async fn close_app(client: Client, data_dir: &Path) -> anyhow::Result<()> {
    client.close().await?;
    let socket = data_dir.join("app.sock");
    wait_until(Duration::from_secs(30), "the app to exit", || {
        std::os::unix::net::UnixStream::connect(&socket).is_err()
    })
}

fn by_label(label: &str) -> String {
    format!("[aria-label=\"{label}\"]")
}

/// Clicks what `css` finds as a person would once nothing lies over it (a
/// toast may for a moment, and the page may draw the element again): while
/// WebDriver refuses the click, finds it again and tries again, for 10 s.
async fn click_when_free(client: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match find(client, css).await?.click().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                eprintln!("clicking {css} was refused ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("clicking {css}")),
        }
    }
}

async fn find(client: &Client, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
    match client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => Ok(element),
        Err(e) => {
            let body = client
                .find(Locator::Css("body"))
                .await?
                .text()
                .await
                .unwrap_or_default();
            if let Ok(png) = client.screenshot().await {
                let path = std::env::temp_dir().join("dan-e2e-failure.png");
                let _ = std::fs::write(&path, png);
            }
            bail!("waiting for {css}: {e}; the window shows:\n{body}")
        }
    }
}

/// The text of the element labelled `label` (retried: the page redraws).
async fn label_text(client: &Client, label: &str) -> anyhow::Result<String> {
    let mut last = None;
    for _ in 0..20 {
        match find(client, &by_label(label)).await?.text().await {
            Ok(text) => return Ok(text),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("reading {label}: {last:?}")
}

/// Opens a tab (retried: the page redraws).
async fn click_tab(client: &Client, name: &str) -> anyhow::Result<()> {
    let xpath = format!("//button[@role='tab' and normalize-space()='{name}']");
    for _ in 0..20 {
        if let Ok(tab) = client.find(Locator::XPath(&xpath)).await
            && scroll_into_view(client, &tab).await.is_ok()
            && tab.click().await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(std::env::temp_dir().join("dan-e2e-failure.png"), png);
    }
    bail!("could not open the {name} tab")
}

async fn button(client: &Client, text: &str) -> anyhow::Result<fantoccini::elements::Element> {
    let xpath = format!("//button[normalize-space()='{text}']");
    client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::XPath(&xpath))
        .await
        .with_context(|| format!("waiting for the button “{text}”"))
}

/// Clicks "New record" until its form is on screen: a click that lands
/// while the page redraws (a member joining, a record arriving) is lost.
async fn open_new_record(client: &Client) -> anyhow::Result<()> {
    let form = Locator::Css("[aria-label=\"Collection\"]");
    for _ in 0..20 {
        dismiss_toasts(client).await?;
        if let Ok(new) = button(client, "New record").await
            && scroll_into_view(client, &new).await.is_ok()
            && new.click().await.is_ok()
            && client
                .wait()
                .at_most(Duration::from_secs(3))
                .for_element(form)
                .await
                .is_ok()
        {
            return Ok(());
        }
    }
    find(client, &by_label("Collection")).await.map(drop)
}

async fn type_into(client: &Client, label: &str, text: &str) -> anyhow::Result<()> {
    type_into_css(client, &by_label(label), text).await
}

/// Types into the element `css` selects (retried: the page redraws).
async fn type_into_css(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..20 {
        dismiss_toasts(client).await?;
        let element = find(client, css).await?;
        scroll_into_view(client, &element).await?;
        match element.clear().await {
            Ok(()) => match element.send_keys(text).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(std::env::temp_dir().join("dan-e2e-failure.png"), png);
    }
    bail!("typing into {css}: {last:?}")
}

/// Pastes an invite link into the join form and waits until the preview
/// shown is that of this link (the form checks a link after typing stops).
async fn paste_invite(client: &Client, link: &str) -> anyhow::Result<()> {
    type_into(client, "Invite link", link).await?;
    find(client, "form[aria-label='Join network'][aria-busy='false']").await?;
    Ok(())
}

/// Waits until nothing matches `css` (it was removed from the page).
async fn gone(client: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.find_all(Locator::Css(css)).await?.is_empty() {
        if Instant::now() > deadline {
            bail!("{css} is still shown");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Waits until the page's text contains `text`.
async fn see(client: &Client, text: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let body = client
            .find(Locator::Css("body"))
            .await?
            .text()
            .await
            .unwrap_or_default();
        if body.contains(text) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("“{text}” did not appear; the window shows:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Scrolls the page so that `element` is in the middle of the window
/// (WebKitWebDriver does not scroll to what it types into).
async fn scroll_into_view(
    client: &Client,
    element: &fantoccini::elements::Element,
) -> anyhow::Result<()> {
    client
        .execute(
            "arguments[0].scrollIntoView({ block: 'center' })",
            vec![serde_json::to_value(element)?],
        )
        .await?;
    Ok(())
}

/// Clicks `element`, whose click hides the window, from the page itself a
/// moment after the WebDriver command returned: a WebDriver click answers
/// only once the page has settled, and a page whose window was hidden
/// meanwhile may never settle (the click then waited a minute, or for
/// ever: the tray test took about 100 s, and once hung).
async fn click_that_hides_the_window(
    client: &Client,
    element: &fantoccini::elements::Element,
) -> anyhow::Result<()> {
    client
        .execute(
            "const target = arguments[0]; setTimeout(() => target.click(), 100);",
            vec![serde_json::to_value(element)?],
        )
        .await?;
    Ok(())
}

/// Removes the notifications: they cover the view (and what a test types
/// into) for a few seconds.
async fn dismiss_toasts(client: &Client) -> anyhow::Result<()> {
    client
        .execute(
            "document.querySelectorAll('.toast').forEach((t) => t.remove())",
            Vec::new(),
        )
        .await?;
    Ok(())
}

async fn screenshot(client: &Client, name: &str) -> anyhow::Result<()> {
    dismiss_toasts(client).await?;
    let png = client.screenshot().await?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    Ok(())
}

/// First run: name the instance and set the admin password.
async fn first_run(client: &Client, name: &str) -> anyhow::Result<()> {
    type_into(client, "Instance name", name).await?;
    type_into(client, "Admin password", PASSWORD).await?;
    type_into(client, "Repeat the admin password", PASSWORD).await?;
    button(client, "Create this instance")
        .await?
        .click()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_app_first_run_join_edit_and_unapproved_builds_in_the_real_window()
-> anyhow::Result<()> {
    let (_xvfb, display) = start_xvfb()?;

    // 1. First run → create a network.
    {
        let (_driver, port) = start_driver(&display)?;
        let dir = tempfile::tempdir()?;
        let client = open_app(port, &dir.path().join("app")).await?;
        see(&client, "Welcome to DAN", Duration::from_secs(60)).await?;
        screenshot(&client, "first-run").await?;
        first_run(&client, "Founder laptop").await?;
        type_into(&client, "Network name", "Village archive").await?;
        button(&client, "Create network").await?.click().await?;
        see(&client, "needs 2 more instances", Duration::from_secs(60)).await?;
        assert_eq!(label_text(&client, "Network status").await?, "forming");
        client.close().await?;
    }

    // 2. Two headless instances form a network (approving the app's build).
    let app_hash = dan_node::hash_file(Path::new(APP))?.to_hex();
    let mut alice = Instance::init("alice")?;
    alice.start_networked(&[])?;
    alice.ok(&[
        "network",
        "create",
        "--name",
        "Commons",
        "--min-members",
        "2",
        "--approve-code-hash",
        &app_hash,
    ])?;
    let mut bob = Instance::init("bob")?;
    bob.start_networked(&[])?;
    bob.ok(&["join", &alice.invite(&[])?, "--no-wait"])?;
    wait_until(Duration::from_secs(30), "bob to be admitted", || {
        bob.json(&["status"]).is_ok_and(|s| s["state"] == "active")
    })?;
    let alices = alice.ok(&[
        "record",
        "put",
        "--collection",
        "books",
        "--title",
        "Alice's book",
        "--field",
        "pages:=120",
    ])?;
    bob.ok(&[
        "record",
        "put",
        "--collection",
        "books",
        "--title",
        "Bob's map",
    ])?;

    // 3. The app joins through an invite link, gets approved, sees the records.
    let (_driver, port) = start_driver(&display)?;
    let dir = tempfile::tempdir()?;
    let client = open_app(port, &dir.path().join("app")).await?;
    first_run(&client, "Desk laptop").await?;
    // The link is clicked while the app runs: the desktop starts the app
    // again with it, and that second start hands it to the running window.
    let link = alice.invite(&[])?;
    let mut second_start = Command::new(APP)
        .arg("--data-dir")
        .arg(dir.path().join("app"))
        .arg(&link)
        .env("DISPLAY", &display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut exit = None;
    let handed_over = wait_until(
        Duration::from_secs(20),
        "the second start to hand the link over and exit",
        || {
            exit = second_start.try_wait().ok().flatten();
            exit.is_some()
        },
    );
    if handed_over.is_err() {
        let _ = second_start.kill();
        let _ = second_start.wait();
    }
    handed_over?;
    assert!(exit.is_some_and(|e| e.success()), "second start: {exit:?}");
    see(&client, "Invited by: alice", Duration::from_secs(30)).await?;
    type_into(&client, "Your name as admin", "Dana").await?;
    button(&client, "Join network").await?.click().await?;
    see(
        &client,
        "Waiting for approval (1 of 2)",
        Duration::from_secs(60),
    )
    .await?;
    screenshot(&client, "waiting-for-approval").await?;
    let mut desk = None;
    wait_until(
        Duration::from_secs(30),
        "bob to see the app's request",
        || {
            desk = bob.json(&["members"]).ok().and_then(|rows| {
                let row = rows
                    .as_array()?
                    .iter()
                    .find(|r| r["name"] == "Desk laptop")?;
                row["peer_id"].as_str().map(str::to_owned)
            });
            desk.is_some()
        },
    )?;
    let desk = desk.context("the app's peer id")?;
    bob.ok(&["approve", &desk])?;
    find(&client, &by_label("Search records")).await?;
    find(&client, &by_label("Record Alice's book")).await?;
    find(&client, &by_label("Record Bob's map")).await?;
    screenshot(&client, "records").await?;

    // 4. Create and edit a record in the window; it arrives on alice.
    open_new_record(&client).await?;
    type_into(&client, "Collection", "books").await?;
    type_into(&client, "Title", "Written in the window").await?;
    button(&client, "Add field").await?.click().await?;
    type_into(&client, "Field 1 name", "shelf").await?;
    type_into(&client, "Field 1 value", "B7").await?;
    button(&client, "Create record").await?.click().await?;
    find(&client, &by_label("Record Written in the window")).await?;
    wait_until(
        Duration::from_secs(60),
        "alice to receive the record",
        || {
            alice
                .json(&["record", "list", "--search", "Written in the window"])
                .is_ok_and(|r| {
                    r.as_array()
                        .is_some_and(|a| a.len() == 1 && a[0]["fields"]["shelf"] == "B7")
                })
        },
    )?;
    button(&client, "Edit record").await?.click().await?;
    type_into(&client, "Title", "Edited in the window").await?;
    button(&client, "Save record").await?.click().await?;
    find(&client, &by_label("Record Edited in the window")).await?;
    wait_until(Duration::from_secs(60), "alice to receive the edit", || {
        alice
            .json(&["record", "list", "--search", "Edited in the window"])
            .is_ok_and(|r| r.as_array().is_some_and(|a| a.len() == 1))
    })?;
    screenshot(&client, "record-detail").await?;
    let _ = alices;

    // 4b. Delete it and undo; delete it again and restore it from the
    //     deleted records. Alice sees each step.
    let id = alice.json(&["record", "list", "--search", "Edited in the window"])?[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let alice_history_ends = |kinds: &[&str]| {
        alice.json(&["record", "history", &id]).is_ok_and(|h| {
            let all: Vec<&str> = h
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["kind"].as_str()).collect())
                .unwrap_or_default();
            all.ends_with(kinds)
        })
    };
    button(&client, "Delete record").await?.click().await?;
    button(&client, "Undo").await?.click().await?;
    see(
        &client,
        "“Edited in the window” restored.",
        Duration::from_secs(30),
    )
    .await?;
    wait_until(Duration::from_secs(60), "alice to see the undo", || {
        alice_history_ends(&["delete", "restore"])
    })?;
    find(&client, &by_label("Record Edited in the window")).await?;
    button(&client, "Delete record").await?.click().await?;
    wait_until(Duration::from_secs(60), "alice to see it deleted", || {
        alice_history_ends(&["delete", "restore", "delete"])
    })?;
    gone(&client, &by_label("Record Edited in the window")).await?;
    click_when_free(&client, &by_label("Show deleted records")).await?;
    find(&client, &by_label("Record Edited in the window"))
        .await?
        .click()
        .await?;
    button(&client, "Restore record").await?.click().await?;
    see(
        &client,
        "“Edited in the window” restored.",
        Duration::from_secs(30),
    )
    .await?;
    wait_until(Duration::from_secs(60), "alice to see it restored", || {
        alice_history_ends(&["delete", "restore", "delete", "restore"])
            && alice
                .json(&["record", "get", &id])
                .is_ok_and(|r| r["deleted"] == false && r["title"] == "Edited in the window")
    })?;
    screenshot(&client, "record-restored").await?;
    click_when_free(&client, &by_label("Show deleted records")).await?;

    // 4c. The history says what each change did; the first version comes
    //     back from it.
    see(
        &client,
        "title: “Written in the window” → “Edited in the window”",
        Duration::from_secs(10),
    )
    .await?;
    find(&client, &by_label("Restore version 1"))
        .await?
        .click()
        .await?;
    find(&client, &by_label("Record Written in the window")).await?;
    wait_until(
        Duration::from_secs(60),
        "alice to see the first version again",
        || {
            alice.json(&["record", "get", &id]).is_ok_and(|r| {
                r["title"] == "Written in the window" && r["fields"]["shelf"] == "B7"
            })
        },
    )?;
    screenshot(&client, "record-history").await?;

    // 4d. Import a spreadsheet's rows and export every record, through the
    //     desktop's own file dialogs; the imported records reach alice.
    let sheet = dir.path().join("shelf.csv");
    std::fs::write(
        &sheet,
        "collection,title,tags,pages:int\nbooks,Imported atlas,\"maps, old\",88\nbooks,Imported diary,,12\n",
    )?;
    button(&client, "Import…").await?.click().await?;
    type_in_file_dialog(
        &display,
        "Import records from",
        &sheet.to_string_lossy(),
        false,
    )?;
    see(&client, "Imported 2 records.", Duration::from_secs(30)).await?;
    find(&client, &by_label("Record Imported atlas")).await?;
    screenshot(&client, "records-imported").await?;
    wait_until(
        Duration::from_secs(60),
        "alice to receive the import",
        || {
            alice
                .json(&["record", "list", "--search", "Imported atlas"])
                .is_ok_and(|r| {
                    r.as_array().is_some_and(|a| {
                        a.len() == 1
                            && a[0]["fields"]["pages"] == 88
                            && a[0]["tags"] == json!(["maps", "old"])
                    })
                })
        },
    )?;
    let export = dir.path().join("everything.csv");
    button(&client, "Export…").await?.click().await?;
    type_in_file_dialog(
        &display,
        "Export every record to",
        &export.to_string_lossy(),
        true,
    )?;
    see(&client, "Exported 5 records to", Duration::from_secs(30)).await?;
    let exported = std::fs::read_to_string(&export)?;
    assert!(
        exported.starts_with("id,collection,title,tags,pages:int,shelf\n"),
        "{exported}"
    );
    assert_eq!(
        exported.lines().count(),
        6,
        "a header and five records:\n{exported}"
    );
    assert!(
        exported.contains("Imported atlas,\"maps, old\",88,"),
        "{exported}"
    );

    // 5. A member restarted on a build the network has not approved is shown
    //    with its version not approved, still a member (not deprecated).
    let (_keep, modified) = modified_dan_bin()?;
    bob.stop()?;
    bob.use_bin(modified);
    bob.start_networked(&[])?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        click_tab(&client, "Members").await?;
        if label_text(&client, "bob version")
            .await
            .is_ok_and(|t| t.contains("✗ not approved"))
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("bob's build was not shown as not approved");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(label_text(&client, "bob status").await?, "Member");
    screenshot(&client, "members-unapproved").await?;
    click_tab(&client, "Settings").await?;
    assert!(
        label_text(&client, "Version")
            .await?
            .starts_with("DAN 0.1.0 · desktop")
    );
    click_tab(&client, "Network").await?;
    see(&client, "Create invite link", Duration::from_secs(10)).await?;
    screenshot(&client, "network").await?;

    let app_dir = dir.path().join("app");
    close_app(client, &app_dir).await?;

    // 6. The app itself on a build the network has not approved: it says
    //    so and waits; nobody deprecates it; back on the approved build it
    //    is active again under the same peer id.
    let (_keep_app, modified_app) = modified_copy(Path::new(APP))?;
    let client = open_build(port, &modified_app, &app_dir).await?;
    unlock(&client).await?;
    wait_for_state(&client, "unapproved").await?;
    see(
        &client,
        "is not approved by Commons yet",
        Duration::from_secs(10),
    )
    .await?;
    screenshot(&client, "unapproved-version").await?;
    wait_until(
        Duration::from_secs(30),
        "alice to refuse the app's unapproved build",
        || {
            alice
                .peer_refusal(&desk)
                .is_some_and(|why| why.contains("has not approved yet"))
        },
    )?;
    assert_eq!(alice.member_status(&desk).as_deref(), Some("member"));
    assert_eq!(alice.json(&["evidence"])?, json!([]));
    close_app(client, &app_dir).await?;
    let client = open_app(port, &app_dir).await?;
    unlock(&client).await?;
    wait_for_state(&client, "active").await?;
    click_tab(&client, "Records").await?;
    find(&client, &by_label("Record Written in the window")).await?;

    client.close().await?;
    alice.stop()?;
    bob.stop()?;
    Ok(())
}

/// Waits until the header shows the network state `state`.
async fn wait_for_state(client: &Client, state: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let shown = label_text(client, "Network status").await?;
        if shown == state {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the app shows “{shown}”, not “{state}”");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Unlocks the instance on start (no OS keyring in this test).
async fn unlock(client: &Client) -> anyhow::Result<()> {
    type_into_css(
        client,
        "form[aria-label=\"Unlock\"] input[aria-label=\"Admin password\"]",
        PASSWORD,
    )
    .await?;
    find(
        client,
        "form[aria-label=\"Unlock\"] button[type=\"submit\"]",
    )
    .await?
    .click()
    .await?;
    Ok(())
}

/// The text in the form field the element `css` selects.
async fn value_of(client: &Client, css: &str) -> anyhow::Result<String> {
    let element = find(client, css).await?;
    Ok(element.prop("value").await?.unwrap_or_default())
}

/// Answers the admin password dialog if the action asked for it.
async fn admin_password_if_asked(client: &Client) -> anyhow::Result<()> {
    let dialog = "dialog[aria-label=\"Admin password\"] input[aria-label=\"Admin password\"]";
    for _ in 0..10 {
        if client.find(Locator::Css(dialog)).await.is_ok() {
            type_into_css(client, dialog, PASSWORD).await?;
            return Ok(find(
                client,
                "dialog[aria-label=\"Admin password\"] button[type=\"submit\"]",
            )
            .await?
            .click()
            .await?);
        }
        if client
            .find(Locator::Css("dialog[aria-label=\"Invite ready\"]"))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until the element labelled `label` shows text containing `text`.
async fn see_in(client: &Client, label: &str, text: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let shown = label_text(client, label).await?;
        if shown.contains(text) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{label} shows “{shown}”, not “{text}”");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_invite_made_in_the_window_stays_on_screen_and_a_second_window_joins_with_it()
-> anyhow::Result<()> {
    let (_xvfb, display) = start_xvfb()?;
    let dirs = tempfile::tempdir()?;

    // The founder creates the network and an invite, in the window only.
    let (_founder_driver, founder_port) = start_driver(&display)?;
    let founder = open_app(founder_port, &dirs.path().join("founder")).await?;
    see(&founder, "Welcome to DAN", Duration::from_secs(60)).await?;
    first_run(&founder, "Founder laptop").await?;
    type_into(&founder, "Network name", "Elm Street Library").await?;
    button(&founder, "Create network").await?.click().await?;
    see(&founder, "needs 2 more instances", Duration::from_secs(60)).await?;
    click_tab(&founder, "Network").await?;
    type_into(&founder, "For whom", "Bea").await?;
    button(&founder, "Create invite link")
        .await?
        .click()
        .await?;
    admin_password_if_asked(&founder).await?;
    let sheet = "dialog[aria-label=\"Invite ready\"]";
    let link = value_of(&founder, &format!("{sheet} [aria-label=\"Invite link\"]")).await?;
    assert!(link.starts_with("dan://join/"), "the sheet shows {link:?}");
    // It stays: still there, with the same link, after the app's status
    // polls (every 2 s) and the list refresh that used to redraw it away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        value_of(&founder, &format!("{sheet} [aria-label=\"Invite link\"]")).await?,
        link
    );
    find(
        &founder,
        &format!("{sheet} img[alt=\"QR code of the invite link\"]"),
    )
    .await?;
    assert!(
        label_text(&founder, "Invite expiry")
            .await?
            .contains("one instance can join")
    );
    screenshot(&founder, "invite-sheet").await?;
    let done = "//dialog[@aria-label='Invite ready']//button[normalize-space()='Done']";
    founder.find(Locator::XPath(done)).await?.click().await?;
    see_in(
        &founder,
        "Bea status",
        "Waiting to be used",
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(
        find(&founder, &by_label("Bea link"))
            .await?
            .prop("textContent")
            .await?
            .unwrap_or_default(),
        link
    );

    // A second person, on a second computer, pastes the link from the sheet.
    let (_joiner_driver, joiner_port) = start_driver(&display)?;
    let joiner = open_app(joiner_port, &dirs.path().join("joiner")).await?;
    first_run(&joiner, "Bea laptop").await?;
    paste_invite(&joiner, &link).await?;
    see(
        &joiner,
        "Invited by: Founder laptop",
        Duration::from_secs(30),
    )
    .await?;
    type_into(&joiner, "Your name as admin", "Bea").await?;
    button(&joiner, "Join network").await?.click().await?;
    admin_password_if_asked(&joiner).await?;
    see(&joiner, "needs 1 more instance", Duration::from_secs(90)).await?;

    // The founder's list says who used the invite.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        click_tab(&founder, "Network").await?;
        let shown = label_text(&founder, "Bea status").await?;
        if shown.contains("Used by Bea laptop (Bea, id …") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the founder's invite list shows “{shown}”");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    screenshot(&founder, "invites").await?;

    // The Network tab says in words whether others can reach this
    // instance, and a relay is set in the window (this one is not
    // running: no slot, and the window says so).
    let reach = label_text(&founder, "Reachability").await?;
    assert!(
        reach.contains("reach this one") || reach.contains("reach this instance"),
        "{reach}"
    );
    type_into(
        &founder,
        "Relay addresses",
        "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWB37ZW7cMZPedE7HuAYoHkMewt5TfPtqHgqs19yQ9cAa4",
    )
    .await?;
    click_admin(&founder, "//button[@aria-label='Save relays']").await?;
    see_in(
        &founder,
        "Relay state",
        "no slot yet",
        Duration::from_secs(30),
    )
    .await?;

    joiner.close().await?;
    founder.close().await?;
    Ok(())
}

/// Writes a release manifest listing `builds` (kind, version, executable).
fn write_manifest(path: &Path, builds: &[(&str, &str, &Path)]) -> anyhow::Result<()> {
    let builds: Vec<serde_json::Value> = builds
        .iter()
        .map(|(kind, version, exe)| {
            Ok(json!({
                "code_hash": dan_node::hash_file(exe)?.to_hex(),
                "version": version,
                "platform": dan_node::release::this_platform(),
                "kind": kind,
                "file": exe.file_name().map(|n| n.to_string_lossy().into_owned()),
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    let manifest = json!({ "product": "DAN", "version": "0.1.0", "builds": builds });
    std::fs::write(path, serde_json::to_string_pretty(&manifest)?)?;
    Ok(())
}

/// Creates an invite in the window for `whom` and returns the link read
/// from the invite sheet (then closes the sheet).
async fn invite_in_window(client: &Client, whom: &str) -> anyhow::Result<String> {
    click_tab(client, "Network").await?;
    type_into(client, "For whom", whom).await?;
    button(client, "Create invite link").await?.click().await?;
    admin_password_if_asked(client).await?;
    let link = value_of(
        client,
        "dialog[aria-label=\"Invite ready\"] [aria-label=\"Invite link\"]",
    )
    .await?;
    let done = "//dialog[@aria-label='Invite ready']//button[normalize-space()='Done']";
    client.find(Locator::XPath(done)).await?.click().await?;
    Ok(link)
}

/// Clicks the button `text` (retried: the page redraws), answering the admin
/// password dialog if it asks.
async fn click_admin(client: &Client, xpath: &str) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..50 {
        dismiss_toasts(client).await?;
        match client.find(Locator::XPath(xpath)).await {
            Ok(element) => {
                scroll_into_view(client, &element).await?;
                match element.click().await {
                    Ok(()) => return admin_password_if_asked(client).await,
                    Err(e) => last = Some(e.to_string()),
                }
            }
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("could not click {xpath}: {last:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_three_windows_on_three_builds_form_a_network_approving_a_version_in_the_window()
-> anyhow::Result<()> {
    let (_xvfb, display) = start_xvfb()?;
    let dirs = tempfile::tempdir()?;
    // One release of three builds: this desktop app, the headless `dan`,
    // and a second desktop build (another code hash). A fourth build, not
    // in the release, runs the third window.
    let (_keep_b, desktop_b) = modified_copy_with(Path::new(APP), b"build b")?;
    let (_keep_c, desktop_c) = modified_copy_with(Path::new(APP), b"build c")?;
    let manifest = dirs.path().join("dan-release.json");
    write_manifest(
        &manifest,
        &[
            ("desktop", "0.1.0", Path::new(APP)),
            ("headless", "0.1.0", &dan_bin()),
            ("desktop", "0.1.0-b", &desktop_b),
        ],
    )?;
    let release = [("DAN_RELEASE_MANIFEST", manifest.as_path())];

    // Ada founds the network in the window: it approves the whole release.
    let (_ada_driver, ada_port) = start_driver_with(&display, &release)?;
    let ada = open_app(ada_port, &dirs.path().join("ada")).await?;
    first_run(&ada, "Ada laptop").await?;
    type_into(&ada, "Network name", "Elm Street Library").await?;
    button(&ada, "Create network").await?.click().await?;
    see(&ada, "needs 2 more instances", Duration::from_secs(60)).await?;
    let link = invite_in_window(&ada, "Bea").await?;

    // Bea runs the release's other desktop build: told before joining that
    // it is approved, she joins with the link from Ada's sheet.
    let (_bea_driver, bea_port) = start_driver_with(&display, &release)?;
    let bea = open_build(bea_port, &desktop_b, &dirs.path().join("bea")).await?;
    first_run(&bea, "Bea laptop").await?;
    paste_invite(&bea, &link).await?;
    see_in(
        &bea,
        "Your version",
        "DAN 0.1.0-b · desktop",
        Duration::from_secs(30),
    )
    .await?;
    assert!(
        label_text(&bea, "Your version")
            .await?
            .contains("is approved by this network")
    );
    type_into(&bea, "Your name as admin", "Bea").await?;
    button(&bea, "Join network").await?.click().await?;
    admin_password_if_asked(&bea).await?;
    see(&bea, "needs 1 more instance", Duration::from_secs(90)).await?;
    click_tab(&ada, "Members").await?;
    see_in(
        &ada,
        "Bea laptop version",
        "DAN 0.1.0-b · desktop",
        Duration::from_secs(30),
    )
    .await?;
    assert!(
        label_text(&ada, "Bea laptop version")
            .await?
            .contains("✓ approved")
    );

    // Cleo runs a build the network has not approved: the preview says so
    // before she joins, and gives her the request to send.
    let (_cleo_driver, cleo_port) = start_driver(&display)?;
    let cleo = open_build(cleo_port, &desktop_c, &dirs.path().join("cleo")).await?;
    first_run(&cleo, "Cleo laptop").await?;
    paste_invite(&cleo, &invite_in_window(&ada, "Cleo").await?).await?;
    see_in(
        &cleo,
        "Your version",
        "has not approved your version",
        Duration::from_secs(30),
    )
    .await?;
    assert!(!button(&cleo, "Join network").await?.is_enabled().await?);
    let request = value_of(&cleo, &by_label("Approval request")).await?;
    screenshot(&cleo, "join-unapproved-version").await?;

    // Ada proposes approving Cleo's version from the window; Bea votes yes.
    click_tab(&ada, "Network").await?;
    type_into(&ada, "Build to approve", &request).await?;
    button(&ada, "Check").await?.click().await?;
    see_in(
        &ada,
        "Build 1 to approve",
        "✗ not approved",
        Duration::from_secs(10),
    )
    .await?;
    click_admin(&ada, "//button[normalize-space()='Propose approving']").await?;
    click_tab(&bea, "Members").await?;
    see(
        &bea,
        "alongside the versions approved now",
        Duration::from_secs(60),
    )
    .await?;
    screenshot(&bea, "proposal-new-version").await?;
    click_admin(&bea, "//li[contains(., 'alongside the versions approved now')]//button[normalize-space()='Vote yes']").await?;

    // With the vote passed, Cleo joins with a new invite; Bea approves her.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let link = invite_in_window(&ada, "Cleo again").await?;
        paste_invite(&cleo, &link).await?;
        see(&cleo, "Invited by: Ada laptop", Duration::from_secs(30)).await?;
        if label_text(&cleo, "Your version")
            .await?
            .contains("is approved by this network")
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the new invite still does not approve Cleo's build");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    type_into(&cleo, "Your name as admin", "Cleo").await?;
    button(&cleo, "Join network").await?.click().await?;
    admin_password_if_asked(&cleo).await?;
    see(
        &cleo,
        "Waiting for approval (1 of 2)",
        Duration::from_secs(60),
    )
    .await?;
    // Bea's Members tab says that a decision waits for her; she compares
    // the join code on Cleo's screen with hers, then approves.
    find(&bea, "button[role='tab'][data-tab='Members'][data-count]").await?;
    let code = label_text(&cleo, "Your join code").await?;
    screenshot(&cleo, "waiting-join-code").await?;
    click_tab(&bea, "Members").await?;
    assert_eq!(label_text(&bea, "Cleo laptop join code").await?, code);
    click_admin(&bea, "//button[@aria-label='Approve Cleo laptop']").await?;
    assert_eq!(label_text(&bea, "Join code to compare").await?, code);
    screenshot(&bea, "approve-join-code").await?;
    click_admin(&bea, "//button[normalize-space()='Codes match — approve']").await?;
    wait_for_state(&cleo, "active").await?;

    // Bea starts a record and is half way through when Cleo's record
    // arrives: her list takes it in, her form stays as she left it.
    click_tab(&bea, "Records").await?;
    open_new_record(&bea).await?;
    type_into(&bea, "Collection", "books").await?;
    type_into(&bea, "Title", "Written by Be").await?;

    // A record written in Cleo's window reaches Ada's and Bea's.
    open_new_record(&cleo).await?;
    type_into(&cleo, "Collection", "books").await?;
    type_into(&cleo, "Title", "Written by Cleo").await?;
    button(&cleo, "Add field").await?.click().await?;
    type_into(&cleo, "Field 1 name", "shelf").await?;
    type_into(&cleo, "Field 1 value", "B7").await?;
    button(&cleo, "Create record").await?.click().await?;
    click_tab(&ada, "Records").await?;
    find(&ada, &by_label("Record Written by Cleo")).await?;
    find(&bea, &by_label("Record Written by Cleo")).await?;
    assert_eq!(
        value_of(&bea, &by_label("Title")).await?,
        "Written by Be",
        "a record arriving left Bea's half-typed form alone"
    );
    type_into(&bea, "Title", "Written by Bea").await?;
    button(&bea, "Create record").await?.click().await?;
    for window in [&ada, &cleo] {
        find(window, &by_label("Record Written by Bea")).await?;
    }

    // Ada deletes Bea's record: it goes from Bea's list; Ada restores it
    // from the deleted records, and it is back in Bea's.
    click_label(&ada, "Record Written by Bea").await?;
    button(&ada, "Delete record").await?.click().await?;
    gone(&bea, &by_label("Record Written by Bea")).await?;
    click_when_free(&ada, &by_label("Show deleted records")).await?;
    click_label(&ada, "Record Written by Bea").await?;
    button(&ada, "Restore record").await?.click().await?;
    see(&ada, "“Written by Bea” restored.", Duration::from_secs(30)).await?;
    click_when_free(&ada, &by_label("Show deleted records")).await?;
    find(&bea, &by_label("Record Written by Bea")).await?;

    // Two people edit one record at once. Ada changes the title while
    // Cleo changes the shelf: both changes are kept (an edit sends only
    // what it changed).
    open_editor(&ada, "Written by Cleo").await?;
    type_into(&ada, "Title", "Edited by Ada").await?;
    open_editor(&cleo, "Written by Cleo").await?;
    type_into(&cleo, "Field 1 value", "C3").await?;
    button(&cleo, "Save record").await?.click().await?;
    button(&ada, "Save record").await?.click().await?;
    for window in [&ada, &cleo] {
        click_label(window, "Record Edited by Ada").await?;
        see(window, "C3", Duration::from_secs(60)).await?;
    }
    // Both change the shelf: Ada is told what Cleo did and chooses.
    open_editor(&ada, "Edited by Ada").await?;
    type_into(&ada, "Field 1 value", "D4").await?;
    open_editor(&cleo, "Edited by Ada").await?;
    type_into(&cleo, "Title", "Cleo's title").await?;
    type_into(&cleo, "Field 1 value", "E5").await?;
    button(&cleo, "Save record").await?.click().await?;
    find(&ada, &by_label("Record Cleo's title")).await?;
    button(&ada, "Save record").await?.click().await?;
    see_in(
        &ada,
        "Changed meanwhile",
        "now “E5”; yours “D4”",
        Duration::from_secs(30),
    )
    .await?;
    screenshot(&ada, "edit-conflict").await?;
    button(&ada, "Keep mine").await?.click().await?;
    for window in [&ada, &cleo] {
        click_label(window, "Record Cleo's title").await?;
        see(window, "D4", Duration::from_secs(60)).await?;
    }
    click_tab(&ada, "Members").await?;
    see_in(
        &ada,
        "Cleo laptop version",
        "✓ approved",
        Duration::from_secs(30),
    )
    .await?;
    screenshot(&ada, "members-versions").await?;

    cleo.close().await?;
    bea.close().await?;
    ada.close().await?;
    Ok(())
}

/// Selects the record titled `title` and opens its editor (retried: the
/// list redraws as records arrive).
async fn open_editor(client: &Client, title: &str) -> anyhow::Result<()> {
    click_tab(client, "Records").await?;
    for _ in 0..20 {
        if let Ok(row) = client
            .find(Locator::Css(&by_label(&format!("Record {title}"))))
            .await
            && row.click().await.is_ok()
            && let Ok(edit) = button(client, "Edit record").await
            && edit.click().await.is_ok()
        {
            find(client, "form[aria-label=\"Edit record\"]").await?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("could not open the editor of “{title}”")
}

/// Clicks the element labelled `label` (retried: lists redraw as records
/// arrive, which replaces their rows).
async fn click_label(client: &Client, label: &str) -> anyhow::Result<()> {
    find(client, &by_label(label)).await?;
    for _ in 0..20 {
        if let Ok(element) = client.find(Locator::Css(&by_label(label))).await
            && element.click().await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("could not click {label}")
}

/// What a desktop session has besides the display: a D-Bus session bus
/// and a notification server (dunst), stopped on drop.
struct Desktop {
    _bus: Process,
    _dunst: Process,
    address: String,
    _dir: tempfile::TempDir,
    /// Where the tray menu was found on the bus (it stays there while the
    /// app runs; finding it means asking names that may never answer).
    tray: std::cell::RefCell<Option<(String, String)>>,
}

impl Desktop {
    fn start(display: &str) -> anyhow::Result<Desktop> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("bus");
        let address = format!("unix:path={}", socket.display());
        let bus = Process(
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--address", &address])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting dbus-daemon (package dbus)")?,
        );
        wait_until(Duration::from_secs(10), "the session bus", || {
            socket.exists()
        })?;
        // Notifications go to the history after a second, where the test
        // reads them.
        let config = dir.path().join("dunstrc");
        std::fs::write(
            &config,
            "[urgency_low]\ntimeout = 1\n[urgency_normal]\ntimeout = 1\n[urgency_critical]\ntimeout = 1\n",
        )?;
        let dunst = Process(
            Command::new("dunst")
                .arg("-config")
                .arg(&config)
                .env("DISPLAY", display)
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting dunst (package dunst)")?,
        );
        let desktop = Desktop {
            _bus: bus,
            _dunst: dunst,
            address,
            _dir: dir,
            tray: std::cell::RefCell::new(None),
        };
        wait_until(Duration::from_secs(10), "the notification server", || {
            desktop.dunstctl(&["is-paused"]).is_ok()
        })?;
        Ok(desktop)
    }

    /// Runs `program` (a client of the session bus) and returns its output.
    fn on_bus(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(program)
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .with_context(|| format!("running {program}"))?;
        if !output.status.success() {
            bail!(
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn dunstctl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.on_bus("dunstctl", args)
    }

    /// The titles and texts of the notifications shown so far.
    fn notifications(&self) -> Vec<(String, String)> {
        let Ok(history) = self.dunstctl(&["history"]) else {
            return Vec::new();
        };
        let Ok(history) = serde_json::from_str::<serde_json::Value>(&history) else {
            return Vec::new();
        };
        history["data"][0]
            .as_array()
            .map(|shown| {
                shown
                    .iter()
                    .map(|n| {
                        let text =
                            |field: &str| n[field]["data"].as_str().unwrap_or_default().to_owned();
                        (text("summary"), text("body"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn gdbus(&self, args: &[&str]) -> anyhow::Result<String> {
        self.on_bus("gdbus", args)
    }

    /// Where a tray icon's menu is on the session bus (a StatusNotifierItem
    /// exported by libayatana-appindicator): the bus name and object path.
    fn tray_menu_path(&self) -> Option<(String, String)> {
        if let Some(found) = self.tray.borrow().clone() {
            return Some(found);
        }
        let found = self.find_tray_menu();
        self.tray.replace(found.clone());
        found
    }

    fn find_tray_menu(&self) -> Option<(String, String)> {
        const ITEMS: &str = "/org/ayatana/NotificationItem";
        let names = self
            .gdbus(&[
                "call",
                "--session",
                "--dest",
                "org.freedesktop.DBus",
                "--object-path",
                "/org/freedesktop/DBus",
                "--method",
                "org.freedesktop.DBus.ListNames",
            ])
            .ok()?;
        names
            .split('\'')
            .filter(|n| n.starts_with(':'))
            // Only the app's own connections (the bus itself says whose a
            // name is, at once): asking every name took seconds each for
            // names that never answer, and the test about 100 s.
            .filter(|name| self.owned_by_the_app(name))
            .find_map(|name| {
                let tree = self
                    .gdbus(&[
                        "call",
                        "--session",
                        "--timeout",
                        "1",
                        "--dest",
                        name,
                        "--object-path",
                        ITEMS,
                        "--method",
                        "org.freedesktop.DBus.Introspectable.Introspect",
                    ])
                    .ok()?;
                let item = tree.split("<node name=\"").nth(1)?.split('"').next()?;
                Some((name.to_owned(), format!("{ITEMS}/{item}/Menu")))
            })
    }

    /// Whether the bus name `name` belongs to a DAN desktop app process.
    fn owned_by_the_app(&self, name: &str) -> bool {
        let Ok(answer) = self.gdbus(&[
            "call",
            "--session",
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            name,
        ]) else {
            return false;
        };
        // `(uint32 1234,)`
        let pid: String = answer
            .split("uint32 ")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("dan-desktop"))
    }

    /// The tray menu's items: id and label.
    fn tray_menu(&self) -> Vec<(String, String)> {
        let Some((name, path)) = self.tray_menu_path() else {
            return Vec::new();
        };
        let Ok(layout) = self.gdbus(&[
            "call",
            "--session",
            "--dest",
            &name,
            "--object-path",
            &path,
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            "--",
            "0",
            "-1",
            "[]",
        ]) else {
            // The app has gone (or never was there): look again next time.
            self.tray.replace(None);
            return Vec::new();
        };
        // `<(3, {'label': <'Open DAN'>, ...}, [])>` for every item.
        layout
            .split("<(")
            .skip(1)
            .filter_map(|item| {
                let (id, rest) = item.split_once(',')?;
                let label = rest.split("'label': <'").nth(1)?.split("'>").next()?;
                Some((id.trim().to_owned(), label.to_owned()))
            })
            .collect()
    }

    /// Clicks the tray menu item labelled `label`, as a panel does.
    fn click_tray_item(&self, label: &str) -> anyhow::Result<()> {
        let (name, path) = self.tray_menu_path().context("no tray icon on the bus")?;
        let (id, _) = self
            .tray_menu()
            .into_iter()
            .find(|(_, l)| l == label)
            .with_context(|| format!("no tray menu item {label:?}"))?;
        self.gdbus(&[
            "call",
            "--session",
            "--dest",
            &name,
            "--object-path",
            &path,
            "--method",
            "com.canonical.dbusmenu.Event",
            "--",
            &id,
            "clicked",
            "<0>",
            "0",
        ])?;
        Ok(())
    }
}

/// Types `text` into the desktop's own file dialog titled `title` on
/// `display`, as a person would, then Enter: the keys go through XTest to
/// the dialog, focused first (there is no window manager under Xvfb). An
/// Open dialog gets Ctrl+L first (the location bar), a Save dialog Ctrl+A
/// (to replace the suggested name).
fn type_in_file_dialog(display: &str, title: &str, text: &str, save: bool) -> anyhow::Result<()> {
    const SCRIPT: &str = r#"
import sys, time
import Xlib.display, Xlib.X, Xlib.XK
from Xlib.ext import xtest
d = Xlib.display.Display(sys.argv[1])
title, text, save = sys.argv[2], sys.argv[3], sys.argv[4] == "save"
net_name = d.intern_atom("_NET_WM_NAME")
def windows(w):
    for child in w.query_tree().children:
        yield child
        yield from windows(child)
def name(w):
    full = w.get_full_property(net_name, 0)
    if full is not None:
        value = full.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return str(w.get_wm_name() or "")
deadline = time.time() + 20
dialog = None
while dialog is None and time.time() < deadline:
    for w in windows(d.screen().root):
        if name(w) == title and w.get_attributes().map_state == Xlib.X.IsViewable:
            dialog = w
            break
    else:
        time.sleep(0.2)
if dialog is None:
    sys.exit("no dialog titled " + title)
dialog.set_input_focus(Xlib.X.RevertToParent, Xlib.X.CurrentTime)
d.sync()
time.sleep(0.5)
shift = d.keysym_to_keycode(Xlib.XK.string_to_keysym("Shift_L"))
control = d.keysym_to_keycode(Xlib.XK.string_to_keysym("Control_L"))
names = {"/": "slash", ".": "period", "-": "minus", "_": "underscore", " ": "space"}
def key(keysym_name, with_control=False):
    keysym = Xlib.XK.string_to_keysym(keysym_name)
    code = d.keysym_to_keycode(keysym)
    shifted = d.keycode_to_keysym(code, 0) != keysym
    if with_control:
        xtest.fake_input(d, Xlib.X.KeyPress, control)
    if shifted:
        xtest.fake_input(d, Xlib.X.KeyPress, shift)
    xtest.fake_input(d, Xlib.X.KeyPress, code)
    xtest.fake_input(d, Xlib.X.KeyRelease, code)
    if shifted:
        xtest.fake_input(d, Xlib.X.KeyRelease, shift)
    if with_control:
        xtest.fake_input(d, Xlib.X.KeyRelease, control)
    d.sync()
    time.sleep(0.02)
key("a" if save else "l", with_control=True)
time.sleep(0.3)
for c in text:
    key(names.get(c, c))
time.sleep(0.3)
key("Return")
print("done")
"#;
    let output = Command::new("/usr/bin/python3")
        .args([
            "-c",
            SCRIPT,
            display,
            title,
            text,
            if save { "save" } else { "open" },
        ])
        .output()
        .context("running python3 (package python3-xlib)")?;
    if !String::from_utf8_lossy(&output.stdout).contains("done") {
        bail!(
            "typing into the dialog {title:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Whether a window titled `title` is on screen (mapped) on `display`.
fn window_shown(display: &str, title: &str) -> bool {
    x_window(display, title, "shown").is_ok()
}

/// Asks the window titled `title` on `display` to close, as a window
/// manager does when its close button is clicked (WM_DELETE_WINDOW).
fn ask_window_to_close(display: &str, title: &str) -> anyhow::Result<()> {
    x_window(display, title, "close")
}

/// Does `action` to the app window titled `title` on `display`, as a window
/// manager would: `close` asks it to close (WM_DELETE_WINDOW); `shown`
/// succeeds only if it is mapped.
fn x_window(display: &str, title: &str, action: &str) -> anyhow::Result<()> {
    const SCRIPT: &str = r#"
import sys
import Xlib.display, Xlib.X, Xlib.protocol.event
d = Xlib.display.Display(sys.argv[1])
protocols = d.intern_atom("WM_PROTOCOLS")
delete = d.intern_atom("WM_DELETE_WINDOW")
def windows(w):
    for child in w.query_tree().children:
        yield child
        yield from windows(child)
net_name = d.intern_atom("_NET_WM_NAME")
def title(w):
    full = w.get_full_property(net_name, 0)
    if full is not None:
        value = full.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return str(w.get_wm_name() or "")
for w in windows(d.screen().root):
    if sys.argv[2] in title(w) and delete in (w.get_wm_protocols() or []):
        if sys.argv[3] == "close":
            event = Xlib.protocol.event.ClientMessage(window=w, client_type=protocols, data=(32, [delete, Xlib.X.CurrentTime, 0, 0, 0]))
            w.send_event(event, event_mask=Xlib.X.NoEventMask)
            d.flush()
            print("done")
            break
        if w.get_attributes().map_state == Xlib.X.IsViewable:
            print("done")
            break
else:
    print([title(w) for w in windows(d.screen().root)], file=sys.stderr)
"#;
    let output = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, display, title, action])
        .output()
        .context("running python3 (package python3-xlib)")?;
    if !String::from_utf8_lossy(&output.stdout).contains("done") {
        bail!(
            "no window titled {title:?} to {action}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_closed_window_keeps_running_starts_at_log_in_notifies_a_join_request_and_comes_back_from_the_tray()
-> anyhow::Result<()> {
    let (_xvfb, display) = start_xvfb()?;
    let desktop = Desktop::start(&display)?;
    let dirs = tempfile::tempdir()?;
    let home = dirs.path().join("home");
    std::fs::create_dir_all(&home)?;
    let bus = PathBuf::from(&desktop.address);
    // One release of the desktop app and the headless `dan`: Bea joins
    // with the latter.
    let manifest = dirs.path().join("dan-release.json");
    write_manifest(
        &manifest,
        &[
            ("desktop", "0.1.0", Path::new(APP)),
            ("headless", "0.1.0", &dan_bin()),
        ],
    )?;
    let (_driver, port) = start_driver_with(
        &display,
        &[
            ("HOME", home.as_path()),
            ("DBUS_SESSION_BUS_ADDRESS", bus.as_path()),
            ("DAN_RELEASE_MANIFEST", manifest.as_path()),
        ],
    )?;
    let ada = open_app(port, &dirs.path().join("ada")).await?;
    first_run(&ada, "Ada laptop").await?;
    type_into(&ada, "Network name", "Elm Street Library").await?;
    button(&ada, "Create network").await?.click().await?;
    see(&ada, "needs 2 more instances", Duration::from_secs(60)).await?;

    // "Start DAN when I log in": the desktop's autostart entry starts it in
    // the background.
    click_tab(&ada, "Settings").await?;
    let start_at_log_in = find(&ada, &by_label("Start DAN when I log in")).await?;
    scroll_into_view(&ada, &start_at_log_in).await?;
    start_at_log_in.click().await?;
    let entry = home.join(".config/autostart/DAN.desktop");
    wait_until(Duration::from_secs(10), "the autostart entry", || {
        entry.exists()
    })?;
    let written = std::fs::read_to_string(&entry)?;
    let ada_dir = dirs.path().join("ada");
    assert!(
        written.contains(&format!(
            "Exec={} --background --data-dir {}",
            APP,
            ada_dir.display()
        )),
        "started at log-in, this DAN opens its own data folder in the background: {written}"
    );
    let link = invite_in_window(&ada, "Bea").await?;

    // Closing the window keeps DAN running in the background.
    ask_window_to_close(&display, "DAN")?;
    if see(&ada, "Keep DAN running?", Duration::from_secs(10))
        .await
        .is_err()
    {
        // Seen twice in full runs (never alone): the request went
        // unanswered. A person clicks again; if the window had asked and
        // the page lost the question, this second close quits DAN and the
        // test fails below.
        eprintln!(
            "the window did not answer the first close request within 10 s (window shown: {}); asking again",
            window_shown(&display, "DAN")
        );
        ask_window_to_close(&display, "DAN")?;
        see(&ada, "Keep DAN running?", Duration::from_secs(10)).await?;
    }
    let keep = button(&ada, "Keep running in the background").await?;
    click_that_hides_the_window(&ada, &keep).await?;
    wait_until(Duration::from_secs(10), "the window to go", || {
        !window_shown(&display, "DAN")
    })?;

    // While the window is away, Bea joins with Ada's invite, and Carol
    // asks to join with Bea's: she waits for Ada, and a notification says
    // so.
    let mut bea = Instance::init("bea laptop")?;
    bea.start(&[])?;
    bea.ok(&["join", &link, "--admin", "Bea"])?;
    let mut carol = Instance::init("carol laptop")?;
    carol.start(&[])?;
    carol.ok(&["join", &bea.invite(&[])?, "--admin", "Carol", "--no-wait"])?;
    wait_until(
        Duration::from_secs(60),
        "a notification of Carol's join request",
        || {
            desktop
                .notifications()
                .iter()
                .any(|(title, body)| title == "Carol asks to join" && body.contains("carol laptop"))
        },
    )?;

    // The tray icon says what waits, and opens the window.
    wait_until(
        Duration::from_secs(20),
        "the tray to say a request waits",
        || {
            desktop
                .tray_menu()
                .iter()
                .any(|(_, label)| label == "DAN: 1 request to join")
        },
    )?;
    let labels: Vec<String> = desktop.tray_menu().into_iter().map(|(_, l)| l).collect();
    assert!(
        labels.contains(&"Open DAN".to_owned()) && labels.contains(&"Quit DAN".to_owned()),
        "{labels:?}"
    );
    desktop.click_tray_item("Open DAN")?;
    wait_until(Duration::from_secs(10), "the window to come back", || {
        window_shown(&display, "DAN")
    })?;

    // Unticked, the entry is gone.
    click_tab(&ada, "Settings").await?;
    let start_at_log_in = find(&ada, &by_label("Start DAN when I log in")).await?;
    scroll_into_view(&ada, &start_at_log_in).await?;
    start_at_log_in.click().await?;
    wait_until(Duration::from_secs(10), "the autostart entry to go", || {
        !entry.exists()
    })?;
    drop(carol);
    drop(bea);
    // Quit from the tray: the instance stops, the window and the tray go.
    // The WebDriver session is not closed: closing it waits, without end,
    // for an app that already quit; the driver and display are stopped
    // with the test.
    desktop.click_tray_item("Quit DAN")?;
    wait_until(Duration::from_secs(20), "DAN to quit", || {
        !window_shown(&display, "DAN") && desktop.tray_menu().is_empty()
    })?;
    std::mem::forget(ada);
    Ok(())
}
