//! Printing results: JSON with `--json`, short text otherwise.

use chrono_free::format_ms;
use serde_json::Value;

/// Prints results and errors in the chosen format.
pub(crate) struct Printer {
    pub(crate) json: bool,
}

impl Printer {
    /// Prints `value` as JSON, or through `human` as text.
    pub(crate) fn value(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", terminal_safe(&human(value), true));
        }
    }

    /// Prints an error to stderr.
    pub(crate) fn error(&self, code: dan_node::ErrorCode, message: &str) {
        if self.json {
            eprintln!(
                "{}",
                serde_json::json!({ "error": { "code": code, "kind": code.kind(), "message": message } })
            );
        } else {
            eprintln!("error: {}", terminal_safe(message, true));
        }
    }
}

/// Text that came from elsewhere (a member's record, a peer's reason, a
/// name) made safe for a terminal: control characters (escape sequences
/// could rewrite the screen) and bidirectional overrides (which reorder
/// what is shown) are printed as `\u{…}`; line breaks are kept only where
/// `keep_newlines` (the layout's own), never inside a value.
pub(crate) fn terminal_safe(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c == '\n' && keep_newlines) || !(c.is_control() || bidi) {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// A JSON value as plain text (`-` for null).
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => terminal_safe(s, false),
        other => other.to_string(),
    }
}

/// The first 12 characters of an id or hash ("-" when absent).
fn short(value: &Value) -> String {
    text(value).chars().take(12).collect()
}

/// `dan status` as text.
pub(crate) fn status(v: &Value) -> String {
    let mut lines = vec![
        format!(
            "instance:     {} ({})",
            text(&v["name"]),
            text(&v["peer_id"])
        ),
        format!(
            "network:      {} ({})",
            text(&v["network_name"]),
            text(&v["network_id"])
        ),
        format!("state:        {}", text(&v["state"])),
        format!(
            "members:      {} (needs {})",
            text(&v["members"]),
            text(&v["min_members"])
        ),
        format!("ops:          {}", text(&v["op_count"])),
        format!("ops root:     {}", text(&v["ops_root"])),
        format!("state root:   {}", text(&v["state_root"])),
        format!("charter hash: {}", text(&v["charter_hash"])),
    ];
    let approved = match v["code_approved"].as_bool() {
        Some(true) => " (approved)",
        Some(false) => " (NOT approved by the charter)",
        None => "",
    };
    lines.push(format!("code hash:    {}{approved}", text(&v["code_hash"])));
    lines.push(format!(
        "peers:        {} online, {} ops still to fetch, last sync {}",
        text(&v["online_peers"]),
        text(&v["missing_ops"]),
        v["last_sync"].as_u64().map_or("never".into(), format_ms)
    ));
    if let Some(addrs) = v["listen_addrs"].as_array().filter(|a| !a.is_empty()) {
        let addrs: Vec<String> = addrs.iter().map(text).collect();
        lines.push(format!("listening:    {}", addrs.join(" ")));
    }
    lines.push(format!("reachable:    {}", reachability(v)));
    if let Some(reason) = v["deprecation"].as_str() {
        lines.push(format!("DEPRECATED:   {reason}"));
    }
    if let Some(records) = v["damaged_records"].as_array().filter(|r| !r.is_empty()) {
        let ids: Vec<String> = records.iter().map(text).collect();
        lines.push(format!("damaged rows: {}", ids.join(", ")));
    }
    if !v["join"].is_null() {
        lines.push(format!("joining:      {}", join_progress(&v["join"])));
    }
    lines.join("\n")
}

/// What an invite link says, with its warnings first.
pub(crate) fn invite_preview(v: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(known) = v.get("look_alike").filter(|k| !k.is_null()) {
        lines.push(format!(
            "WARNING: this is NOT your network \"{}\" (id {}): the invite is for a different network with a name that looks the same (id {}). Check the id with the person who sent it before joining.",
            text(&known["network_name"]),
            text(&known["network_id"]),
            text(&v["network_id"]),
        ));
    }
    match v["relation"].as_str() {
        Some("this_network") => lines.push("note: this instance is already in this network (or asked to join it).".into()),
        Some("other_network") => lines.push("note: this instance is in another network; joining this one means leaving it (`dan join --leave-current-network`).".into()),
        _ => {}
    }
    lines.push(format!(
        "network:     {} (id {})",
        text(&v["network_name"]),
        text(&v["network_id"])
    ));
    lines.push(format!(
        "invited by:  {} ({})",
        text(&v["inviter_name"]),
        text(&v["inviter"])
    ));
    lines.push(format!(
        "expires:     {}",
        v["expires_ms"].as_u64().map_or("-".into(), format_ms)
    ));
    let build = &v["your_build"];
    let approval = match build["approval"].as_str() {
        Some("approved") => "approved by the network (as the inviter says)",
        Some(_) => "NOT approved by the network: send the approval request below to an admin",
        None => "not listed in the invite; the inviter checks it when you join",
    };
    lines.push(format!(
        "your build:  {} — {approval}",
        text(&build["description"])
    ));
    if let Some(request) = v["approval_request"]
        .as_str()
        .filter(|_| build["approval"] == "not_approved")
    {
        lines.push(format!(
            "approval request: {}",
            terminal_safe(request, false)
        ));
    }
    lines.join("\n")
}

/// A join in progress as text.
pub(crate) fn join_progress(v: &Value) -> String {
    format!(
        "asked to join \"{}\" (invited by {}) as {}; waiting for approval ({} of {}); your join code: {} (read it to the approving admins)",
        text(&v["network_name"]),
        text(&v["inviter_name"]),
        text(&v["peer_id"]),
        text(&v["approvals"]),
        text(&v["needed"]),
        text(&v["join_code"])
    )
}

/// One line while `dan join` waits.
pub(crate) fn waiting_line(status: &Value) -> String {
    if status["state"] == "pending" {
        return match status.get("join").filter(|j| !j.is_null()) {
            Some(join) => format!(
                "waiting for approval ({} of {})",
                text(&join["approvals"]),
                text(&join["needed"])
            ),
            None => "waiting for approval".into(),
        };
    }
    let missing = status["missing_ops"].as_u64().unwrap_or(0);
    let have = status["op_count"].as_u64().unwrap_or(0);
    let total = have + missing;
    let width = 30u64;
    let filled = (width * have).checked_div(total).unwrap_or(width);
    format!(
        "syncing [{}{}] {have}/{total} ops",
        "#".repeat(filled as usize),
        "-".repeat((width - filled) as usize)
    )
}

/// The member table as text.
pub(crate) fn members(v: &Value) -> String {
    let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
    rows.iter().map(member_line).collect::<Vec<_>>().join("\n")
}

/// One member as text.
pub(crate) fn member_line(m: &Value) -> String {
    let online = if m["online"].as_bool() == Some(true) {
        "online"
    } else {
        "offline"
    };
    let me = if m["is_self"].as_bool() == Some(true) {
        " (this instance)"
    } else {
        ""
    };
    let approvals = if m["status"] == "pending" {
        format!(
            " {}/{} approvals, join code {}",
            text(&m["approvals"]),
            text(&m["needed"]),
            text(&m["join_code"])
        )
    } else {
        String::new()
    };
    let code = short(&m["code_hash"]);
    let refused = m["refused"]
        .as_str()
        .map_or(String::new(), |r| format!("  [{r}]"));
    format!(
        "{:<54} {:<20} {:<9}{approvals} {online} code {code}{me}{refused}",
        text(&m["peer_id"]),
        text(&m["name"]),
        text(&m["status"]),
    )
}

/// Invites as text.
pub(crate) fn invites(v: &Value) -> String {
    let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no invites".into();
    }
    rows.iter()
        .map(|i| {
            let label = i["label"].as_str().filter(|l| !l.is_empty());
            let used_by = i["used_by"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|u| format!("{} ({})", text(&u["instance_name"]), text(&u["admin_name"])))
                .collect::<Vec<_>>();
            format!(
                "{}  {}  used {}/{}  expires {}{}{}\n  {}",
                text(&i["id"]),
                text(&i["status"]).replace('_', " "),
                text(&i["used"]),
                text(&i["uses"]),
                format_ms(i["expires_ms"].as_u64().unwrap_or(0)),
                label.map(|l| format!("  for {l}")).unwrap_or_default(),
                if used_by.is_empty() {
                    String::new()
                } else {
                    format!("  used by {}", used_by.join(", "))
                },
                text(&i["link"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Evidence as text.
pub(crate) fn evidence(v: &Value) -> String {
    let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no evidence".into();
    }
    rows.iter()
        .map(|e| {
            format!(
                "{}  {:<22} against {}: {}\n  reported by {}",
                short(&e["id"]),
                text(&e["status"]),
                text(&e["offender"]),
                text(&e["reason"]),
                text(&e["accuser"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One proposal as text.
pub(crate) fn proposal(p: &Value) -> String {
    format!(
        "{}  {:<8} {} — yes {} / no {} (needs {}): {}",
        text(&p["id"]),
        text(&p["status"]),
        text(&p["kind"]),
        text(&p["yes"]),
        text(&p["no"]),
        text(&p["needed"]),
        text(&p["summary"])
    )
}

/// One relay, whether it holds a slot and why not, as text.
fn relay_line(r: &Value) -> String {
    let state = match (r["reserved"].as_bool(), r["error"].as_str()) {
        (Some(true), _) => "slot held".to_owned(),
        (_, Some(error)) => error.to_owned(),
        _ => "no slot yet".to_owned(),
    };
    let found = if r["learnt"].as_bool() == Some(true) {
        ", a member at a public address"
    } else {
        ""
    };
    format!("{} ({state}{found})", text(&r["addr"]))
}

/// The relays in use, one per line.
pub(crate) fn relays(v: &Value) -> String {
    let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no relays (others must reach this instance directly)".into();
    }
    rows.iter().map(relay_line).collect::<Vec<_>>().join("\n")
}

/// Whether others can reach this instance, and through which relays, in
/// words.
fn reachability(v: &Value) -> String {
    let relays: Vec<String> = v["relays"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(relay_line)
        .collect();
    let through = if relays.is_empty() {
        String::new()
    } else {
        format!("; relays: {}", relays.join(", "))
    };
    let how = match v["reachability"].as_str() {
        Some("public") => "yes, directly".to_owned(),
        Some("private") if relays.is_empty() => {
            "not from outside this network: ask a member with a server to run `dan relay`, then start with --relay ADDRESS".to_owned()
        }
        Some("private") => "only through a relay".to_owned(),
        _ => "not known yet".to_owned(),
    };
    format!("{how}{through}")
}

/// Peers as text.
pub(crate) fn peers(v: &Value) -> String {
    let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no peers seen".into();
    }
    rows.iter()
        .map(|p| {
            let online = if p["online"].as_bool() == Some(true) {
                "online"
            } else {
                "offline"
            };
            let refused = p["refused"]
                .as_str()
                .map_or(String::new(), |r| format!("  [{r}]"));
            let relayed = if p["connection"] == "relayed" {
                " (through a relay)"
            } else {
                ""
            };
            format!(
                "{:<54} {online:<8} {}{relayed}{refused}",
                text(&p["peer_id"]),
                text(&p["verdict"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One record as text.
pub(crate) fn record(v: &Value) -> String {
    let mut lines = vec![
        format!("{}  {}", text(&v["id"]), text(&v["title"])),
        format!("  collection: {}", text(&v["collection"])),
    ];
    if let Some(fields) = v["fields"].as_object() {
        for (key, value) in fields {
            lines.push(format!("  {}: {}", terminal_safe(key, false), text(value)));
        }
    }
    if let Some(tags) = v["tags"].as_array().filter(|t| !t.is_empty()) {
        let tags: Vec<String> = tags.iter().map(text).collect();
        lines.push(format!("  tags: {}", tags.join(", ")));
    }
    lines.push(format!(
        "  updated: {} by {}",
        format_ms(v["updated_at"].as_u64().unwrap_or(0)),
        text(&v["origin"])
    ));
    if v["deleted"].as_bool() == Some(true) {
        lines.push("  (deleted)".into());
    }
    for look_alike in v["look_alikes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        lines.push(format!("  note: {}", look_alike_text(look_alike)));
    }
    lines.join("\n")
}

/// One group of a record's look-alike labels, in words.
fn look_alike_text(v: &Value) -> String {
    let of = v["of"].as_str().unwrap_or("field");
    let names: Vec<String> = v["names"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|n| format!("\"{}\"", text(n)))
        .collect();
    let kind = if of == "tag" { "tag" } else { "field name" };
    if v["kind"].as_str() == Some("mixes_scripts") {
        format!(
            "the {kind} {} mixes letters of different alphabets",
            names.join(", ")
        )
    } else {
        format!(
            "the {kind}s {} read the same but are different",
            names.join(" and ")
        )
    }
}

/// A list of records as a table.
pub(crate) fn record_table(v: &Value) -> String {
    let rows = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no records".into();
    }
    rows.iter()
        .map(|r| {
            let deleted = if r["deleted"].as_bool() == Some(true) {
                "  (deleted)"
            } else {
                ""
            };
            format!(
                "{:<26} {:<16} {}{deleted}",
                text(&r["id"]),
                text(&r["collection"]),
                text(&r["title"])
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A record's history as text.
pub(crate) fn history(v: &Value) -> String {
    let entries = v.as_array().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            let mut parts = vec![format!(
                "{}  {:<6} by {} (op {} #{})",
                format_ms(e["at"].as_u64().unwrap_or(0)),
                text(&e["kind"]),
                text(&e["origin"]),
                short(&e["op_id"]),
                text(&e["seq"]),
            )];
            if !e["title"].is_null() {
                parts.push(format!("    title: {}", text(&e["title"])));
            }
            if let Some(fields) = e["fields"].as_object() {
                for (key, value) in fields {
                    parts.push(format!("    {key}: {}", text(value)));
                }
            }
            parts.join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

mod chrono_free {
    /// Formats ms since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
    pub(crate) fn format_ms(ms: u64) -> String {
        let t = dan_node::utc::Utc::from_ms(ms);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn formats_known_dates() {
            assert_eq!(super::format_ms(0), "1970-01-01 00:00:00 UTC");
            assert_eq!(
                super::format_ms(1_700_000_000_123),
                "2023-11-14 22:13:20 UTC"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_text_from_elsewhere_cannot_drive_the_terminal() {
        let hostile = "Minutes\u{1b}[2J\u{1b}]0;owned\u{7}\nfake line \u{202e}txt.exe";
        let shown = text(&Value::String(hostile.into()));
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert!(shown.contains("\\u{1b}[2J") && shown.contains("\\u{a}fake line"));
        assert!(shown.contains("\\u{202e}txt.exe"));
        assert_eq!(terminal_safe("two\nlines", true), "two\nlines");
        assert_eq!(text(&Value::String("Straße 5 · ü".into())), "Straße 5 · ü");
    }
}
