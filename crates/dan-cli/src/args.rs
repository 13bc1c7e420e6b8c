//! Command-line arguments. Command names, flags and JSON fields are a public
//! contract: keep them, add to them, and document them in README.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dan_core::Hash32;
use dan_node::api::PutRecord;
use dan_node::{RecordQuery, RecordSort};

/// DAN: a Distributed Administration Network instance, headless.
#[derive(Parser, Debug)]
#[command(name = "dan", version, about)]
pub(crate) struct Cli {
    /// The instance's data directory (default: the platform data directory).
    #[arg(long, global = true, env = "DAN_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a new instance: its key and admin password. Prints its peer id.
    Init {
        /// A name for this instance, shown to other admins.
        #[arg(long)]
        name: String,
    },
    /// Run the instance in the foreground until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Run a relay-only service on a machine with a public address (a
    /// small server): instances behind home routers reach each other
    /// through it. It keeps a key in the data directory and no network
    /// data, and prints the address to give to `dan run --relay`.
    Relay {
        /// Address to listen on (repeatable; default: all interfaces, TCP
        /// port 4001).
        #[arg(long = "listen", value_name = "MULTIADDR")]
        listen: Vec<dan_node::net::Multiaddr>,
        /// The address the relay is reached at from the internet
        /// (repeatable), announced instead of the listening ones: for a
        /// server behind a 1:1 NAT or a port forward.
        #[arg(long = "external", value_name = "MULTIADDR")]
        external: Vec<dan_node::net::Multiaddr>,
    },
    /// The relays this instance is reached through (`relays set ADDR...`
    /// replaces them, admin; `relays set` with none stops using relays).
    /// They are kept across restarts; `run --relay` adds to them.
    Relays {
        #[command(subcommand)]
        command: Option<RelaysCommand>,
    },
    /// Show the instance's state, network and roots.
    Status,
    /// Rebuild the records from the signed op log (instance stopped).
    Repair,
    /// Print the code hash (BLAKE3) of this executable or of a file.
    CodeHash {
        /// Another executable to hash.
        path: Option<PathBuf>,
    },
    /// Write the release manifest (`dan-release.json`) of a release's
    /// executables: code hash, version, platform and kind of each. A network
    /// founded from a build it lists approves the whole release.
    ReleaseManifest {
        /// The desktop app's executable.
        #[arg(long)]
        desktop: Option<PathBuf>,
        /// The headless `dan` executable (default: this one).
        #[arg(long)]
        headless: Option<PathBuf>,
        /// The release version (default: this program's).
        #[arg(long)]
        version: Option<String>,
        /// Where to write it (default: `dan-release.json` beside the
        /// headless executable).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create or manage the network.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Issue an invite link (admin); `invite show LINK` reads one, `invite
    /// revoke ID` revokes one.
    Invite(InviteArgs),
    /// List the invites this instance issued.
    Invites,
    /// Join a network through an invite link (admin).
    Join {
        /// The `dan://join/…` link.
        link: String,
        /// Your name as admin, shown to the other admins (default: the
        /// instance name).
        #[arg(long)]
        admin: Option<String>,
        /// Return once the inviter accepted the request, without waiting
        /// for the other members' approvals and the first sync.
        #[arg(long)]
        no_wait: bool,
        /// Leave the current network for this one (e.g. to follow a fork);
        /// the current network's data is archived in the data directory.
        #[arg(long)]
        leave_current_network: bool,
    },
    /// List the evidence seen: who broke which rule, proven or not.
    Evidence,
    /// Sign and gossip a checkpoint (roots and hashes) now.
    Checkpoint,
    /// Propose a change that needs a quorum of admins.
    #[command(subcommand)]
    Propose(ProposeCommand),
    /// Vote on a proposal (admin).
    Vote {
        /// The proposal id (see `dan proposals`).
        id: String,
        /// `yes` or `no`.
        #[arg(value_parser = ["yes", "no"])]
        choice: String,
    },
    /// List proposals and their votes.
    Proposals,
    /// Software upgrades.
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Back up or restore the instance (database and sealed key, encrypted
    /// under the admin password).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Change the admin password.
    #[command(subcommand)]
    Password(PasswordCommand),
    /// Fork the network (admin): found a new network that starts from this
    /// one's records; prints an invite link to it.
    Fork {
        /// The new network's name.
        #[arg(long)]
        name: String,
    },
    /// List the network's members and pending instances.
    Members,
    /// Approve a pending instance (admin).
    Approve {
        /// Its peer id.
        peer_id: String,
    },
    /// Reject a pending instance (admin).
    Reject {
        /// Its peer id.
        peer_id: String,
    },
    /// List the peers seen and what the handshake decided about each.
    Peers,
    /// Browse and edit records.
    #[command(subcommand)]
    Record(RecordCommand),
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Address to listen on (repeatable; default: all interfaces, a free
    /// TCP port and a free QUIC port).
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub(crate) listen: Vec<dan_node::net::Multiaddr>,
    /// Peer to dial at start (a multiaddr ending in /p2p/PEER_ID).
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    pub(crate) bootstrap: Vec<dan_node::net::Multiaddr>,
    /// Do not look for peers on the local network (mDNS).
    #[arg(long)]
    pub(crate) no_mdns: bool,
    /// Do not ask the home router to forward a port (UPnP IGD).
    #[arg(long)]
    pub(crate) no_upnp: bool,
    /// Relay for any instance behind NAT, not only for the members of this
    /// network (which an instance always relays for): an open relay, like
    /// `dan relay`.
    #[arg(long)]
    pub(crate) relay_server: bool,
    /// A relay to be reached through (repeatable): the address `dan relay`
    /// prints, ending in /p2p/RELAY_ID. For an instance behind a home
    /// router that others cannot dial.
    #[arg(long = "relay", value_name = "MULTIADDR")]
    pub(crate) relays: Vec<dan_node::net::Multiaddr>,
    /// Seconds between reconciliation rounds with each peer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) sync_interval: u64,
    /// Rebuild records from the signed op log if the integrity check
    /// finds rows that do not match it.
    #[arg(long)]
    pub(crate) repair: bool,
    /// Do not read or fill the OS keyring cache of the unlock key.
    #[arg(long)]
    pub(crate) no_keyring: bool,
    /// Serve the stored records even if they do not match the signed op
    /// log (for diagnosing a damaged instance: the network will notice and
    /// deprecate it).
    #[arg(long, conflicts_with = "repair")]
    pub(crate) serve_damaged: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RelaysCommand {
    /// Use exactly these relays from now on (admin).
    Set {
        /// Relay addresses as `dan relay` prints them.
        addrs: Vec<String>,
    },
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct InviteArgs {
    #[command(subcommand)]
    pub(crate) command: Option<InviteCommand>,
    /// How many instances may join with the link.
    #[arg(long, default_value_t = 1)]
    pub(crate) uses: u32,
    /// How long the link stays valid: e.g. 30m, 12h, 7d (at most 90d).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub(crate) expires: u64,
    /// A note of whom the link is for ("for Bob"), shown in `dan invites`;
    /// it stays on this instance and is not part of the link.
    #[arg(long)]
    pub(crate) label: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum InviteCommand {
    /// Show what an invite link says before joining with it: network (name
    /// and id), inviter, expiry, whether your version is approved, and
    /// warnings (a look-alike of a network you know, another network than
    /// yours).
    Show {
        /// The `dan://join/…` link.
        link: String,
    },
    /// Revoke an invite so nobody can join with it any more.
    Revoke {
        /// The invite id (see `dan invites`).
        id: String,
    },
}

/// Parses `90s`, `30m`, `12h`, `7d` (or plain seconds) into seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30m, 12h or 7d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is not a duration like 30m, 12h or 7d")),
    };
    value
        .checked_mul(factor)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("`{text}` is out of range"))
}

#[derive(Subcommand, Debug)]
pub(crate) enum BackupCommand {
    /// Write an encrypted backup of the running instance (admin).
    Export {
        /// The backup file to write.
        file: PathBuf,
    },
    /// Restore a backup into the data directory (instance stopped). Ops
    /// signed after the backup are recovered from peers on the next start.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum PasswordCommand {
    /// Change the admin password (old from DAN_ADMIN_PASSWORD or a prompt,
    /// new from DAN_NEW_ADMIN_PASSWORD or asked twice).
    Change,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ProposeCommand {
    /// Propose to remove a member (admin).
    Remove {
        /// Its peer id.
        peer_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum UpgradeCommand {
    /// Propose approving new builds (admin); older builds stay approved
    /// for the grace period after the decision, then those still running
    /// them are suspended until they upgrade.
    Propose {
        /// Code hash of a new build (repeatable; see `dan code-hash PATH`).
        #[arg(long = "code-hash", value_parser = parse_hash, required_unless_present = "manifest")]
        code_hashes: Vec<Hash32>,
        /// A release manifest: approve (and name) every build it lists.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// How long older builds stay approved: e.g. 30m, 12h, 7d.
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        grace: u64,
    },
    /// Propose approving more builds alongside those approved now (admin):
    /// another version, platform or the desktop/headless twin; nothing is
    /// withdrawn.
    Add {
        /// An approval request (the JSON line a joiner on another build
        /// copies), or the path of a release manifest or of an executable.
        source: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum NetworkCommand {
    /// Found a new network with this instance as its first member (admin).
    Create {
        /// The network's name.
        #[arg(long)]
        name: String,
        /// Members needed before records are accepted (default 3; lower
        /// values are for trials on one machine).
        #[arg(long)]
        min_members: Option<u32>,
        /// Also approve this code hash (e.g. the desktop app's build).
        #[arg(long = "approve-code-hash", value_parser = parse_hash)]
        approve_code_hash: Vec<Hash32>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RecordCommand {
    /// Create a record, or change one with --id. Prints the record id.
    Put(PutArgs),
    /// Show one record.
    Get {
        /// The record id.
        id: String,
    },
    /// List records.
    List(ListArgs),
    /// Delete a record (its history is kept; `restore` brings it back).
    Delete {
        /// The record id.
        id: String,
    },
    /// Bring a deleted record back (`record list --deleted` shows them).
    Restore {
        /// The record id.
        id: String,
    },
    /// Show every change made to a record.
    History {
        /// The record id.
        id: String,
    },
    /// Create or change many records from a file: JSON lines (one object
    /// per line with `collection`, `title`, `fields`, `tags` and optionally
    /// `id`, as `record export` writes them) or CSV (a header row: `id`,
    /// `collection`, `title`, `tags` separated by commas, and one column
    /// per field, `name:int` or `name:bool` for whole numbers or
    /// true/false); `-` reads from standard input. A bad row stops it
    /// before anything is stored; stored in batches of up to 1000, each
    /// whole or not at all.
    Import {
        /// The file (`-`: standard input).
        file: PathBuf,
        /// Start at this line (to go on after an import stopped part way).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        from_line: u64,
        /// `jsonl` or `csv` (default: `csv` for a file ending in `.csv`).
        #[arg(long)]
        format: Option<dan_node::bulk::BulkFormat>,
    },
    /// Write every record (not deleted) to standard output, as JSON lines
    /// or CSV, for `record import` on another network or a spreadsheet.
    Export {
        /// Only this collection.
        #[arg(long)]
        collection: Option<String>,
        /// `jsonl` (the default) or `csv`.
        #[arg(long, default_value = "jsonl")]
        format: dan_node::bulk::BulkFormat,
    },
}

#[derive(Args, Debug)]
pub(crate) struct PutArgs {
    /// The record to change (a new record is created if it does not exist).
    #[arg(long)]
    id: Option<String>,
    /// The collection (required for a new record).
    #[arg(long)]
    collection: Option<String>,
    /// The title (required for a new record).
    #[arg(long)]
    title: Option<String>,
    /// A field: KEY=TEXT, or KEY:=JSON for a number or true/false.
    #[arg(long = "field", value_name = "KEY=VALUE")]
    fields: Vec<String>,
    /// Remove a field.
    #[arg(long = "remove-field", value_name = "KEY")]
    remove_fields: Vec<String>,
    /// A tag (repeat for several; replaces the record's tags).
    #[arg(long = "tag")]
    tags: Vec<String>,
}

impl PutArgs {
    pub(crate) fn into_request(self) -> anyhow::Result<PutRecord> {
        let mut fields = BTreeMap::new();
        for field in &self.fields {
            let (key, value) = dan_node::api::parse_field_arg(field)?;
            fields.insert(key, Some(value));
        }
        for key in self.remove_fields {
            fields.insert(key, None);
        }
        let tags = (!self.tags.is_empty()).then(|| self.tags.into_iter().collect::<BTreeSet<_>>());
        Ok(PutRecord {
            id: self.id,
            collection: self.collection,
            title: self.title,
            fields,
            tags,
        })
    }
}

/// Sort orders for `record list`.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum SortArg {
    /// Most recently changed first.
    Updated,
    /// Least recently changed first.
    Oldest,
    /// By title, A to Z.
    Title,
    /// By title, Z to A.
    TitleDesc,
    /// Newest first.
    Created,
    /// By record id (what `--after` pages through).
    Id,
}

#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Only this collection.
    #[arg(long)]
    collection: Option<String>,
    /// Only records whose title or fields contain this text.
    #[arg(long)]
    search: Option<String>,
    /// Include deleted records.
    #[arg(long)]
    deleted: bool,
    /// Order.
    #[arg(long, value_enum, default_value = "updated")]
    sort: SortArg,
    /// At most this many.
    #[arg(long, default_value_t = 0)]
    limit: u32,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Only records whose id sorts after this one: with `--sort id`, the
    /// next page after the last id read.
    #[arg(long, value_name = "ID")]
    after: Option<String>,
}

impl ListArgs {
    pub(crate) fn into_query(self) -> RecordQuery {
        RecordQuery {
            collection: self.collection,
            search: self.search,
            include_deleted: self.deleted,
            sort: match self.sort {
                SortArg::Updated => RecordSort::UpdatedDesc,
                SortArg::Oldest => RecordSort::UpdatedAsc,
                SortArg::Title => RecordSort::TitleAsc,
                SortArg::TitleDesc => RecordSort::TitleDesc,
                SortArg::Created => RecordSort::CreatedDesc,
                SortArg::Id => RecordSort::IdAsc,
            },
            limit: self.limit,
            offset: self.offset,
            after_id: self.after,
        }
    }
}

fn parse_hash(text: &str) -> Result<Hash32, String> {
    text.parse()
        .map_err(|e: dan_core::hash::BadHash| e.to_string())
}

/// The platform's data directory for DAN (e.g. ~/.local/share/dan).
pub(crate) fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "dan", "dan").map(|dirs| dirs.data_dir().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
