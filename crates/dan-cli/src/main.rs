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
use dan_node::control::{ControlClient, ControlError, ControlRequest};
use dan_node::{Credentials, Node, NodeConfig, NodeError, OnDamage};
use serde_json::Value;

use args::{Cli, Command, NetworkCommand, RecordCommand};
use output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Run { .. }) {
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
            printer.error("io", &format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli, &printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            printer.error(&failure.code, &failure.message);
            ExitCode::FAILURE
        }
    }
}

/// A failed command: a stable code and a message for people.
struct Failure {
    code: String,
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
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            code: "error".into(),
            message: format!("{e:#}"),
        }
    }
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
            printer.value(
                &serde_json::json!({ "peer_id": peer.to_string(), "name": name }),
                |_| peer.to_string(),
            );
        }
        Command::Run { repair, no_keyring } => {
            let mut config = NodeConfig::new(&data_dir);
            if repair {
                config.on_damage = OnDamage::Repair;
            }
            run(config, !no_keyring).await?;
        }
        Command::Repair => {
            let mut config = NodeConfig::new(&data_dir);
            config.on_damage = OnDamage::Repair;
            let node = open_node(config, false).await?;
            let report = node.integrity().clone();
            node.close().await;
            printer.value(
                &serde_json::to_value(&report).unwrap_or(Value::Null),
                |_| {
                    if report.is_clean() {
                        report.to_string()
                    } else {
                        format!(
                            "{report}\nRepaired: the records were rebuilt from the signed op log."
                        )
                    }
                },
            );
        }
        Command::Status => {
            let status = client.call(ControlRequest::Status).await?;
            printer.value(&status, output::status);
        }
        Command::CodeHash { path } => {
            let hash = match path {
                Some(path) => dan_node::hash_file(&path)?,
                None => dan_node::code_hash()?,
            };
            printer.value(&Value::String(hash.to_hex()), |_| hash.to_hex());
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
            let status = client
                .call(ControlRequest::CreateNetwork { network, password })
                .await?;
            printer.value(&status, output::status);
        }
        Command::Record(command) => record(&client, printer, command).await?,
    }
    Ok(())
}

async fn record(
    client: &ControlClient,
    printer: &Printer,
    command: RecordCommand,
) -> Result<(), Failure> {
    match command {
        RecordCommand::Put(put) => {
            let record = put.into_request()?;
            let view = client.call(ControlRequest::PutRecord { record }).await?;
            printer.value(&view, |v| v["id"].as_str().unwrap_or_default().to_owned());
        }
        RecordCommand::Get { id } => {
            let view = client.call(ControlRequest::GetRecord { id }).await?;
            printer.value(&view, output::record);
        }
        RecordCommand::List(list) => {
            let views = client
                .call(ControlRequest::ListRecords {
                    query: list.into_query(),
                })
                .await?;
            printer.value(&views, output::record_table);
        }
        RecordCommand::Delete { id } => {
            let view = client.call(ControlRequest::DeleteRecord { id }).await?;
            printer.value(&view, |v| {
                format!("deleted {}", v["id"].as_str().unwrap_or_default())
            });
        }
        RecordCommand::History { id } => {
            let entries = client.call(ControlRequest::History { id }).await?;
            printer.value(&entries, output::history);
        }
    }
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

async fn run(config: NodeConfig, use_keyring: bool) -> Result<(), Failure> {
    let node = open_node(config, use_keyring).await?;
    tracing::info!(
        peer_id = %node.peer_id(),
        data_dir = %node.data_dir().display(),
        "DAN instance running; stop it with Ctrl-C"
    );
    let served = dan_node::control::serve(node.clone(), shutdown_signal()).await;
    node.close().await;
    tracing::info!("DAN instance stopped");
    Ok(served?)
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
