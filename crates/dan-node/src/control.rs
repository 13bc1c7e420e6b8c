//! The local control channel: how `dan` commands talk to a running
//! instance of the same data directory.
//!
//! A Unix socket in the data directory (mode 0600) carries one JSON request
//! and one JSON response per connection. Each request carries the token from
//! `control.token` (mode 0600), so only the instance's owner can use it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

pub use crate::operation::ControlRequest;

use crate::error::{ErrorCode, ErrorKind, NodeError};
use crate::node::Node;
use crate::operation::Operation;

/// Socket file name inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";
/// Token file name inside the data directory.
pub const TOKEN_FILE: &str = "control.token";
/// Largest request accepted, in bytes.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Most control connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send its request.
const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client may take to read its answer (a long record list to a
/// slow reader included).
const ANSWER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
/// How long to wait after a failed accept before the next.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
/// How long commands under way may finish once shutdown begins.
#[cfg(not(test))]
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Shorter in tests, which wait it out.
#[cfg(test)]
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One line on the control channel: the token and the request.
#[derive(Serialize, Deserialize)]
pub struct Envelope {
    /// The control token (from the token file).
    pub token: String,
    /// What is asked.
    pub request: ControlRequest,
}

/// Reads one request line as the control channel does (also the fuzz
/// targets' entry point).
pub fn parse_line(line: &str) -> Result<Envelope, ControlError> {
    if line.len() as u64 > MAX_REQUEST_BYTES {
        return Err(ControlError::new(
            ErrorCode::BadRequest,
            "the request is too large",
        ));
    }
    serde_json::from_str(line)
        .map_err(|e| ControlError::new(ErrorCode::BadRequest, format!("malformed request: {e}")))
}

/// An error as sent over the control channel: a stable code, its kind
/// and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    /// Machine-readable code (see `NodeError::code`).
    pub code: ErrorCode,
    /// What kind of failure it is (`ErrorCode::kind`; `other` from an
    /// instance of an older version, which did not say).
    #[serde(default)]
    pub kind: ErrorKind,
    /// What happened and what to do.
    pub message: String,
}

impl ControlError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ControlError {
            code,
            kind: code.kind(),
            message: message.into(),
        }
    }
}

impl From<NodeError> for ControlError {
    fn from(error: NodeError) -> Self {
        ControlError::new(error.code(), error.to_string())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Response {
    Ok(Value),
    Error(ControlError),
}

/// Serves the control channel until `shutdown` resolves. Writes a fresh
/// token file and removes socket and token when done.
pub async fn serve(
    node: Node,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let dir = node.data_dir().to_owned();
    let socket = dir.join(SOCKET_FILE);
    let token = hex::encode(crate::secrets::random_bytes()?);
    dan_store::private::write_replacing(&dir.join(TOKEN_FILE), token.as_bytes())?;
    // We hold the data directory lock, so any socket file left is stale.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .map_err(NodeError::io(format!("listening on {}", socket.display())))?;
    dan_store::private::protect(&socket)?;
    let mut connections = tokio::task::JoinSet::new();
    let room = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // A connection is taken only when there is room for it: the
        // others wait in the socket's backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = room.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        // Those that ended are let go (at most `MAX_CONNECTIONS` run).
        while connections.try_join_next().is_some() {}
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let node = node.clone();
                    let token = token.clone();
                    connections.spawn(async move {
                        if let Err(e) = handle(stream, &node, &token).await {
                            tracing::debug!("control connection: {e}");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, say: give the ones held a
                    // moment to close instead of spinning.
                    tracing::warn!("control channel accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(dir.join(TOKEN_FILE));
    // Commands under way finish, or are cut off, before the instance
    // closes its store. Cut off, a command stops at its next step; what it
    // gave the replica's owner runs to its end there.
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_WAIT, finished).await.is_err() {
        tracing::warn!(
            "{} control commands still ran {} s after shutdown began; stopping them",
            connections.len(),
            SHUTDOWN_WAIT.as_secs()
        );
        connections.shutdown().await;
    }
    Ok(())
}

async fn handle(stream: UnixStream, node: &Node, token: &str) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST_BYTES));
    tokio::time::timeout(REQUEST_DEADLINE, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request came"))??;
    let response = match parse_line(&line) {
        Err(e) => Response::Error(e),
        Ok(envelope) if !constant_time_eq(envelope.token.as_bytes(), token.as_bytes()) => {
            Response::Error(ControlError::new(
                ErrorCode::Unauthorized,
                "the control token is wrong",
            ))
        }
        Ok(envelope) => match envelope.request.run(node).await {
            Ok(value) => Response::Ok(value),
            Err(e) => Response::Error(e.into()),
        },
    };
    let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
    bytes.push(b'\n');
    let answering = async {
        write.write_all(&bytes).await?;
        write.shutdown().await
    };
    tokio::time::timeout(ANSWER_DEADLINE, answering)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the answer was not read"))?
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A client of a running instance's control channel.
#[derive(Clone, Debug)]
pub struct ControlClient {
    data_dir: PathBuf,
}

impl ControlClient {
    /// A client for the instance in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ControlClient {
            data_dir: data_dir.into(),
        }
    }

    fn not_running(&self) -> ControlError {
        ControlError::new(
            ErrorCode::NotRunning,
            format!(
                "no DAN instance is running on {}: start it with `dan run`",
                self.data_dir.display()
            ),
        )
    }

    /// Asks the instance to run `operation`; its typed answer.
    pub async fn ask<O: Operation>(&self, operation: O) -> Result<O::Answer, ControlError> {
        let answer = self.call(operation.into()).await?;
        serde_json::from_value(answer).map_err(|e| {
            ControlError::new(
                ErrorCode::BadResponse,
                format!(
                    "the instance answered something else than expected ({e}); if `dan` was upgraded, restart `dan run` so that both are the same version"
                ),
            )
        })
    }

    /// Sends one request and returns the JSON answer.
    async fn call(&self, request: ControlRequest) -> Result<Value, ControlError> {
        let token = std::fs::read_to_string(self.data_dir.join(TOKEN_FILE))
            .map_err(|_| self.not_running())?;
        let stream = UnixStream::connect(self.data_dir.join(SOCKET_FILE))
            .await
            .map_err(|_| self.not_running())?;
        let (read, mut write) = stream.into_split();
        let envelope = Envelope {
            token: token.trim().to_owned(),
            request,
        };
        let mut bytes = serde_json::to_vec(&envelope)
            .map_err(|e| ControlError::new(ErrorCode::BadRequest, e.to_string()))?;
        bytes.push(b'\n');
        let io =
            |e: std::io::Error| ControlError::new(ErrorCode::Io, format!("control channel: {e}"));
        write.write_all(&bytes).await.map_err(io)?;
        let mut line = String::new();
        BufReader::new(read)
            .read_line(&mut line)
            .await
            .map_err(io)?;
        if line.is_empty() {
            return Err(ControlError::new(
                ErrorCode::Io,
                "the instance closed the control channel without answering",
            ));
        }
        match serde_json::from_str::<Response>(&line) {
            Ok(Response::Ok(value)) => Ok(value),
            Ok(Response::Error(error)) => Err(error),
            Err(e) => Err(ControlError::new(
                ErrorCode::BadResponse,
                format!("malformed answer: {e}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::AsyncReadExt;
    use tokio::net::UnixStream;

    use super::{
        ControlClient, MAX_CONNECTIONS, REQUEST_DEADLINE, SHUTDOWN_WAIT, SOCKET_FILE, serve,
    };
    use crate::operation::{PutRecord, Status};
    use crate::test_instance::{founded, hold_replica};

    /// Serves `node`'s control channel until the returned sender is used;
    /// returns once a client is served.
    async fn serving(
        node: &crate::Node,
        dir: &std::path::Path,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), crate::NodeError>>,
    ) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(node.clone(), async {
            let _ = stopped.await;
        }));
        let client = ControlClient::new(dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.ask(Status {}).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the control channel never came up"
            );
            tokio::task::yield_now().await;
        }
        (stop, server)
    }

    #[tokio::test]
    async fn bad_input_connections_that_never_ask_are_let_go_and_the_rest_are_served() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let (stop, server) = serving(&node, dir.path()).await;
        let client = ControlClient::new(dir.path());
        // Every place taken by a connection that sends nothing.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(
                UnixStream::connect(dir.path().join(SOCKET_FILE))
                    .await
                    .expect("connect"),
            );
        }
        let asked = Instant::now();
        let status = tokio::time::timeout(REQUEST_DEADLINE * 3, client.ask(Status {}))
            .await
            .expect("a command is served once the idle ones are let go")
            .expect("status");
        assert_eq!(status.network_name.as_deref(), Some("Library"));
        assert!(
            asked.elapsed() >= REQUEST_DEADLINE / 2,
            "it waited for room: {:?}",
            asked.elapsed()
        );
        for mut stream in idle {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(REQUEST_DEADLINE, stream.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "an idle connection is closed");
        }
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("the channel stops")
            .expect("no panic")
            .expect("served");
        node.close().await;
    }

    #[tokio::test]
    async fn a_command_still_waiting_when_shutdown_has_waited_long_enough_is_cut_off() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let (stop, server) = serving(&node, dir.path()).await;
        // The replica is busy for longer than shutdown waits.
        let (release, held) = hold_replica(&node).await;
        let client = ControlClient::new(dir.path());
        let write = tokio::spawn(async move {
            client
                .ask(PutRecord {
                    record: crate::api::PutRecord {
                        collection: Some("books".into()),
                        title: Some("Dune".into()),
                        ..crate::api::PutRecord::default()
                    },
                })
                .await
        });
        crate::test_instance::until_a_command_waits(&node).await;
        let stopping = Instant::now();
        let _ = stop.send(());
        tokio::time::timeout(SHUTDOWN_WAIT * 5, server)
            .await
            .expect("the channel stops after its wait")
            .expect("no panic")
            .expect("served");
        assert!(stopping.elapsed() >= SHUTDOWN_WAIT, "it waited first");
        // Cut off: the client hears the connection close, while the
        // replica is still held.
        let answer = tokio::time::timeout(SHUTDOWN_WAIT * 5, write)
            .await
            .expect("the command was cut off, not left running")
            .expect("no panic");
        assert!(answer.is_err(), "no answer came: {answer:?}");
        release.send(()).expect("still held");
        held.await.expect("holder");
        node.close().await;
    }
}
