//! Printing results: JSON with `--json`, short text otherwise. Each
//! printer takes the typed answer of an operation
//! (`dan_node::operation`); the JSON is that answer as the instance sent it.

use std::fmt::Display;

use chrono_free::format_ms;
use dan_core::RecordView;
use dan_node::api::{HistoryEntry, LabelKind, LookAlikeLabels, RecordShown, Status};
use dan_node::membership::{InvitePreview, InviteView, JoinProgress, MemberView, PeerView};
use dan_node::net::{Connection, Reachability, RelayStatus};
use dan_node::proposals::ProposalView;
use dan_store::StoredEvidence;
use serde::Serialize;

/// Prints results and errors in the chosen format.
pub(crate) struct Printer {
    pub(crate) json: bool,
}

impl Printer {
    /// Prints `value` as JSON, or through `human` as text; fails when the
    /// value has no JSON form (a path that is not UTF-8, say).
    pub(crate) fn value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.json {
            let json = serde_json::to_string(value)
                .map_err(|e| anyhow::anyhow!("cannot print the answer as JSON: {e}"))?;
            println!("{json}");
        } else {
            println!("{}", terminal_safe(&human(value), true));
        }
        Ok(())
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

/// A value from elsewhere as one line of text.
pub(crate) fn text(value: impl Display) -> String {
    terminal_safe(&value.to_string(), false)
}

/// A value that may be absent as text (`-` when it is).
fn or_dash<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), text)
}

/// The name a value has in the JSON (`pending`, `used_up`, `pull-only`).
fn json_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => text(name),
        Ok(other) => text(other),
        Err(_) => "-".into(),
    }
}

/// The first 12 characters of an id or hash ("-" when absent).
fn short<T: Display>(value: Option<T>) -> String {
    or_dash(value).chars().take(12).collect()
}

/// `dan status` as text.
pub(crate) fn status(v: &Status) -> String {
    let mut lines = vec![
        format!("instance:     {} ({})", text(&v.name), v.peer_id),
        format!(
            "network:      {} ({})",
            or_dash(v.network_name.as_ref()),
            or_dash(v.network_id)
        ),
        format!("state:        {}", json_name(&v.state)),
        format!(
            "members:      {} (needs {})",
            v.members,
            or_dash(v.min_members)
        ),
        format!("ops:          {}", v.op_count),
        format!("ops root:     {}", or_dash(v.ops_root)),
        format!("state root:   {}", or_dash(v.state_root)),
        format!("charter hash: {}", or_dash(v.charter_hash)),
    ];
    let approved = match v.code_approved {
        Some(true) => " (approved)",
        Some(false) => " (NOT approved by the charter)",
        None => "",
    };
    lines.push(format!("code hash:    {}{approved}", v.code_hash));
    lines.push(format!(
        "peers:        {} online, {} ops still to fetch, last sync {}",
        v.online_peers,
        v.missing_ops,
        v.last_sync.map_or("never".into(), format_ms)
    ));
    if !v.listen_addrs.is_empty() {
        let addrs: Vec<String> = v.listen_addrs.iter().map(text).collect();
        lines.push(format!("listening:    {}", addrs.join(" ")));
    }
    lines.push(format!("reachable:    {}", reachability(v)));
    if let Some(reason) = &v.deprecation {
        lines.push(format!("DEPRECATED:   {}", text(reason)));
    }
    if !v.damaged_records.is_empty() {
        let ids: Vec<String> = v.damaged_records.iter().map(text).collect();
        lines.push(format!("damaged rows: {}", ids.join(", ")));
    }
    if let Some(join) = &v.join {
        lines.push(format!("joining:      {}", join_progress(join)));
    }
    lines.join("\n")
}

/// What an invite link says, with its warnings first.
pub(crate) fn invite_preview(v: &InvitePreview) -> String {
    use dan_node::membership::InviteRelation;
    let mut lines = Vec::new();
    if let Some(known) = &v.look_alike {
        lines.push(format!(
            "WARNING: this is NOT your network \"{}\" (id {}): the invite is for a different network with a name that looks the same (id {}). Check the id with the person who sent it before joining.",
            text(&known.network_name),
            known.network_id,
            v.network_id,
        ));
    }
    match v.relation {
        InviteRelation::ThisNetwork => lines.push("note: this instance is already in this network (or asked to join it).".into()),
        InviteRelation::OtherNetwork => lines.push("note: this instance is in another network; joining this one means leaving it (`dan join --leave-current-network`).".into()),
        InviteRelation::NoNetwork => {}
    }
    lines.push(format!(
        "network:     {} (id {})",
        text(&v.network_name),
        v.network_id
    ));
    lines.push(format!(
        "invited by:  {} ({})",
        text(&v.inviter_name),
        v.inviter
    ));
    lines.push(format!("expires:     {}", format_ms(v.expires_ms)));
    let build = &v.your_build;
    let approval = match build.approval.as_deref() {
        Some("approved") => "approved by the network (as the inviter says)",
        Some(_) => "NOT approved by the network: send the approval request below to an admin",
        None => "not listed in the invite; the inviter checks it when you join",
    };
    lines.push(format!(
        "your build:  {} — {approval}",
        text(&build.description)
    ));
    if let Some(request) = v
        .approval_request
        .as_deref()
        .filter(|_| build.approval.as_deref() == Some("not_approved"))
    {
        lines.push(format!("approval request: {}", text(request)));
    }
    lines.join("\n")
}

/// A join in progress as text.
pub(crate) fn join_progress(v: &JoinProgress) -> String {
    format!(
        "asked to join \"{}\" (invited by {}) as {}; waiting for approval ({} of {}); your join code: {} (read it to the approving admins)",
        text(&v.network_name),
        text(&v.inviter_name),
        v.peer_id,
        v.approvals,
        v.needed,
        text(&v.join_code)
    )
}

/// One line while `dan join` waits.
pub(crate) fn waiting_line(status: &Status) -> String {
    if status.state == dan_node::api::NetworkState::Pending {
        return match &status.join {
            Some(join) => format!(
                "waiting for approval ({} of {})",
                join.approvals, join.needed
            ),
            None => "waiting for approval".into(),
        };
    }
    let have = status.op_count;
    let total = have.saturating_add(status.missing_ops);
    let width = 30u64;
    let filled = (width * have)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!(
        "syncing [{}{}] {have}/{total} ops",
        "#".repeat(filled as usize),
        "-".repeat((width - filled) as usize)
    )
}

/// The member table as text.
pub(crate) fn members(rows: &[MemberView]) -> String {
    rows.iter().map(member_line).collect::<Vec<_>>().join("\n")
}

/// One member as text.
pub(crate) fn member_line(m: &MemberView) -> String {
    let online = if m.online { "online" } else { "offline" };
    let me = if m.is_self { " (this instance)" } else { "" };
    let approvals = if m.status == dan_core::governance::MemberStatus::Pending {
        format!(
            " {}/{} approvals, join code {}",
            m.approvals,
            m.needed,
            text(&m.join_code)
        )
    } else {
        String::new()
    };
    let code = short(m.code_hash);
    let refused = m
        .refused
        .as_ref()
        .map_or(String::new(), |r| format!("  [{}]", text(r)));
    format!(
        "{:<54} {:<20} {:<9}{approvals} {online} code {code}{me}{refused}",
        m.peer_id.to_string(),
        text(&m.name),
        json_name(&m.status),
    )
}

/// Invites as text.
pub(crate) fn invites(rows: &[InviteView]) -> String {
    if rows.is_empty() {
        return "no invites".into();
    }
    rows.iter()
        .map(|i| {
            let invite = &i.invite;
            let label = Some(invite.label.as_str()).filter(|l| !l.is_empty());
            let used_by = invite
                .used_by
                .iter()
                .map(|u| format!("{} ({})", text(&u.instance_name), text(&u.admin_name)))
                .collect::<Vec<_>>();
            format!(
                "{}  {}  used {}/{}  expires {}{}{}\n  {}",
                text(&invite.id),
                json_name(&i.status).replace('_', " "),
                invite.used,
                invite.uses,
                format_ms(invite.expires_ms),
                label
                    .map(|l| format!("  for {}", text(l)))
                    .unwrap_or_default(),
                if used_by.is_empty() {
                    String::new()
                } else {
                    format!("  used by {}", used_by.join(", "))
                },
                text(&invite.link)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Evidence as text.
pub(crate) fn evidence(rows: &[StoredEvidence]) -> String {
    if rows.is_empty() {
        return "no evidence".into();
    }
    rows.iter()
        .map(|e| {
            format!(
                "{}  {:<22} against {}: {}\n  reported by {}",
                short(Some(&e.id)),
                text(&e.status),
                or_dash(e.offender.as_ref()),
                text(&e.reason),
                text(&e.accuser)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One proposal as text.
pub(crate) fn proposal(p: &ProposalView) -> String {
    format!(
        "{}  {:<8} {} — yes {} / no {} (needs {}): {}",
        p.id,
        json_name(&p.status),
        text(&p.kind),
        p.yes,
        p.no,
        p.needed,
        text(&p.summary)
    )
}

/// Proposals as text.
pub(crate) fn proposals(rows: &[ProposalView]) -> String {
    if rows.is_empty() {
        return "no proposals".into();
    }
    rows.iter().map(proposal).collect::<Vec<_>>().join("\n")
}

/// A checkpoint sent, as text.
pub(crate) fn checkpoint(hello: &dan_core::conformance::Hello) -> String {
    format!(
        "checkpoint sent: {} ops, ops root {}, state root {}",
        hello.op_count,
        or_dash(hello.ops_root),
        or_dash(hello.state_root)
    )
}

/// One relay, whether it holds a slot and why not, as text.
fn relay_line(r: &RelayStatus) -> String {
    let state = match (r.reserved, &r.error) {
        (true, _) => "slot held".to_owned(),
        (false, Some(error)) => text(error),
        (false, None) => "no slot yet".to_owned(),
    };
    let found = if r.learnt {
        ", a member at a public address"
    } else {
        ""
    };
    format!("{} ({state}{found})", text(&r.addr))
}

/// The relays in use, one per line.
pub(crate) fn relays(rows: &[RelayStatus]) -> String {
    if rows.is_empty() {
        return "no relays (others must reach this instance directly)".into();
    }
    rows.iter().map(relay_line).collect::<Vec<_>>().join("\n")
}

/// Whether others can reach this instance, and through which relays, in
/// words.
fn reachability(v: &Status) -> String {
    let relays: Vec<String> = v.relays.iter().map(relay_line).collect();
    let through = if relays.is_empty() {
        String::new()
    } else {
        format!("; relays: {}", relays.join(", "))
    };
    let how = match v.reachability {
        Reachability::Public => "yes, directly".to_owned(),
        Reachability::Private if relays.is_empty() => {
            "not from outside this network: ask a member with a server to run `dan relay`, then start with --relay ADDRESS".to_owned()
        }
        Reachability::Private => "only through a relay".to_owned(),
        Reachability::Unknown => "not known yet".to_owned(),
    };
    format!("{how}{through}")
}

/// Peers as text.
pub(crate) fn peers(rows: &[PeerView]) -> String {
    if rows.is_empty() {
        return "no peers seen".into();
    }
    rows.iter()
        .map(|p| {
            let online = if p.online { "online" } else { "offline" };
            let refused = p
                .refused
                .as_ref()
                .map_or(String::new(), |r| format!("  [{}]", text(r)));
            let relayed = if p.connection == Connection::Relayed {
                " (through a relay)"
            } else {
                ""
            };
            let verdict = p.verdict.as_ref().map_or_else(|| "-".into(), json_name);
            format!(
                "{:<54} {online:<8} {verdict}{relayed}{refused}",
                p.peer_id.to_string(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One record as text.
pub(crate) fn record(v: &RecordShown) -> String {
    let r = &v.record;
    let mut lines = vec![
        format!("{}  {}", text(&r.id), text(&r.title)),
        format!("  collection: {}", text(&r.collection)),
    ];
    for (key, value) in &r.fields {
        lines.push(format!("  {}: {}", text(key), text(value)));
    }
    if !r.tags.is_empty() {
        let tags: Vec<String> = r.tags.iter().map(text).collect();
        lines.push(format!("  tags: {}", tags.join(", ")));
    }
    lines.push(format!(
        "  updated: {} by {}",
        format_ms(r.updated_at),
        r.origin
    ));
    if r.deleted {
        lines.push("  (deleted)".into());
    }
    for look_alike in &v.look_alikes {
        lines.push(format!("  note: {}", look_alike_text(look_alike)));
    }
    lines.join("\n")
}

/// One group of a record's look-alike labels, in words.
fn look_alike_text(v: &LookAlikeLabels) -> String {
    let names: Vec<String> = v
        .look_alike
        .names
        .iter()
        .map(|n| format!("\"{}\"", text(n)))
        .collect();
    let kind = match v.of {
        LabelKind::Tag => "tag",
        LabelKind::Field => "field name",
    };
    match v.look_alike.kind {
        dan_core::look_alike::LookAlikeKind::MixesScripts => format!(
            "the {kind} {} mixes letters of different alphabets",
            names.join(", ")
        ),
        dan_core::look_alike::LookAlikeKind::ReadTheSame => format!(
            "the {kind}s {} read the same but are different",
            names.join(" and ")
        ),
    }
}

/// A list of records as a table.
pub(crate) fn record_table(rows: &[RecordView]) -> String {
    if rows.is_empty() {
        return "no records".into();
    }
    rows.iter()
        .map(|r| {
            let deleted = if r.deleted { "  (deleted)" } else { "" };
            format!(
                "{:<26} {:<16} {}{deleted}",
                text(&r.id),
                text(&r.collection),
                text(&r.title)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A record's history as text.
pub(crate) fn history(entries: &[HistoryEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            let mut parts = vec![format!(
                "{}  {:<6} by {} (op {} #{})",
                format_ms(e.at),
                text(&e.kind),
                e.origin,
                short(Some(e.op_id)),
                e.seq,
            )];
            if let Some(title) = &e.title {
                parts.push(format!("    title: {}", text(title)));
            }
            for (key, value) in &e.fields {
                parts.push(format!("    {}: {}", text(key), or_dash(value.as_ref())));
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
        let shown = text(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert!(shown.contains("\\u{1b}[2J") && shown.contains("\\u{a}fake line"));
        assert!(shown.contains("\\u{202e}txt.exe"));
        assert_eq!(terminal_safe("two\nlines", true), "two\nlines");
        assert_eq!(text("Straße 5 · ü"), "Straße 5 · ü");
    }
}
