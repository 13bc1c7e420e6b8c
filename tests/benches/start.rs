//! Benchmark of an instance's start and memory at size: a real `dan run`
//! process whose data folder holds N records (`DAN_BENCH_RECORDS`, default
//! 100000, each ~300 bytes of content) in a network of one (min-members 1).
//!
//! It prints, for the instance that imported them and for the same data
//! folder started afresh: the time from `dan run` until it answers
//! `dan status` (key unlock, integrity check and replay included), and the
//! process's resident memory (`VmRSS`) and its peak (`VmHWM`); the time a
//! clean stop takes (it checks the database and writes the replica's
//! checkpoint); then the start of the same folder without the seal a clean
//! shutdown leaves (as after a crash: every signature and row checked).
//!
//! Run: `cargo bench -p dan-tests --bench start` (builds `dan` in release
//! first: `cargo build --release -p dan-cli`).

use std::time::Instant;

use dan_tests::process::Instance;

/// How long a stop may take (a clean stop checks every row).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Records per import file (one `dan record import` each).
const FILE_RECORDS: usize = 50_000;

/// `VmRSS` and `VmHWM` of process `pid`, in MiB.
fn memory_of(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/{pid}/status"))?;
        let value: f64 = line
            .trim_start_matches(key)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(value / 1024.0)
    };
    Ok((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// Prints what one running instance uses, under `label`.
fn report(instance: &Instance, label: &str, records: usize) -> anyhow::Result<()> {
    let pid = instance
        .pid()
        .ok_or_else(|| anyhow::anyhow!("the instance is not running"))?;
    let (rss, peak) = memory_of(pid)?;
    let status = instance.json(&["status"])?;
    println!(
        "{label}: {} ops held; resident memory {rss:.0} MiB (peak {peak:.0} MiB), {:.2} KiB per record",
        status["op_count"],
        rss * 1024.0 / records as f64
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let records: usize = std::env::var("DAN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut instance = Instance::with_network("start-bench", "Start bench", "1")?;
    let started = Instant::now();
    for first in (0..records).step_by(FILE_RECORDS) {
        let lines: String = (first..records.min(first + FILE_RECORDS))
            .map(|n| {
                format!(
                    "{{\"collection\":\"bench\",\"title\":\"record {n}\",\"fields\":{{\"body\":\"{}\"}}}}\n",
                    dan_tests::bench_text("Record", n)
                )
            })
            .collect();
        let file = instance.data_dir().join("import.jsonl");
        std::fs::write(&file, lines)?;
        instance.ok(&["record", "import", file.to_str().unwrap_or_default()])?;
    }
    println!("imported {records} records in {:.1?}", started.elapsed());
    report(&instance, "after the import", records)?;
    let started = Instant::now();
    instance.stop_within(STOP_WAIT)?;
    println!(
        "clean stop (the database checked against the replica, then sealed with its checkpoint): {:.2?}",
        started.elapsed()
    );

    let started = Instant::now();
    instance.start(&[])?;
    println!(
        "start of an instance holding {records} records, until it answers `dan status`: {:.2?}",
        started.elapsed()
    );
    report(&instance, "after a fresh start", records)?;
    instance.stop_within(STOP_WAIT)?;

    // As after a crash, or with a database changed since: no seal, so
    // every signature and every row is checked.
    std::fs::remove_file(instance.data_dir().join("clean-close.seal"))?;
    let started = Instant::now();
    instance.start(&[])?;
    println!(
        "start of the same instance without the clean-close seal (every signature and row checked): {:.2?}",
        started.elapsed()
    );
    instance.stop_within(STOP_WAIT)?;
    Ok(())
}
