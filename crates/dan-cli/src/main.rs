//! # dan
//!
//! The headless DAN instance. `dan init` and `dan run` manage the instance
//! in a data directory; every other command talks to the running instance
//! of the same directory through its local control channel.

mod args;
mod output;
mod password;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dan_node::ErrorCode;
use dan_node::control::{ControlClient, ControlError};
use dan_node::operation as op;
use dan_node::{Credentials, Node, NodeConfig, NodeError, OnDamage};
use serde::Serialize;

use args::{
    BackupCommand, Cli, Command, InviteCommand, NetworkCommand, PasswordCommand, ProposeCommand,
    RecordCommand, RelaysCommand, RunArgs, UpgradeCommand,
};
use output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Run { .. } | Command::Relay { .. }) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    let printer = Printer { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            printer.error(ErrorCode::Io, &format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli, &printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            printer.error(failure.code, &failure.message);
            ExitCode::FAILURE
        }
    }
}

/// A failed command: a stable code and a message for people.
struct Failure {
    code: ErrorCode,
    message: String,
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        Failure {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Failure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            code: ErrorCode::Error,
            message: format!("{e:#}"),
        }
    }
}

/// `dan init`: the new instance.
#[derive(Serialize)]
struct Initialized {
    peer_id: dan_core::PeerKey,
    name: String,
}

/// `dan backup restore`: the backup put back.
#[derive(Serialize)]
struct Restored {
    restored: std::path::PathBuf,
}

/// `dan fork`: the new network and an invite to it.
#[derive(Serialize)]
struct ForkedWithInvite {
    #[serde(flatten)]
    forked: op::Forked,
    invite: String,
}

/// `dan relay`: where the relay can be reached.
#[derive(Serialize)]
struct RelayAddr {
    relay_addr: String,
}

async fn execute(cli: Cli, printer: &Printer) -> Result<(), Failure> {
    let data_dir = match cli.data_dir {
        Some(dir) => dir,
        None => args::default_data_dir()
            .context("no data directory given and no default one on this system")?,
    };
    let client = ControlClient::new(&data_dir);
    match cli.command {
        Command::Init { name } => {
            let password = password::new_password()?;
            let peer = Node::init(&data_dir, &name, &password).await?;
            let made = Initialized {
                peer_id: peer,
                name,
            };
            printer.value(&made, |made| made.peer_id.to_string())?;
        }
        Command::Run(args) => run(&data_dir, args).await?,
        Command::Relay { listen, external } => relay(&data_dir, listen, external, printer).await?,
        Command::Relays { command } => {
            let relays = match command {
                Some(RelaysCommand::Set { addrs }) => {
                    let password = password::admin_password()?;
                    client
                        .ask(op::SetRelays {
                            relays: addrs,
                            password,
                        })
                        .await?
                }
                None => client.ask(op::Status {}).await?.relays,
            };
            printer.value(relays.as_slice(), output::relays)?;
        }
        Command::Repair => {
            let mut config = NodeConfig::new(&data_dir);
            config.on_damage = OnDamage::Repair;
            let node = open_node(config, false).await?;
            let report = node.integrity();
            node.close().await;
            printer.value(&report, |report| {
                if report.is_clean() {
                    report.to_string()
                } else {
                    format!("{report}\nRepaired: the records were rebuilt from the signed op log.")
                }
            })?;
        }
        Command::Status => {
            let status = client.ask(op::Status {}).await?;
            printer.value(&status, output::status)?;
        }
        Command::CodeHash { path } => {
            let hash = match path {
                Some(path) => dan_node::hash_file(&path)?,
                None => dan_node::code_hash()?,
            };
            printer.value(&hash, |hash| hash.to_hex())?;
        }
        Command::ReleaseManifest {
            desktop,
            headless,
            version,
            out,
        } => {
            let headless = match headless {
                Some(path) => path,
                None => std::env::current_exe().context("finding this executable")?,
            };
            let out = match out {
                Some(out) => out,
                None => headless.with_file_name(dan_node::release::MANIFEST_FILE),
            };
            let mut executables = vec![(dan_core::BuildKind::Headless, headless)];
            executables.extend(desktop.map(|d| (dan_core::BuildKind::Desktop, d)));
            let version = version.unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
            let manifest = dan_node::release::ReleaseManifest::make(&version, &executables)?;
            manifest.write(&out)?;
            printer.value(&manifest, |_| format!("wrote {}", out.display()))?;
        }
        Command::Network(NetworkCommand::Create {
            name,
            min_members,
            approve_code_hash,
        }) => {
            let password = password::admin_password()?;
            let network = dan_node::api::CreateNetwork {
                name,
                min_members,
                approve_code: approve_code_hash,
            };
            let status = client.ask(op::CreateNetwork { network, password }).await?;
            printer.value(&status, output::status)?;
        }
        Command::Record(command) => record(&client, printer, command).await?,
        Command::Invite(args) => match args.command {
            Some(InviteCommand::Show { link }) => {
                let preview = client.ask(op::PreviewInvite { link }).await?;
                printer.value(&preview, output::invite_preview)?;
            }
            Some(InviteCommand::Revoke { id }) => {
                let password = password::admin_password()?;
                let done = client.ask(op::RevokeInvite { id, password }).await?;
                printer.value(&done, |done| {
                    format!("revoked invite {}", output::text(&done.revoked))
                })?;
            }
            None => {
                let password = password::admin_password()?;
                let invite = dan_node::membership::InviteRequest {
                    uses: Some(args.uses),
                    expires_secs: Some(args.expires),
                    label: args.label,
                };
                let stored = client.ask(op::Invite { invite, password }).await?;
                printer.value(&stored, |stored| output::text(&stored.invite.link))?;
            }
        },
        Command::Invites => {
            let invites = client.ask(op::Invites {}).await?;
            printer.value(invites.as_slice(), output::invites)?;
        }
        Command::Join {
            link,
            admin,
            no_wait,
            leave_current_network,
        } => {
            let password = password::admin_password()?;
            let progress = client
                .ask(op::Join {
                    link,
                    admin_name: admin,
                    password,
                    leave_current: leave_current_network,
                })
                .await?;
            if no_wait {
                printer.value(&progress, output::join_progress)?;
            } else {
                if !printer.json {
                    eprintln!(
                        "{}",
                        output::terminal_safe(&output::join_progress(&progress), true)
                    );
                }
                let status = wait_for_admission(&client, printer).await?;
                printer.value(&status, output::status)?;
            }
        }
        Command::Members => {
            let members = client.ask(op::Members {}).await?;
            printer.value(members.as_slice(), output::members)?;
        }
        Command::Approve { peer_id } => {
            let password = password::admin_password()?;
            let member = client
                .ask(op::Approve {
                    peer: peer_id,
                    password,
                })
                .await?;
            printer.value(&member, output::member_line)?;
        }
        Command::Reject { peer_id } => {
            let password = password::admin_password()?;
            let member = client
                .ask(op::Reject {
                    peer: peer_id,
                    password,
                })
                .await?;
            printer.value(&member, output::member_line)?;
        }
        Command::Evidence => {
            let evidence = client.ask(op::Evidence {}).await?;
            printer.value(evidence.as_slice(), output::evidence)?;
        }
        Command::Checkpoint => {
            let checkpoint = client.ask(op::Checkpoint {}).await?;
            printer.value(&checkpoint, output::checkpoint)?;
        }
        Command::Propose(ProposeCommand::Remove { peer_id }) => {
            let password = password::admin_password()?;
            let proposal = client
                .ask(op::ProposeRemove {
                    peer: peer_id,
                    password,
                })
                .await?;
            printer.value(&proposal, output::proposal)?;
        }
        Command::Vote { id, choice } => {
            let password = password::admin_password()?;
            let id = id
                .parse()
                .map_err(|e: dan_core::hash::BadHash| anyhow::anyhow!("{e}"))?;
            let proposal = client
                .ask(op::Vote {
                    id,
                    approve: choice == "yes",
                    password,
                })
                .await?;
            printer.value(&proposal, output::proposal)?;
        }
        Command::Proposals => {
            let proposals = client.ask(op::Proposals {}).await?;
            printer.value(proposals.as_slice(), output::proposals)?;
        }
        Command::Upgrade(UpgradeCommand::Propose {
            code_hashes,
            manifest,
            grace,
        }) => {
            let builds = match manifest {
                Some(path) => dan_node::release::ReleaseManifest::read(&path)?.labels(),
                None => Default::default(),
            };
            let password = password::admin_password()?;
            let proposal = client
                .ask(op::ProposeUpgrade {
                    code_hashes,
                    builds,
                    grace_secs: grace,
                    password,
                })
                .await?;
            printer.value(&proposal, output::proposal)?;
        }
        Command::Upgrade(UpgradeCommand::Add { source }) => {
            let source = if source.trim_start().starts_with('{') {
                source
            } else {
                std::path::absolute(&source)
                    .context("resolving the path")?
                    .to_string_lossy()
                    .into_owned()
            };
            let password = password::admin_password()?;
            let proposal = client.ask(op::ProposeBuilds { source, password }).await?;
            printer.value(&proposal, output::proposal)?;
        }
        Command::Backup(BackupCommand::Export { file }) => {
            let password = password::admin_password()?;
            let path = std::path::absolute(&file).context("resolving the backup path")?;
            let done = client.ask(op::BackupExport { path, password }).await?;
            printer.value(&done, |done| {
                format!(
                    "backup written to {} ({} bytes)",
                    output::text(done.path.display()),
                    done.bytes
                )
            })?;
        }
        Command::Backup(BackupCommand::Restore { file }) => {
            let password = password::admin_password()?;
            Node::restore_backup(&data_dir, &file, &password).await?;
            printer.value(&Restored { restored: file }, |done| {
                format!(
                    "restored {}; start the instance with `dan run`",
                    output::text(done.restored.display())
                )
            })?;
        }
        Command::Password(PasswordCommand::Change) => {
            let old = password::admin_password()?;
            let new = password::replacement_password()?;
            let done = client.ask(op::ChangePassword { old, new }).await?;
            printer.value(&done, |_| "admin password changed".into())?;
        }
        Command::Fork { name } => {
            let password = password::admin_password()?;
            let forked = client
                .ask(op::Fork {
                    name,
                    password: password.clone(),
                })
                .await?;
            let invite = dan_node::membership::InviteRequest {
                uses: Some(10),
                expires_secs: None,
                label: Some("fork".into()),
            };
            let stored = client.ask(op::Invite { invite, password }).await?;
            let answer = ForkedWithInvite {
                forked,
                invite: stored.invite.link,
            };
            printer.value(&answer, |v| {
                format!(
                    "forked into \"{}\" ({}); invite other admins with:\n{}",
                    output::text(&v.forked.network_name),
                    v.forked.network_id,
                    output::text(&v.invite)
                )
            })?;
        }
        Command::Peers => {
            let peers = client.ask(op::Peers {}).await?;
            printer.value(peers.as_slice(), output::peers)?;
        }
    }
    Ok(())
}

/// Polls the instance until it is admitted and has caught up, showing the
/// approvals and a progress bar of the first sync on stderr.
async fn wait_for_admission(
    client: &ControlClient,
    printer: &Printer,
) -> Result<dan_node::api::Status, Failure> {
    let mut last_line = String::new();
    loop {
        let status = client.ask(op::Status {}).await?;
        let line = output::waiting_line(&status);
        if !printer.json && line != last_line {
            eprint!("\r{line:<72}");
            last_line = line;
        }
        let admitted = status.state != dan_node::api::NetworkState::Pending;
        if admitted && status.missing_ops == 0 && status.last_sync.is_some() {
            if !printer.json {
                eprintln!();
            }
            return Ok(status);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn record(
    client: &ControlClient,
    printer: &Printer,
    command: RecordCommand,
) -> Result<(), Failure> {
    match command {
        RecordCommand::Put(put) => {
            let record = put.into_request()?;
            let view = client.ask(op::PutRecord { record }).await?;
            printer.value(&view, |view| output::text(&view.id))?;
        }
        RecordCommand::Get { id } => {
            let view = client.ask(op::GetRecord { id }).await?;
            printer.value(&view, output::record)?;
        }
        RecordCommand::List(list) => {
            let views = client
                .ask(op::ListRecords {
                    query: list.into_query(),
                })
                .await?;
            printer.value(views.as_slice(), output::record_table)?;
        }
        RecordCommand::Delete { id } => {
            let view = client.ask(op::DeleteRecord { id }).await?;
            printer.value(&view, |view| format!("deleted {}", output::text(&view.id)))?;
        }
        RecordCommand::Restore { id } => {
            let view = client.ask(op::RestoreRecord { id }).await?;
            printer.value(&view, |view| format!("restored {}", output::text(&view.id)))?;
        }
        RecordCommand::History { id } => {
            let entries = client.ask(op::History { id }).await?;
            printer.value(entries.as_slice(), output::history)?;
        }
        RecordCommand::Import {
            file,
            from_line,
            format,
        } => {
            let format = format.unwrap_or_else(|| dan_node::bulk::BulkFormat::for_path(&file));
            let imported = import_records(client, &file, from_line, format).await?;
            printer.value(&op::Imported { imported }, |done| {
                format!("imported {} records", done.imported)
            })?;
        }
        RecordCommand::Export { collection, format } => {
            export_records(client, collection, format).await?
        }
    }
    Ok(())
}

/// Reads the records of `file` (or standard input) in `format`, from line
/// `from_line` on, and stores them in batches; says on stderr how far it
/// got. A row that is not a record stops the import before anything is
/// sent; a batch the instance refuses stops it there, with the earlier
/// batches stored and the line to go on from in the error.
async fn import_records(
    client: &ControlClient,
    file: &std::path::Path,
    from_line: u64,
    format: dan_node::bulk::BulkFormat,
) -> Result<u64, Failure> {
    use dan_node::bulk;
    let file = if file.as_os_str() == "-" {
        bulk::ImportFile::read(std::io::stdin().lock(), format, from_line)
    } else {
        bulk::ImportFile::open(file, format, from_line)
    }
    .map_err(anyhow::Error::from)?;
    bulk::import_rows(
        &file,
        |records| async move {
            client
                .ask(op::ImportRecords { records })
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        },
        |progress| {
            if let Some(total) = progress.total {
                eprintln!("imported {} of {total}", progress.done);
            }
        },
    )
    .await
    .map_err(|error| match error {
        bulk::BulkError::Batch { from_line, .. } => {
            anyhow::anyhow!("{error} (`--from-line {from_line}`)").into()
        }
        other => anyhow::Error::from(other).into(),
    })
}

/// Writes every record that is not deleted to standard output in
/// `format`, in pages by id (`bulk::export_records`).
async fn export_records(
    client: &ControlClient,
    collection: Option<String>,
    format: dan_node::bulk::BulkFormat,
) -> Result<(), Failure> {
    use dan_node::bulk;
    let mut out = std::io::stdout().lock();
    bulk::export_records(
        format,
        collection,
        |query| async move {
            client
                .ask(op::ListRecords { query })
                .await
                .map_err(|e| e.to_string())
        },
        &mut out,
        None,
        |_| {},
    )
    .await
    .map_err(anyhow::Error::from)?;
    Ok(())
}

async fn open_node(config: NodeConfig, use_keyring: bool) -> Result<Node, Failure> {
    let first = Credentials {
        password: password::password_from_env(),
        use_keyring,
    };
    match Node::open(config.clone(), first).await {
        Err(NodeError::PasswordNeeded) => {
            let credentials = Credentials {
                password: Some(password::prompt_admin_password()?),
                use_keyring,
            };
            Ok(Node::open(config, credentials).await?)
        }
        other => Ok(other?),
    }
}

async fn run(data_dir: &std::path::Path, args: RunArgs) -> Result<(), Failure> {
    let mut config = NodeConfig::new(data_dir);
    if args.repair {
        config.on_damage = OnDamage::Repair;
    }
    if args.serve_damaged {
        config.on_damage = OnDamage::ServeDamaged;
    }
    let node = open_node(config, !args.no_keyring).await?;
    node.remember_relays(&args.relays).await?;
    let mut net_config = dan_node::net::NetConfig {
        mdns: !args.no_mdns,
        relay_server: args.relay_server,
        upnp: !args.no_upnp,
        sync_interval: std::time::Duration::from_secs(args.sync_interval),
        bootstrap: args.bootstrap,
        relays: args.relays,
        ..Default::default()
    };
    if !args.listen.is_empty() {
        net_config.listen = args.listen;
    }
    dan_node::net::start(&node, net_config).await?;
    tracing::info!(
        peer_id = %node.peer_id(),
        data_dir = %node.data_dir().display(),
        "DAN instance running; stop it with Ctrl-C"
    );
    let served = dan_node::control::serve(node.clone(), shutdown_signal()).await;
    node.stop().await;
    tracing::info!("DAN instance stopped");
    Ok(served?)
}

async fn relay(
    data_dir: &std::path::Path,
    listen: Vec<dan_node::net::Multiaddr>,
    external: Vec<dan_node::net::Multiaddr>,
    printer: &Printer,
) -> Result<(), Failure> {
    let listen = if listen.is_empty() {
        vec!["/ip4/0.0.0.0/tcp/4001".parse().context("default address")?]
    } else {
        listen
    };
    let config = dan_node::net::relay::RelayConfig {
        data_dir: data_dir.to_owned(),
        listen,
        external,
    };
    let print = |address: dan_node::net::Multiaddr| {
        let relay = RelayAddr {
            relay_addr: address.to_string(),
        };
        let printed = printer.value(&relay, |relay| {
            format!("relay reachable at {}", relay.relay_addr)
        });
        if let Err(e) = printed {
            tracing::warn!("{e:#}");
        }
    };
    tracing::info!("DAN relay running; stop it with Ctrl-C");
    dan_node::net::relay::serve_relay(&config, print, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
