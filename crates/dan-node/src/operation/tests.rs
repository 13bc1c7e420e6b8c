//! The operations keep the control channel's JSON, their typed answers read
//! back exactly what the instance sent, and the window's TypeScript types
//! name the same fields.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::FieldValue;
use serde_json::{Value, json};

use super::*;
use crate::test_instance::{PASSWORD, founded};

#[test]
fn requests_keep_the_json_of_the_control_channel() {
    let lines = [
        json!({ "cmd": "status" }),
        json!({ "cmd": "members" }),
        json!({ "cmd": "put_record", "record": {
            "id": "r1", "collection": null, "title": "t",
            "fields": { "n": 2, "gone": null }, "tags": null } }),
        json!({ "cmd": "join", "link": "dan://join/x", "admin_name": null,
            "password": "p", "leave_current": false }),
        json!({ "cmd": "vote", "id": "00".repeat(32), "approve": true, "password": "p" }),
        json!({ "cmd": "approve", "peer": "12D3", "password": "p" }),
    ];
    for line in lines {
        let request: ControlRequest = serde_json::from_value(line.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&request).expect("encodes"), line);
    }
    // Fields a script may leave out.
    let join: ControlRequest = serde_json::from_value(json!({
        "cmd": "join", "link": "l", "admin_name": null, "password": "p" }))
    .expect("leave_current may be left out");
    assert!(matches!(
        join,
        ControlRequest::Join(Join {
            leave_current: false,
            ..
        })
    ));
    let upgrade: ControlRequest = serde_json::from_value(json!({
        "cmd": "propose_upgrade", "code_hashes": [], "grace_secs": 5, "password": "p" }))
    .expect("builds may be left out");
    assert!(matches!(
        upgrade,
        ControlRequest::ProposeUpgrade(ProposeUpgrade { grace_secs: 5, .. })
    ));
    for bad in [
        json!({ "cmd": "no_such_command" }),
        json!({ "cmd": "get_record" }),
        json!({ "cmd": "get_record", "id": 5 }),
        json!({ "id": "r1" }),
    ] {
        assert!(
            serde_json::from_value::<ControlRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

/// Runs `operation` as the control channel does and checks that its typed
/// answer reads back the same JSON; returns that JSON.
async fn answered<O: Operation>(node: &Node, operation: O) -> Value {
    let request: ControlRequest = operation.into();
    let sent = request.run(node).await.expect("the operation runs");
    let typed: O::Answer = serde_json::from_value(sent.clone()).expect("the answer reads back");
    assert_eq!(serde_json::to_value(&typed).expect("encodes"), sent);
    sent
}

/// Answers of every kind, from a real instance.
struct Samples(BTreeMap<&'static str, Value>);

async fn samples(node: &Node) -> Samples {
    let config = crate::net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("an address")],
        mdns: false,
        upnp: false,
        ..Default::default()
    };
    crate::net::start(node, config).await.expect("listens");
    let mut samples = BTreeMap::new();
    let status = answered(node, Status {}).await;
    samples.insert("BuildView", status["build"].clone());
    samples.insert("Status", status);
    let record = answered(
        node,
        PutRecord {
            record: api::PutRecord {
                collection: Some("books".into()),
                title: Some("Dune".into()),
                fields: BTreeMap::from([
                    ("Price".to_owned(), Some(FieldValue::Int(12))),
                    ("\u{420}rice".to_owned(), Some(FieldValue::Text("x".into()))),
                ]),
                tags: Some(BTreeSet::from(["sf".to_owned()])),
                ..api::PutRecord::default()
            },
        },
    )
    .await;
    let id = record["id"].as_str().expect("an id").to_owned();
    samples.insert("RecordView", record);
    let shown = answered(node, GetRecord { id: id.clone() }).await;
    assert!(
        shown["look_alikes"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    samples.insert("LookAlike", shown["look_alikes"][0].clone());
    let query = RecordQuery::default();
    assert_eq!(
        answered(
            node,
            ListRecords {
                query: query.clone()
            }
        )
        .await[0]["id"],
        id
    );
    samples.insert("RecordPage", answered(node, ListRecordPage { query }).await);
    samples.insert(
        "HistoryEntry",
        answered(node, History { id: id.clone() }).await[0].clone(),
    );
    answered(node, DeleteRecord { id: id.clone() }).await;
    answered(node, RestoreRecord { id }).await;
    let imported = answered(
        node,
        ImportRecords {
            records: vec![api::PutRecord {
                collection: Some("books".into()),
                title: Some("Emma".into()),
                ..api::PutRecord::default()
            }],
        },
    )
    .await;
    assert_eq!(imported, json!({ "imported": 1 }));
    samples.insert("MemberView", answered(node, Members {}).await[0].clone());
    let relay = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let relays = SetRelays {
        relays: vec![relay.into()],
        password: PASSWORD.into(),
    };
    samples.insert("RelayStatus", answered(node, relays).await[0].clone());
    answered(node, Checkpoint {}).await;
    answered(node, Peers {}).await;
    answered(node, Evidence {}).await;
    let invite = Invite {
        invite: InviteRequest {
            uses: Some(2),
            expires_secs: None,
            label: Some("for Bob".into()),
        },
        password: PASSWORD.into(),
    };
    let invite = answered(node, invite).await;
    assert_eq!(answered(node, Invites {}).await[0], invite);
    let link = invite["link"].as_str().expect("a link").to_owned();
    let id = invite["id"].as_str().expect("an id").to_owned();
    samples.insert("StoredInvite", invite);
    samples.insert(
        "InvitePreview",
        answered(node, PreviewInvite { link }).await,
    );
    let revoke = RevokeInvite {
        id: id.clone(),
        password: PASSWORD.into(),
    };
    assert_eq!(answered(node, revoke).await, json!({ "revoked": id }));
    let upgrade = ProposeUpgrade {
        code_hashes: vec![Hash32([7; 32])],
        builds: BTreeMap::new(),
        grace_secs: 60,
        password: PASSWORD.into(),
    };
    samples.insert("ProposalView", answered(node, upgrade).await);
    assert_eq!(
        answered(node, Proposals {}).await.as_array().map(Vec::len),
        Some(1)
    );
    let evidence = StoredEvidence {
        id: "ab".into(),
        bytes: Vec::new(),
        accuser: "a".into(),
        offender: None,
        status: "pending".into(),
        reason: "r".into(),
        cutoff: None,
        received_ms: 1,
    };
    samples.insert(
        "EvidenceView",
        serde_json::to_value(evidence).expect("encodes"),
    );
    let progress = JoinProgress {
        network_id: Hash32([1; 32]),
        network_name: "Library".into(),
        inviter: node.peer_id(),
        inviter_name: "ada".into(),
        approvals: 0,
        needed: 1,
        peer_id: node.peer_id(),
        join_code: "1234".into(),
    };
    samples.insert(
        "JoinProgress",
        serde_json::to_value(progress).expect("encodes"),
    );
    Samples(samples)
}

#[tokio::test]
async fn every_answer_reads_back_as_the_instance_sent_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = founded(dir.path()).await;
    // Each operation's answer is checked as it comes (`answered`).
    let samples = samples(&node).await;
    assert!(samples.0.contains_key("Status") && samples.0.contains_key("InvitePreview"));
    // The answers made for the CLI, field by field.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let backup = elsewhere.path().join("library.danbackup");
    let written = answered(
        &node,
        BackupExport {
            path: backup.clone(),
            password: PASSWORD.into(),
        },
    )
    .await;
    let bytes = std::fs::metadata(&backup)
        .expect("the backup is written")
        .len();
    assert_eq!(written, json!({ "path": backup, "bytes": bytes }));
    let changed = ChangePassword {
        old: PASSWORD.into(),
        new: "a new horse battery staple".into(),
    };
    assert_eq!(answered(&node, changed).await, json!({ "changed": true }));
    node.stop().await;
    let forked = Forked {
        network_id: Hash32([1; 32]),
        network_name: "Library 2".into(),
        parent: Some(Hash32([2; 32])),
    };
    assert_eq!(
        serde_json::to_value(forked).expect("encodes"),
        json!({ "network_id": "01".repeat(32), "network_name": "Library 2", "parent": "02".repeat(32) })
    );
}

/// The fields `interface NAME` declares in `ui/src/types.ts`, each with
/// whether it may be left out (`name?:`).
fn fields_the_window_declares(name: &str) -> Vec<(String, bool)> {
    let types = include_str!("../../../../ui/src/types.ts");
    let start = types
        .find(&format!("export interface {name} {{"))
        .unwrap_or_else(|| panic!("ui/src/types.ts declares {name}"));
    let body = &types[start..];
    let end = body.find("\n}").expect("the interface ends");
    body[..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let field = line.strip_prefix("  ")?;
            let (name, _) = field.split_once(':')?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '?')
            {
                return None;
            }
            Some(match name.strip_suffix('?') {
                Some(name) => (name.to_owned(), true),
                None => (name.to_owned(), false),
            })
        })
        .collect()
}

#[tokio::test]
async fn the_window_types_name_exactly_the_fields_the_instance_sends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = founded(dir.path()).await;
    let samples = samples(&node).await;
    node.stop().await;
    for (interface, sample) in &samples.0 {
        let sent: BTreeSet<&str> = sample
            .as_object()
            .unwrap_or_else(|| panic!("{interface} is an object"))
            .keys()
            .map(String::as_str)
            .collect();
        let declared = fields_the_window_declares(interface);
        let names: BTreeSet<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
        let unknown: Vec<_> = sent.difference(&names).collect();
        assert!(
            unknown.is_empty(),
            "{interface}: the window does not declare {unknown:?}"
        );
        let missing: Vec<_> = declared
            .iter()
            .filter(|(name, optional)| !optional && !sent.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{interface}: the instance does not send {missing:?}"
        );
    }
}
