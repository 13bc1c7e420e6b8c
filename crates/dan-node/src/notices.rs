//! What deserves a person's attention while the window is not in front of
//! them: someone asking to join, a vote opened or decided, the network out
//! of reach. The desktop app turns these into OS notifications; the rules
//! of what is news live here, once, next to the views they read.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::{Hash32, MemberStatus, PeerKey, ProposalStatus};
use serde::Serialize;

use crate::membership::MemberView;
use crate::node::Node;
use crate::proposals::ProposalView;

/// What needs attention now (a snapshot; see [`Attention::news_since`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attention {
    /// Instances waiting for admission: who, and the admin's name.
    pub waiting: BTreeMap<PeerKey, (String, String)>,
    /// Open proposals and what they say.
    pub open: BTreeMap<Hash32, String>,
    /// Proposals decided, and how.
    pub decided: BTreeMap<Hash32, (String, ProposalStatus, Option<u64>)>,
    /// Whether any member is connected now (None: not part of a network).
    pub connected: Option<bool>,
}

/// One thing to tell a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// A short title.
    pub title: String,
    /// One or two sentences.
    pub body: String,
}

impl Attention {
    /// Builds the snapshot from the member and proposal views, and whether
    /// this instance is in a network with any member connected.
    pub fn from_views(
        members: &[MemberView],
        proposals: &[ProposalView],
        connected: Option<bool>,
    ) -> Attention {
        Attention {
            waiting: members
                .iter()
                .filter(|m| m.status == MemberStatus::Pending && !m.is_self)
                .map(|m| (m.peer_id, (m.name.clone(), m.admin_name.clone())))
                .collect(),
            open: proposals
                .iter()
                .filter(|p| p.status == ProposalStatus::Open)
                .map(|p| (p.id, p.summary.clone()))
                .collect(),
            decided: proposals
                .iter()
                .filter(|p| p.status != ProposalStatus::Open)
                .map(|p| (p.id, (p.summary.clone(), p.status, p.withdraws_at)))
                .collect(),
            connected,
        }
    }

    /// One line saying what waits for the person now, for the tray menu:
    /// "2 requests to join · 1 vote open", "No member connected", or
    /// "Nothing waits for you".
    pub fn summary(&self) -> String {
        let count = |n: usize, one: &str, many: &str| match n {
            0 => None,
            1 => Some(format!("1 {one}")),
            n => Some(format!("{n} {many}")),
        };
        let mut parts: Vec<String> = [
            count(self.waiting.len(), "request to join", "requests to join"),
            count(self.open.len(), "vote open", "votes open"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.connected == Some(false) {
            parts.push("No member connected".into());
        }
        if parts.is_empty() {
            return match self.connected {
                None => "Not in a network yet".into(),
                Some(_) => "Nothing waits for you".into(),
            };
        }
        parts.join(" · ")
    }

    /// What is new in `self` since `before`, to tell a person.
    pub fn news_since(&self, before: &Attention) -> Vec<Notice> {
        let mut news = Vec::new();
        for (peer, (name, admin)) in &self.waiting {
            if !before.waiting.contains_key(peer) {
                let (name, admin) = (plain(name, ""), plain(admin, ""));
                news.push(if name.is_empty() || admin.is_empty() {
                    Notice {
                        title: "Someone asks to join".into(),
                        body: "An instance whose name reads like a web or mail address waits for the admins' approval. Open DAN to see who it is, compare their join code and approve or reject.".into(),
                    }
                } else {
                    Notice {
                        title: format!("{admin} asks to join"),
                        body: format!(
                            "{name} ({admin}) waits for the admins' approval. Open DAN to compare their join code and approve or reject."
                        ),
                    }
                });
            }
        }
        for (id, summary) in &self.open {
            if !before.open.contains_key(id) && !before.decided.contains_key(id) {
                news.push(Notice {
                    title: "A vote is open".into(),
                    body: format!(
                        "{}. Open DAN to vote.",
                        plain(summary, "A proposal waits for your vote")
                    ),
                });
            }
        }
        let opened_before: BTreeSet<&Hash32> = before.open.keys().collect();
        for (id, (summary, status, withdraws_at)) in &self.decided {
            if before.decided.contains_key(id) || !opened_before.contains(id) {
                continue;
            }
            let outcome = match status {
                ProposalStatus::Passed => "passed",
                _ => "was rejected",
            };
            let deadline = match (status, withdraws_at) {
                (ProposalStatus::Passed, Some(at)) => format!(
                    " Old versions stop being accepted {}; install the new version before then.",
                    when(*at)
                ),
                _ => String::new(),
            };
            news.push(Notice {
                title: format!("Vote {outcome}"),
                body: format!("{}.{deadline}", plain(summary, "A proposal")),
            });
        }
        if before.connected == Some(true) && self.connected == Some(false) {
            news.push(Notice {
                title: "DAN lost the network".into(),
                body: "No other member is connected: changes made here wait until one is back."
                    .into(),
            });
        }
        news
    }
}

/// Text a peer chose (a name, a reason), safe in a notification: no
/// control characters and no markup (notification servers read `<b>`,
/// `<a href>` and `&…;` in the body), at most 120 characters; and, since
/// some desktops make web and mail addresses in a notification clickable,
/// `instead` where the text reads like one.
fn plain(text: &str, instead: &str) -> String {
    let text: String = text
        .chars()
        .filter(|c| dan_core::invite::is_plain_char(*c) && !matches!(c, '<' | '>' | '&'))
        .take(120)
        .collect();
    if reads_like_an_address(&text) {
        instead.to_owned()
    } else {
        text
    }
}

/// Whether a desktop could take some of `text` for a web or mail address:
/// a scheme (`https://`), `www.`, an `@`, or a dot between a letter or digit
/// and two letters (`bank.example`). Dots and `@`s that IDNA or a desktop
/// reads as such count, and marks or symbols between the letters and the
/// dot (`bank\u{34f}.com`) are looked through.
fn reads_like_an_address(text: &str) -> bool {
    const DOTS: [char; 4] = ['.', '\u{ff0e}', '\u{3002}', '\u{ff61}'];
    const ATS: [char; 3] = ['@', '\u{ff20}', '\u{fe6b}'];
    let lower: String = text
        .to_lowercase()
        .chars()
        .filter(|c| {
            c.is_alphanumeric()
                || c.is_whitespace()
                || c.is_ascii_punctuation()
                || DOTS.contains(c)
                || ATS.contains(c)
        })
        .collect();
    if lower.contains("://") || lower.contains("www.") || lower.contains(ATS) {
        return true;
    }
    let chars: Vec<char> = lower.chars().collect();
    chars.windows(4).any(|w| {
        w[0].is_alphanumeric()
            && DOTS.contains(&w[1])
            && w[2].is_alphabetic()
            && w[3].is_alphabetic()
    })
}

/// A moment, for a notification (UTC; the window shows local time).
fn when(ms: u64) -> String {
    let t = crate::utc::Utc::from_ms(ms);
    format!(
        "on {:04}-{:02}-{:02} at {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

impl Node {
    /// What needs a person's attention now (see [`Attention`]).
    pub async fn attention(&self) -> Attention {
        let status = self.status().await;
        let in_network = status.network_id.is_some();
        let members = self.members().await.unwrap_or_default();
        let proposals = self.proposals().await.unwrap_or_default();
        Attention::from_views(
            &members,
            &proposals,
            in_network.then_some(status.online_peers > 0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Attention, when};
    use dan_core::{Hash32, Keypair, ProposalStatus};

    fn waiting(name: &str) -> Attention {
        let mut attention = Attention::default();
        attention.waiting.insert(
            Keypair::from_secret([7; 32]).public(),
            (format!("{name} laptop"), name.to_owned()),
        );
        attention
    }

    #[test]
    fn a_join_request_a_vote_and_its_outcome_are_news_once() {
        let before = Attention::default();
        let asked = waiting("Bea");
        let news = asked.news_since(&before);
        assert_eq!(news.len(), 1);
        assert_eq!(news[0].title, "Bea asks to join");
        assert!(asked.news_since(&asked).is_empty(), "not twice");

        let id = Hash32::of(b"proposal");
        let mut open = Attention::default();
        open.open.insert(id, "Remove Mallory".into());
        assert_eq!(open.news_since(&before)[0].title, "A vote is open");
        let mut passed = Attention::default();
        passed.decided.insert(
            id,
            (
                "Approve DAN 0.2.0".into(),
                ProposalStatus::Passed,
                Some(86_400_000),
            ),
        );
        let news = passed.news_since(&open);
        assert_eq!(news[0].title, "Vote passed");
        assert!(
            news[0].body.contains("on 1970-01-02 at 00:00 UTC"),
            "{}",
            news[0].body
        );
        assert!(
            passed.news_since(&before).is_empty(),
            "a decision never seen open (at start) is old news"
        );
    }

    #[test]
    fn bad_input_a_joiner_name_carries_no_markup_or_control_characters_into_a_notification() {
        let mut asked = Attention::default();
        asked.waiting.insert(
            Keypair::from_secret([9; 32]).public(),
            (
                "<a href=\"https://evil.example\">Bank</a>\u{1b}[2J".into(),
                "Eve & co\n\u{202e}\u{200b}".into(),
            ),
        );
        let news = asked.news_since(&Attention::default());
        for text in [&news[0].title, &news[0].body] {
            assert!(
                !text.contains(['<', '>', '&', '\u{1b}', '\n', '\u{202e}', '\u{200b}']),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_input_names_that_read_like_web_or_mail_addresses_are_not_put_in_a_notification() {
        for address in [
            "https://bank.example/login",
            "www.bank",
            "support@bank",
            "bank.example",
            "Bank\u{ff0e}com",
            // Second attacker review: a halfwidth dot, a mark before the
            // dot, a fullwidth `@`.
            "bank\u{ff61}com",
            "bank\u{34f}.com",
            "support\u{ff20}bank",
        ] {
            let mut asked = Attention::default();
            asked.waiting.insert(
                Keypair::from_secret([9; 32]).public(),
                (address.into(), address.into()),
            );
            let news = asked.news_since(&Attention::default());
            assert_eq!(news[0].title, "Someone asks to join", "{address}");
            assert!(!news[0].body.contains(address), "{}", news[0].body);
        }
        for name in ["Bea's laptop", "St. Mary library", "DAN 0.1.2", "Åsa"] {
            assert!(!super::reads_like_an_address(name), "{name}");
        }
    }

    #[test]
    fn losing_every_member_is_news_but_starting_alone_is_not() {
        let online = Attention {
            connected: Some(true),
            ..Attention::default()
        };
        let offline = Attention {
            connected: Some(false),
            ..Attention::default()
        };
        assert_eq!(offline.news_since(&online)[0].title, "DAN lost the network");
        assert!(offline.news_since(&Attention::default()).is_empty());
        assert!(online.news_since(&offline).is_empty());
        assert_eq!(when(0), "on 1970-01-01 at 00:00 UTC");
    }

    #[test]
    fn the_summary_counts_what_waits_in_one_line() {
        assert_eq!(Attention::default().summary(), "Not in a network yet");
        let mut attention = waiting("Bea");
        attention.connected = Some(true);
        assert_eq!(attention.summary(), "1 request to join");
        attention.waiting.insert(
            Keypair::from_secret([8; 32]).public(),
            ("c".into(), "Carl".into()),
        );
        attention
            .open
            .insert(Hash32::of(b"vote"), "Remove Dan".into());
        assert_eq!(attention.summary(), "2 requests to join · 1 vote open");
        attention.connected = Some(false);
        assert_eq!(
            attention.summary(),
            "2 requests to join · 1 vote open · No member connected"
        );
        let quiet = Attention {
            connected: Some(true),
            ..Attention::default()
        };
        assert_eq!(quiet.summary(), "Nothing waits for you");
    }
}
