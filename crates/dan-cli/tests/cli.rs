//! The `dan` command-line contract: command names, flags, JSON fields,
//! errors on stderr with a non-zero exit code, and bad input changing nothing.

use std::time::Instant;

use dan_tests::{Instance, PASSWORD};
use serde_json::Value;

fn running(name: &str, min_members: &str) -> anyhow::Result<Instance> {
    Instance::with_network(name, "Contract", min_members)
}

fn assert_fields(value: &Value, fields: &[&str]) {
    for field in fields {
        assert!(value.get(*field).is_some(), "missing `{field}` in {value}");
    }
}

#[test]
fn status_json_has_the_contract_fields_before_and_after_a_network_exists() -> anyhow::Result<()> {
    let mut instance = Instance::init("alice")?;
    instance.start(&[])?;
    let fields = [
        "peer_id",
        "name",
        "network_id",
        "state",
        "op_count",
        "ops_root",
        "state_root",
        "code_hash",
        "charter_hash",
    ];
    let before = instance.json(&["status"])?;
    assert_fields(&before, &fields);
    assert_eq!(before["state"], "none");
    assert_eq!(before["network_id"], Value::Null);
    assert_eq!(before["name"], "alice");
    assert!(
        before["peer_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("12D3KooW"))
    );

    instance.ok(&["network", "create", "--name", "Contract"])?;
    let forming = instance.json(&["status"])?;
    assert_fields(&forming, &fields);
    assert_eq!(forming["state"], "forming");
    assert_eq!(forming["network_name"], "Contract");
    assert_eq!(forming["code_approved"], true);
    assert_eq!(
        forming["code_hash"].as_str(),
        Some(instance.ok(&["code-hash"])?.as_str())
    );
    instance.stop()
}

#[test]
fn record_commands_print_the_contract_json_fields() -> anyhow::Result<()> {
    let mut instance = running("alice", "1")?;
    let id = instance.ok(&[
        "record",
        "put",
        "--collection",
        "books",
        "--title",
        "Dune",
        "--field",
        "author=Herbert",
        "--field",
        "pages:=412",
        "--field",
        "read:=true",
        "--tag",
        "scifi",
    ])?;
    let record = instance.json(&["record", "get", &id])?;
    assert_fields(
        &record,
        &[
            "id",
            "collection",
            "title",
            "fields",
            "deleted",
            "updated_at",
            "origin",
            "tags",
        ],
    );
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["fields"]["author"], "Herbert");
    assert_eq!(record["fields"]["pages"], 412);
    assert_eq!(record["fields"]["read"], true);
    assert_eq!(record["origin"], instance.json(&["status"])?["peer_id"]);

    instance.ok(&[
        "record",
        "put",
        "--id",
        &id,
        "--field",
        "pages:=413",
        "--remove-field",
        "read",
    ])?;
    let changed = instance.json(&["record", "get", &id])?;
    assert_eq!(changed["fields"]["pages"], 413);
    assert_eq!(changed["fields"].get("read"), None);
    assert_eq!(changed["title"], "Dune");

    let custom = instance.ok(&[
        "record",
        "put",
        "--id",
        "my-id",
        "--collection",
        "films",
        "--title",
        "Alien",
    ])?;
    assert_eq!(custom, "my-id");
    let books = instance.json(&["record", "list", "--collection", "books"])?;
    assert_eq!(books.as_array().map(Vec::len), Some(1));
    let found = instance.json(&["record", "list", "--search", "ali"])?;
    assert_eq!(found[0]["id"], "my-id");

    let deleted = instance.json(&["record", "delete", &id])?;
    assert_eq!(deleted["deleted"], true);
    assert_eq!(
        instance.json(&["record", "list", "--collection", "books"])?,
        Value::Array(vec![])
    );
    assert_eq!(
        instance.json(&["record", "list", "--deleted", "--collection", "books"])?[0]["id"],
        id.as_str()
    );

    let restored = instance.json(&["record", "restore", &id])?;
    assert_eq!(restored["deleted"], false);
    assert_eq!(
        instance.json(&["record", "list", "--collection", "books"])?[0]["id"],
        id.as_str()
    );

    let history = instance.json(&["record", "history", &id])?;
    let kinds: Vec<&str> = history
        .as_array()
        .map(|h| h.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["create", "update", "delete", "restore"]);
    assert_fields(
        &history[0],
        &["op_id", "origin", "seq", "at", "kind", "fields"],
    );
    instance.stop()
}

#[test]
fn bad_input_gets_a_clear_error_on_stderr_and_changes_nothing() -> anyhow::Result<()> {
    let mut instance = running("alice", "1")?;
    instance.ok(&[
        "record",
        "put",
        "--collection",
        "notes",
        "--title",
        "Keep me",
    ])?;
    let before = instance.json(&["status"])?;
    let long = format!("body={}", "x".repeat(20_000));
    let bad: [&[&str]; 6] = [
        &[
            "record",
            "put",
            "--collection",
            "no, commas",
            "--title",
            "x",
        ],
        &["record", "put", "--collection", "notes"],
        &[
            "record",
            "put",
            "--collection",
            "notes",
            "--title",
            "x",
            "--field",
            &long,
        ],
        &[
            "record",
            "put",
            "--collection",
            "notes",
            "--title",
            "x",
            "--field",
            "n:=[1,2]",
        ],
        &["record", "get", "does-not-exist"],
        &["record", "delete", "bad id!"],
    ];
    for args in bad {
        let output = instance.run(args)?;
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let json_error = instance.run(&["--json", "record", "get", "does-not-exist"])?;
    let error: Value = serde_json::from_slice(&json_error.stderr)?;
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(
        error["error"]["kind"], "bad_input",
        "a script can tell what to do"
    );
    let after = instance.json(&["status"])?;
    assert_eq!(before["state_root"], after["state_root"]);
    assert_eq!(before["op_count"], after["op_count"]);
    instance.stop()
}

#[test]
fn forming_network_refuses_record_writes_and_says_how_many_members_are_missing()
-> anyhow::Result<()> {
    let mut instance = running("alice", "3")?;
    let output = instance.run(&[
        "--json",
        "record",
        "put",
        "--collection",
        "notes",
        "--title",
        "Too early",
    ])?;
    assert!(!output.status.success());
    let error: Value = serde_json::from_slice(&output.stderr)?;
    assert_eq!(error["error"]["code"], "forming");
    assert_eq!(error["error"]["kind"], "retry");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("1 of the 3 members"), "{message}");
    assert_eq!(instance.json(&["status"])?["op_count"], 0);
    instance.stop()
}

#[test]
fn commands_say_clearly_when_no_instance_is_running() -> anyhow::Result<()> {
    let instance = Instance::init("idle")?;
    let output = instance.run(&["status"])?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no DAN instance is running"), "{stderr}");
    assert!(stderr.contains("dan run"), "{stderr}");
    Ok(())
}

#[test]
fn wrong_admin_password_is_refused_with_a_growing_delay() -> anyhow::Result<()> {
    let mut instance = Instance::init("alice")?;
    instance.start(&[])?;
    let attempt = |password: &str| -> anyhow::Result<(bool, String, std::time::Duration)> {
        let start = Instant::now();
        let output = instance
            .command(&["network", "create", "--name", "X"])
            .env("DAN_ADMIN_PASSWORD", password)
            .output()?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            start.elapsed(),
        ))
    };
    let (ok, stderr, _) = attempt("not-the-password")?;
    assert!(!ok && stderr.contains("wrong admin password"), "{stderr}");
    let (ok, _, second) = attempt("still-not-the-password")?;
    assert!(!ok);
    assert!(
        second.as_millis() >= 1000,
        "second wrong attempt took only {second:?}"
    );
    let (ok, _, third) = attempt("again-not-the-password")?;
    assert!(!ok);
    assert!(
        third.as_millis() >= 2000,
        "third wrong attempt took only {third:?}"
    );
    assert_eq!(
        instance.json(&["status"])?["state"],
        "none",
        "a wrong password changes nothing"
    );
    let (ok, stderr, _) = attempt(PASSWORD)?;
    assert!(ok, "{stderr}");
    instance.stop()
}

#[test]
fn a_second_dan_run_on_the_same_data_dir_is_refused() -> anyhow::Result<()> {
    let mut instance = Instance::init("alice")?;
    instance.start(&[])?;
    let refusal = instance.start_expecting_failure(&[])?;
    assert!(refusal.contains("already running"), "{refusal}");
    instance.stop()
}

#[test]
fn init_refuses_weak_passwords_and_existing_instances() -> anyhow::Result<()> {
    let instance = Instance::init("alice")?;
    let again = instance.run(&["init", "--name", "alice"])?;
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a DAN instance"));
    let fresh = tempfile::tempdir()?;
    let weak = std::process::Command::new(dan_tests::dan_bin())
        .arg("--data-dir")
        .arg(fresh.path())
        .args(["init", "--name", "x"])
        .env("DAN_ADMIN_PASSWORD", "short")
        .output()?;
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("at least")
            || String::from_utf8_lossy(&weak.stderr).contains("10 to")
    );
    Ok(())
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
}

#[test]
fn local_user_backups_data_dirs_and_restored_copies_are_private() -> anyhow::Result<()> {
    // Fails on e0617a0: backups were written 0644 (the umask's default) through
    // a `.partial` path that followed links, and a restore into a new data
    // directory left it 0755 and `dan.db` 0644.
    let mut instance = running("alice", "1")?;
    assert_eq!(mode(instance.data_dir()), 0o700);
    for file in ["dan.db", "dan.db-wal", "dan.db-shm"] {
        let path = instance.data_dir().join(file);
        assert_eq!(mode(&path), 0o600, "{file} is readable by others");
    }
    let dir = tempfile::tempdir()?;
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "another user's file")?;
    let file = dir.path().join("alice.danbackup");
    std::os::unix::fs::symlink(&victim, &file)?;
    instance.json(&["backup", "export", &file.to_string_lossy()])?;
    assert_eq!(
        std::fs::read_to_string(&victim)?,
        "another user's file",
        "the link was written through"
    );
    assert_eq!(mode(&file), 0o600, "the backup is readable by others");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    instance.stop()?;

    let restored = dir.path().join("restored");
    let output = std::process::Command::new(instance.bin())
        .args([
            "--data-dir",
            &restored.to_string_lossy(),
            "backup",
            "restore",
            &file.to_string_lossy(),
        ])
        .env("DAN_ADMIN_PASSWORD", PASSWORD)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        mode(&restored),
        0o700,
        "the restored data directory is open to others"
    );
    assert_eq!(
        mode(&restored.join("dan.db")),
        0o600,
        "the restored database is readable by others"
    );
    Ok(())
}

#[test]
fn backup_export_and_restore_and_password_change() -> anyhow::Result<()> {
    let mut instance = running("alice", "1")?;
    let kept = instance.ok(&[
        "record",
        "put",
        "--collection",
        "notes",
        "--title",
        "in the backup",
    ])?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("alice.danbackup");
    let exported = instance.json(&["backup", "export", &file.to_string_lossy()])?;
    assert!(exported["bytes"].as_u64().is_some_and(|b| b > 1000));
    let after = instance.ok(&[
        "record",
        "put",
        "--collection",
        "notes",
        "--title",
        "after the backup",
    ])?;
    instance.stop()?;

    let wrong = instance
        .command(&["backup", "restore", &file.to_string_lossy()])
        .env("DAN_ADMIN_PASSWORD", "not-the-password")
        .output()?;
    assert!(!wrong.status.success());
    instance.ok(&["backup", "restore", &file.to_string_lossy()])?;
    instance.start(&[])?;
    assert_eq!(
        instance.json(&["record", "get", &kept])?["title"],
        "in the backup"
    );
    assert!(
        instance.run(&["record", "get", &after])?.status.code() == Some(1),
        "the restored state predates the later record"
    );

    let change = instance
        .command(&["password", "change"])
        .env("DAN_NEW_ADMIN_PASSWORD", "a brand new admin password")
        .output()?;
    assert!(
        change.status.success(),
        "{}",
        String::from_utf8_lossy(&change.stderr)
    );
    let old = instance.run(&["invites"])?;
    assert!(old.status.success(), "reading needs no password");
    let with_old = instance.run(&["network", "create", "--name", "again"])?;
    assert!(String::from_utf8_lossy(&with_old.stderr).contains("wrong admin password"));
    let with_new = instance
        .command(&["network", "create", "--name", "again"])
        .env("DAN_ADMIN_PASSWORD", "a brand new admin password")
        .output()?;
    assert!(
        String::from_utf8_lossy(&with_new.stderr).contains("already belongs"),
        "the new password is accepted"
    );
    instance.stop()
}

#[test]
fn records_take_field_names_collections_and_tags_in_any_language() -> anyhow::Result<()> {
    // Fails on e0617a0: names were ASCII only.
    let mut instance = running("alice", "1")?;
    let id = instance.ok(&[
        "record",
        "put",
        "--collection",
        "Bibliothèque",
        "--title",
        "Dune",
        // Typed decomposed (e + combining acute), stored in one form.
        "--field",
        "Anne\u{301}e de publication:=1965",
        "--tag",
        "science fiction",
    ])?;
    let record = instance.json(&["record", "get", &id])?;
    assert_eq!(record["collection"], "Bibliothèque");
    assert_eq!(
        record["fields"]["Ann\u{e9}e de publication"], 1965,
        "{record}"
    );
    assert_eq!(record["tags"][0], "science fiction");
    let refused = instance.run(&["record", "put", "--collection", "a:b", "--title", "x"])?;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("collection `a:b` is invalid"));
    instance.stop()
}

#[test]
fn bad_input_a_record_title_with_terminal_escapes_is_printed_escaped() -> anyhow::Result<()> {
    let mut instance = running("alice", "1")?;
    let hostile = "Minutes\u{1b}[2J\u{1b}]0;owned\u{7}";
    let id = instance.ok(&["record", "put", "--collection", "notes", "--title", hostile])?;
    let shown = instance.ok(&["record", "get", &id])?;
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(shown.contains("Minutes\\u{1b}[2J"), "{shown}");
    // JSON keeps the exact text for scripts.
    assert_eq!(instance.json(&["record", "get", &id])?["title"], hostile);
    instance.stop()
}

/// A member adds a field "Рrice" (Cyrillic "Р") beside "Price" so that a
/// reader takes one for the other; both are valid names (any script is),
/// so `record get` points them out instead.
#[test]
fn look_alike_field_names_in_a_record_are_pointed_out() -> anyhow::Result<()> {
    let mut instance = running("alice", "1")?;
    let id = instance.ok(&[
        "record",
        "put",
        "--collection",
        "books",
        "--title",
        "Dune",
        "--field",
        "Price=12",
        "--field",
        "\u{420}rice=1",
        "--field",
        "Année=1965",
    ])?;
    let shown = instance.ok(&["record", "get", &id])?;
    assert!(
        shown.contains(
            "note: the field names \"Price\" and \"\u{420}rice\" read the same but are different"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("note: the field name \"\u{420}rice\" mixes letters of different alphabets"),
        "{shown}"
    );
    assert!(!shown.contains("Année\" "), "{shown}");
    let json = instance.json(&["record", "get", &id])?;
    assert_eq!(
        json["look_alikes"],
        serde_json::json!([
            { "of": "field", "names": ["Price", "\u{420}rice"], "kind": "read_the_same" },
            { "of": "field", "names": ["\u{420}rice"], "kind": "mixes_scripts" },
        ])
    );
    assert_eq!(json["fields"]["Price"], "12");
    instance.stop()
}

#[test]
fn relays_are_checked_kept_across_restarts_and_replaced_by_relays_set() -> anyhow::Result<()> {
    let mut instance = Instance::init("laptop")?;
    instance.start_networked(&[])?;
    let relay = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWRa4g8YxCFH3QJKwvRjDH1S5YboYJMJTmbKRK5fRTL6z5";
    let output = instance.run(&["--json", "relays", "set", "/ip4/127.0.0.1/tcp/9"])?;
    assert!(
        !output.status.success(),
        "an address without the relay's id"
    );
    let error: Value = serde_json::from_slice(&output.stderr)?;
    assert_eq!(error["error"]["code"], "invalid");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("must end with /p2p/")),
        "{error}"
    );
    assert_eq!(instance.json(&["relays"])?, serde_json::json!([]));

    let set = instance.json(&["relays", "set", relay])?;
    assert_eq!(
        set,
        serde_json::json!([{ "addr": relay, "reserved": false }])
    );
    assert_eq!(instance.json(&["status"])?["relays"], set);
    instance.stop()?;
    instance.start_networked(&[])?;
    assert_eq!(
        instance.json(&["relays"])?,
        set,
        "the relay is kept across a restart"
    );
    assert_eq!(instance.json(&["relays", "set"])?, serde_json::json!([]));
    instance.stop()?;
    instance.start_networked(&[])?;
    assert_eq!(instance.json(&["relays"])?, serde_json::json!([]));
    instance.stop()
}

#[test]
fn records_are_exported_as_json_lines_and_imported_in_batches() -> anyhow::Result<()> {
    let mut alice = running("alice", "1")?;
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"collection\":\"books\",\"title\":\"Dune\"}\nnot json\n",
    )?;
    let output = alice.run(&["record", "import", bad.to_str().unwrap_or_default()])?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2: not a record"), "{stderr}");
    assert_eq!(
        alice.json(&["status"])?["op_count"],
        0,
        "a bad line stops the import before anything is stored"
    );

    let lines: String = (0..2500)
        .map(|n| {
            format!(
                "{{\"collection\":\"books\",\"title\":\"Book {n}\",\"fields\":{{\"pages\":{n}}},\"tags\":[\"imported\"]}}\n"
            )
        })
        .collect();
    let good = dir.path().join("books.jsonl");
    std::fs::write(&good, lines)?;
    let imported = alice.json(&["record", "import", good.to_str().unwrap_or_default()])?;
    assert_eq!(imported["imported"], 2500);
    let exported = alice.ok(&["record", "export", "--collection", "books"])?;
    let rows: Vec<Value> = exported
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(rows.len(), 2500, "every record, in pages");
    let ids: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 2500, "no record twice");
    assert!(
        rows.iter()
            .any(|r| r["title"] == "Book 1234" && r["fields"]["pages"] == 1234)
    );

    let refused = dir.path().join("refused.jsonl");
    let long_title = "x".repeat(100_000);
    std::fs::write(
        &refused,
        format!(
            "{{\"collection\":\"books\",\"title\":\"Fine\"}}\n{{\"collection\":\"books\",\"title\":\"{long_title}\"}}\n"
        ),
    )?;
    let output = alice.run(&["record", "import", refused.to_str().unwrap_or_default()])?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--from-line 1"), "{stderr}");
    assert_eq!(
        alice
            .ok(&["record", "export", "--collection", "books"])?
            .lines()
            .count(),
        2500,
        "the refused batch stored nothing"
    );

    let mut bob = running("bob", "1")?;
    let copy = dir.path().join("copy.jsonl");
    std::fs::write(&copy, exported.replace("\"id\":", "\"old_id\":"))?;
    let copied = bob.json(&["record", "import", copy.to_str().unwrap_or_default()])?;
    assert_eq!(copied["imported"], 2500, "an export imports elsewhere");

    // The same as CSV, for a spreadsheet: the types come back.
    let csv = alice.ok(&[
        "record",
        "export",
        "--collection",
        "books",
        "--format",
        "csv",
    ])?;
    assert!(
        csv.starts_with("id,collection,title,tags,pages:int\n"),
        "{}",
        &csv[..80.min(csv.len())]
    );
    let mut carol = running("carol", "1")?;
    let sheet = dir.path().join("books.csv");
    std::fs::write(&sheet, &csv)?;
    let from_csv = carol.json(&["record", "import", sheet.to_str().unwrap_or_default()])?;
    assert_eq!(from_csv["imported"], 2500);
    let again = carol.ok(&["record", "export", "--format", "csv"])?;
    assert_eq!(again.lines().count(), 2501, "a header and every record");
    assert_eq!(again.lines().next(), csv.lines().next(), "the same columns");
    let book: Vec<Value> = carol
        .ok(&["record", "export"])?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(
        book.iter()
            .any(|r| r["title"] == "Book 1234" && r["fields"]["pages"] == 1234),
        "a whole number stays one"
    );
    alice.stop()?;
    bob.stop()?;
    carol.stop()
}

#[test]
fn relay_announces_the_external_address_it_is_given_instead_of_the_listening_one()
-> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::Builder::new().prefix("dan-relay-").tempdir()?;
    let mut child = std::process::Command::new(dan_tests::dan_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "relay",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--external",
            "/ip4/203.0.113.7/tcp/4001",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("stdout"))?;
    let first = BufReader::new(stdout).lines().next().transpose()?;
    let _ = child.kill();
    let _ = child.wait();
    let first = first.unwrap_or_default();
    assert!(
        first.starts_with("relay reachable at /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW"),
        "{first}"
    );
    Ok(())
}
