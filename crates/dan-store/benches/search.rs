//! Benchmark: what the record list asks the store at each keystroke of a
//! search (the first page of 200 matches, newest first, and how many match
//! in all) over 100k records of ~300 bytes in a real SQLite file.
//!
//! Run: `cargo bench -p dan-store --bench search` (set `DAN_BENCH_RECORDS`
//! to change the number of records, default 100000). The window adds its
//! own drawing of the page on top of these figures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dan_core::{FieldValue, Hash32, Keypair, RecordId, RecordView};
use dan_store::{RecordQuery, Store};

/// Words titles and notes are made of, so that searches match some
/// records and not others.
const WORDS: &[&str] = &[
    "harbour", "lantern", "meadow", "cobalt", "saffron", "granite", "willow", "ember", "quarry",
    "thistle", "orchard", "beacon", "marble", "juniper", "falcon", "tundra",
];

fn record(n: usize, origin: &Keypair) -> RecordView {
    let word = |k: usize| WORDS[(n * 7 + k * 13) % WORDS.len()];
    RecordView {
        id: RecordId::derive(&origin.public(), n as u64 + 1, &[0; 16]),
        collection: "books".into(),
        title: format!("The {} of the {} {n}", word(0), word(1)),
        fields: BTreeMap::from([
            (
                "author".to_owned(),
                FieldValue::Text(format!("{} {}", word(2), word(3))),
            ),
            (
                "note".to_owned(),
                FieldValue::Text(format!("{} {} {} ", word(4), word(5), word(6)).repeat(10)),
            ),
            ("pages".to_owned(), FieldValue::Int((n % 900) as i64 + 50)),
        ]),
        tags: BTreeSet::from([word(7).to_owned()]),
        deleted: false,
        created_at: 1_700_000_000_000 + n as u64,
        updated_at: 1_700_000_000_000 + n as u64,
        origin: origin.public(),
        version: Hash32::of(&n.to_le_bytes()),
    }
}

/// One keystroke: the page and the count as the window asks them
/// (`Store::record_page`: the page, then the count unless the page held
/// every match), or both always, one after the other.
async fn keystroke(store: &Store, text: &str, as_the_window: bool) -> (Duration, usize, u64) {
    let query = RecordQuery {
        search: Some(text.to_owned()),
        limit: 200,
        ..RecordQuery::default()
    };
    let started = Instant::now();
    let (page, total) = if as_the_window {
        store.record_page(&query).await.expect("page")
    } else {
        let page = store.records(&query).await.expect("records");
        (page, store.count_records(&query).await.expect("count"))
    };
    (started.elapsed(), page.len(), total)
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("DAN_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("dan.db"))
        .await
        .expect("store");
    let origin = Keypair::from_secret([7; 32]);
    let records: Vec<RecordView> = (0..count).map(|n| record(n, &origin)).collect();
    store.rematerialize(&records).await.expect("records stored");
    drop(records);
    println!("search as you type over {count} records (first page of 200 and the count)");
    // Warm the page cache as a list shown before the search would.
    keystroke(&store, "", true).await;
    for (as_the_window, how) in [
        (false, "always both, one after the other"),
        (
            true,
            "as the window asks (the count only when the page is full)",
        ),
    ] {
        let mut all = Vec::new();
        println!("page and count {how}:");
        for word in ["harbour", "juniper", "zebra"] {
            let mut line = Vec::new();
            for end in 1..=word.len() {
                let typed = &word[..end];
                let (took, shown, total) = keystroke(&store, typed, as_the_window).await;
                all.push(took);
                line.push(format!(
                    "{typed}: {:.1} ms ({shown} of {total})",
                    took.as_secs_f64() * 1e3
                ));
            }
            println!("  {}", line.join(", "));
        }
        all.sort();
        let median = all[all.len() / 2];
        let worst = all[all.len() - 1];
        println!(
            "  per keystroke: median {:.1} ms, worst {:.1} ms",
            median.as_secs_f64() * 1e3,
            worst.as_secs_f64() * 1e3
        );
    }
    store.close().await;
}
