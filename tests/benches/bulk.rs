//! Benchmark of a bulk write spreading through a small network, side by
//! side with Syncthing:
//!
//! 1. DAN: 10k records (~300 bytes of content each) imported on one of three
//!    in-process instances (real sockets on 127.0.0.1), until both others
//!    hold all of them;
//! 2. Syncthing (Debian's `syncthing`, if installed): the same 10k items as
//!    300-byte files written into one of three instances' shared folder
//!    (then a rescan asked for over its REST API), until both others hold
//!    all of them. Discovery, relays, NAT traversal, usage and crash
//!    reporting and upgrades are off; every address is 127.0.0.1.
//!
//! Run: `cargo bench -p dan-tests --bench bulk` (`DAN_BENCH_ITEMS` sets the
//! count, default 10000).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dan_node::api::PutRecord;
use dan_tests::nodes::{converged, eventually, spawn_network};

const SYNC: Duration = Duration::from_millis(500);
const WAIT: Duration = Duration::from_secs(600);

/// The content of item `n`: about 300 bytes, distinct per item.
fn content(n: usize) -> String {
    dan_tests::bench_text("Item", n)
}

async fn dan(count: usize) -> anyhow::Result<Duration> {
    let nodes = spawn_network(&["a", "b", "c"], 3, SYNC).await?;
    converged(&nodes, Duration::from_secs(120)).await?;
    let before = nodes[1].status().await.op_count;
    let puts: Vec<PutRecord> = (0..count)
        .map(|n| PutRecord {
            collection: Some("bulk".into()),
            title: Some(format!("item {n}")),
            fields: [(
                "body".to_owned(),
                Some(dan_core::FieldValue::Text(content(n))),
            )]
            .into(),
            ..PutRecord::default()
        })
        .collect();
    let started = Instant::now();
    nodes[0].node.import_records(puts).await?;
    let imported = started.elapsed();
    let target = before + count as u64;
    eventually(WAIT, "b and c to hold every record", || async {
        nodes[1].status().await.op_count >= target && nodes[2].status().await.op_count >= target
    })
    .await?;
    let elapsed = started.elapsed();
    println!(
        "DAN: {count} records imported on one of 3 instances in {imported:.2?}, on both others after {elapsed:.2?}"
    );
    for node in nodes {
        node.stop().await;
    }
    Ok(elapsed)
}

/// One Syncthing instance: its process, folder and REST address.
struct Syncthing {
    child: Child,
    folder: PathBuf,
    gui: String,
    api_key: String,
}

impl Drop for Syncthing {
    /// Asks Syncthing to shut down (its monitor process then exits with
    /// it); killed only if it cannot be asked.
    fn drop(&mut self) {
        if rest(&self.gui, &self.api_key, "POST", "/rest/system/shutdown").is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Replaces the text of element `tag` in `config`.
fn set(config: &mut String, tag: &str, value: &str) -> anyhow::Result<()> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = config
        .find(&open)
        .ok_or_else(|| anyhow::anyhow!("no <{tag}> in the generated config"))?
        + open.len();
    let end = start
        + config[start..]
            .find(&close)
            .ok_or_else(|| anyhow::anyhow!("no </{tag}>"))?;
    config.replace_range(start..end, value);
    Ok(())
}

/// A plain HTTP/1.0 request to a Syncthing REST endpoint; the body.
fn rest(gui: &str, api_key: &str, method: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(gui)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {gui}\r\nX-API-Key: {api_key}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP answer from {gui}"))?;
    anyhow::ensure!(head.contains(" 200 "), "{method} {path}: {head}");
    Ok(body.to_owned())
}

/// Files in `folder`, Syncthing's own marker and temporaries aside.
fn items_in(folder: &Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with(".st") && !name.starts_with("~syncthing~")
            })
            .count()
    })
}

fn start_syncthings(dir: &Path) -> anyhow::Result<Vec<Syncthing>> {
    let names = ["a", "b", "c"];
    let mut homes = Vec::new();
    for name in names {
        let home = dir.join(format!("{name}-home"));
        let out = Command::new("syncthing")
            .args(["generate", "--no-default-folder", "--skip-port-probing"])
            .arg(format!("--home={}", home.display()))
            .output()?;
        anyhow::ensure!(out.status.success(), "syncthing generate failed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let id = text
            .lines()
            .find_map(|l| l.split("Device ID: ").nth(1))
            .ok_or_else(|| anyhow::anyhow!("no device id in: {text}"))?
            .trim()
            .to_owned();
        homes.push((home, id, free_port()?, free_port()?));
    }
    let mut instances = Vec::new();
    for (home, _, listen, gui) in &homes {
        let folder = home.with_extension("folder");
        // The marker Syncthing looks for in a folder it shares.
        std::fs::create_dir_all(folder.join(".stfolder"))?;
        let path = home.join("config.xml");
        let mut config = std::fs::read_to_string(&path)?;
        set(
            &mut config,
            "listenAddress",
            &format!("tcp://127.0.0.1:{listen}"),
        )?;
        for (tag, value) in [
            ("globalAnnounceEnabled", "false"),
            ("localAnnounceEnabled", "false"),
            ("relaysEnabled", "false"),
            ("natEnabled", "false"),
            ("startBrowser", "false"),
            ("urAccepted", "-1"),
            ("autoUpgradeIntervalH", "0"),
            ("crashReportingEnabled", "false"),
            ("stunKeepaliveStartS", "0"),
        ] {
            set(&mut config, tag, value)?;
        }
        let default_gui = "<address>127.0.0.1:8384</address>";
        anyhow::ensure!(
            config.contains(default_gui),
            "no GUI address in the generated config"
        );
        config = config.replace(default_gui, &format!("<address>127.0.0.1:{gui}</address>"));
        let api_key = {
            let start = config.find("<apikey>").unwrap_or(0) + "<apikey>".len();
            let end = config[start..].find("</apikey>").unwrap_or(0) + start;
            config[start..end].to_owned()
        };
        // The other two devices, at their loopback addresses, and one folder
        // shared by all three.
        let mut extra = String::new();
        for (other, id, other_listen, _) in &homes {
            if other != home {
                extra += &format!(
                    "<device id=\"{id}\" name=\"{id}\" compression=\"metadata\" introducer=\"false\"><address>tcp://127.0.0.1:{other_listen}</address></device>\n"
                );
            }
        }
        extra += &format!(
            "<folder id=\"bulk\" label=\"bulk\" path=\"{}\" type=\"sendreceive\" rescanIntervalS=\"3600\" fsWatcherEnabled=\"false\" ignorePerms=\"false\" autoNormalize=\"true\">",
            folder.display()
        );
        for (_, id, _, _) in &homes {
            extra += &format!("<device id=\"{id}\"></device>");
        }
        extra += "</folder>\n";
        let end = config
            .rfind("</configuration>")
            .ok_or_else(|| anyhow::anyhow!("no </configuration>"))?;
        config.insert_str(end, &extra);
        std::fs::write(&path, config)?;
        let child = Command::new("syncthing")
            .args(["serve", "--no-browser", "--no-restart", "--no-upgrade"])
            .arg(format!("--home={}", home.display()))
            .env("STNOUPGRADE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        instances.push(Syncthing {
            child,
            folder,
            gui: format!("127.0.0.1:{gui}"),
            api_key,
        });
    }
    Ok(instances)
}

async fn syncthing(count: usize) -> anyhow::Result<Option<Duration>> {
    if Command::new("syncthing").arg("--version").output().is_err() {
        println!("Syncthing: not installed (apt install syncthing), no figure");
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let instances = start_syncthings(dir.path())?;
    eventually(WAIT, "the three Syncthings to connect", || async {
        instances.iter().all(|st| {
            rest(&st.gui, &st.api_key, "GET", "/rest/system/connections")
                .ok()
                .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
                .and_then(|v| {
                    v["connections"].as_object().map(|c| {
                        c.values()
                            .filter(|c| c["connected"].as_bool() == Some(true))
                            .count()
                    })
                })
                == Some(2)
        })
    })
    .await?;
    let started = Instant::now();
    for n in 0..count {
        std::fs::write(instances[0].folder.join(format!("item-{n}")), content(n))?;
    }
    let written = started.elapsed();
    rest(
        &instances[0].gui,
        &instances[0].api_key,
        "POST",
        "/rest/db/scan?folder=bulk",
    )?;
    eventually(
        WAIT,
        "the other two Syncthings to hold every item",
        || async {
            instances[1..]
                .iter()
                .all(|st| items_in(&st.folder) >= count)
        },
    )
    .await?;
    let elapsed = started.elapsed();
    println!(
        "Syncthing: {count} files of 300 bytes written on one of 3 instances in {written:.2?}, on both others after {elapsed:.2?}"
    );
    Ok(Some(elapsed))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let count = std::env::var("DAN_BENCH_ITEMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dan = dan(count).await?;
    let syncthing = syncthing(count).await?;
    match syncthing {
        Some(st) => println!(
            "side by side, {count} items to two other instances on loopback: DAN {dan:.2?}, Syncthing {st:.2?}"
        ),
        None => println!("{count} items to two other instances on loopback: DAN {dan:.2?}"),
    }
    Ok(())
}
