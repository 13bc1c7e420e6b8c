//! The `/dan/sync/1` request-response protocol: message types and a
//! postcard codec with size limits.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dan_core::OpId;
use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/dan/sync/1");
/// Largest request accepted, in bytes.
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Largest response accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// Most op ids asked for in one fetch.
pub const MAX_FETCH_IDS: usize = 1024;
/// Op bytes sent in one fetch answer at most (the rest is asked again).
pub const MAX_FETCH_ANSWER_BYTES: usize = 6 * 1024 * 1024;
/// Negentropy frame size limit.
pub const RECONCILE_FRAME_BYTES: u64 = 256 * 1024;

/// A request from one instance to another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// The conformance handshake: the sender's signed hello.
    Hello(Vec<u8>),
    /// One round of range-based set reconciliation (negentropy).
    Reconcile(Vec<u8>),
    /// Ops by id.
    Fetch(Vec<OpId>),
    /// A signed join request.
    Join(Vec<u8>),
    /// Where the sender's join stands.
    JoinStatus,
    /// Addresses of members the receiver knows.
    Addresses,
    /// The sender is closing the connection, and why.
    Bye(String),
    /// Proven evidence the receiver holds.
    Evidence,
    /// The highest seq of the sender's own chain the receiver holds.
    ChainHead,
}

/// What travels on the network's gossip topic.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Gossip {
    /// New ops (canonical bytes).
    Ops(Vec<Vec<u8>>),
    /// A signed checkpoint (a signed hello).
    Checkpoint(Vec<u8>),
    /// Signed evidence.
    Evidence(Vec<u8>),
}

/// An answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The receiver's signed hello.
    Hello(Vec<u8>),
    /// The receiver refuses the sender, and why.
    Refused(String),
    /// The next reconciliation message.
    Reconcile(Vec<u8>),
    /// Canonical op bytes.
    Ops(Vec<Vec<u8>>),
    /// A join request was approved by the receiver.
    Joined {
        /// The network's signed genesis.
        genesis: Vec<u8>,
        /// Approvals so far.
        approvals: u64,
        /// Approvals needed.
        needed: u64,
    },
    /// Where the sender's join stands (`None`: not known).
    JoinStatus(Option<(u64, u64, bool)>),
    /// Member addresses: peer id bytes and multiaddrs.
    Addresses(Vec<(Vec<u8>, Vec<Vec<u8>>)>),
    /// The receiver refuses the sender because it was deprecated: why,
    /// and the signed evidence.
    Deprecated {
        /// Why, in plain words.
        reason: String,
        /// The signed evidence (canonical bytes), if held.
        evidence: Option<Vec<u8>>,
    },
    /// Signed evidence (canonical bytes).
    EvidenceList(Vec<Vec<u8>>),
    /// The highest seq of the asker's chain held here, with the asker's own
    /// signed op at that seq (a claim nobody can make without it).
    ChainHead {
        /// The seq.
        seq: u64,
        /// The op's canonical bytes (none for seq 0).
        op: Option<Vec<u8>>,
    },
    /// Received.
    Ack,
    /// The request failed, and why.
    Error(String),
}

/// Decodes one `/dan/sync/1` message of at most `limit` bytes, as it came
/// off a stream (also the fuzz targets' entry point).
pub fn decode_message<M: for<'de> Deserialize<'de>>(bytes: &[u8], limit: u64) -> io::Result<M> {
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The answer to one round of reconciliation from a peer, from `set` (the
/// ops held here).
pub fn answer_reconcile(
    set: &negentropy::NegentropyStorageVector,
    message: &[u8],
) -> Result<Vec<u8>, negentropy::Error> {
    negentropy::Negentropy::borrowed(set, RECONCILE_FRAME_BYTES)
        .and_then(|mut negentropy| negentropy.reconcile(message))
}

/// Bytes of `/dan/sync/1` messages sent and received (before transport
/// encryption and multiplexing), for benchmarks and diagnostics.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes written.
    pub sent: AtomicU64,
    /// Bytes read.
    pub received: AtomicU64,
}

/// Postcard encoding over one stream per request, bounded in size.
#[derive(Clone, Debug, Default)]
pub struct WireCodec {
    traffic: Arc<Traffic>,
}

impl WireCodec {
    /// A codec counting its traffic into `traffic`.
    pub fn new(traffic: Arc<Traffic>) -> Self {
        WireCodec { traffic }
    }

    async fn read_bounded<T, M>(&self, io: &mut T, limit: u64) -> io::Result<M>
    where
        T: AsyncRead + Unpin + Send,
        M: for<'de> Deserialize<'de>,
    {
        let mut bytes = Vec::new();
        io.take(limit + 1).read_to_end(&mut bytes).await?;
        self.traffic
            .received
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        decode_message(&bytes, limit)
    }

    async fn write_all<T, M>(&self, io: &mut T, message: &M) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
        M: Serialize,
    {
        let bytes = postcard::to_stdvec(message)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.traffic
            .sent
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        io.write_all(&bytes).await?;
        io.close().await
    }
}

impl libp2p::request_response::Codec for WireCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_bounded(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_bounded(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_all(io, &request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_all(io, &response).await
    }
}
