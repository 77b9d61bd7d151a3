//! QUIC transport: node identity, TLS and QUIC configuration, and frames over streams.
//!
//! Each node has a self-signed certificate (rcgen) whose key is kept in the data dir
//! (`node.key`, mode 0600), so its node id — SHA3 of the certificate's public key — survives
//! restarts. Both sides present certificates (mutual TLS 1.3, ALPN `minima/1`); no CA is
//! involved: a peer is its node id. Receive windows stay ≤ 2 MiB per connection and at most 8
//! bidirectional streams are open per peer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use thiserror::Error;

use crate::crypto::{sha3, Hash};
use crate::net::message::{FrameError, Message};

/// ALPN of protocol v1.
pub const ALPN: &[u8] = b"minima/1";
/// Key file in the data dir.
pub const KEY_FILE: &str = "node.key";
/// Most bidirectional streams a peer may have open.
pub const MAX_STREAMS: u32 = 8;
/// Connection receive window.
pub const RECEIVE_WINDOW: u32 = 2 * 1024 * 1024;

/// Transport failures.
#[derive(Debug, Error)]
pub enum NetError {
    /// Key or certificate trouble.
    #[error("identity: {0}")]
    Identity(String),
    /// TLS or QUIC configuration.
    #[error("config: {0}")]
    Config(String),
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(String),
    /// A stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// A frame was refused.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The peer sent a frame slower than [`MIN_FRAME_RATE`].
    #[error("frame sent too slowly")]
    Slow,
    /// The peer opened a stream with an answer kind (refused from its header).
    #[error("{0} sent as a request")]
    Unsolicited(String),
}

/// A node's TLS identity.
#[derive(Clone)]
pub struct Identity {
    /// Certificate (DER).
    pub cert: CertificateDer<'static>,
    key: Vec<u8>,
    /// SHA3 of the certificate's public key.
    pub node_id: Hash,
}

/// Node id of a certificate: SHA3 of its SubjectPublicKeyInfo.
pub fn node_id_of(cert: &CertificateDer<'_>) -> Result<Hash, NetError> {
    let ee = webpki::EndEntityCert::try_from(cert).map_err(|e| NetError::Identity(format!("{e:?}")))?;
    Ok(sha3(ee.subject_public_key_info().as_ref()))
}

impl Identity {
    /// Load the node key from `dir`, or make and store one if there is none.
    ///
    /// A new key is written to a temporary file created with mode 0600 (never readable by
    /// anyone else, whatever the umask), synced, then renamed into place and the directory
    /// synced, so a crash leaves either no key or a whole one. A key file that exists but
    /// cannot be read or parsed is an error: the node never silently takes a new identity.
    /// An existing key readable by others is narrowed to 0600.
    pub fn load_or_create(dir: &Path) -> Result<Identity, NetError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        use zeroize::Zeroizing;

        let path = dir.join(KEY_FILE);
        let err = |p: &Path, e: &dyn std::fmt::Display| NetError::Identity(format!("{}: {e}", p.display()));
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let mode = std::fs::metadata(&path).map_err(|e| err(&path, &e))?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        "{} was readable by others (mode {:o}); narrowing to 0600",
                        path.display(),
                        mode & 0o777
                    );
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| err(&path, &e))?;
                }
                let pem = std::str::from_utf8(&bytes).map_err(|_| {
                    err(&path, &"not a PEM key (not UTF-8); move it away to make a new identity")
                })?;
                let kp = rcgen::KeyPair::from_pem(pem)
                    .map_err(|e| err(&path, &format!("{e}; move it away to make a new identity")))?;
                Identity::from_key(kp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kp = rcgen::KeyPair::generate().map_err(|e| err(&path, &e))?;
                let pem = Zeroizing::new(kp.serialize_pem());
                let tmp = dir.join(format!("{KEY_FILE}.tmp"));
                // A temporary file left by a crash holds no identity anyone used.
                match std::fs::remove_file(&tmp) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(&tmp, &e)),
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(|e| err(&tmp, &e))?;
                f.write_all(pem.as_bytes()).map_err(|e| err(&tmp, &e))?;
                f.sync_all().map_err(|e| err(&tmp, &e))?;
                drop(f);
                std::fs::rename(&tmp, &path).map_err(|e| err(&path, &e))?;
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| err(dir, &e))?;
                Identity::from_key(kp)
            }
            Err(e) => Err(err(&path, &format!("{e}; the node will not make a new identity over it"))),
        }
    }

    /// A fresh identity that is not stored (tests).
    pub fn ephemeral() -> Result<Identity, NetError> {
        Identity::from_key(rcgen::KeyPair::generate().map_err(|e| NetError::Identity(e.to_string()))?)
    }

    fn from_key(kp: rcgen::KeyPair) -> Result<Identity, NetError> {
        let params = rcgen::CertificateParams::new(vec!["minima".to_string()])
            .map_err(|e| NetError::Identity(e.to_string()))?;
        let cert = params.self_signed(&kp).map_err(|e| NetError::Identity(e.to_string()))?;
        let cert = cert.der().clone();
        let node_id = node_id_of(&cert)?;
        Ok(Identity { cert, key: kp.serialize_der(), node_id })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate that proves possession of its key: peers are identified by node
/// id, not by a certificate authority.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl AnyCert {
    /// The handshake signature proves possession of the certificate's key (both directions).
    fn tls13(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for AnyCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// Timing of connections.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Keep-alive interval (below the idle timeout).
    pub keep_alive: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { keep_alive: Duration::from_secs(10), idle_timeout: Duration::from_secs(30) }
    }
}

fn transport(t: Timing) -> Result<Arc<quinn::TransportConfig>, NetError> {
    let mut tc = quinn::TransportConfig::default();
    tc.max_concurrent_bidi_streams(MAX_STREAMS.into());
    tc.max_concurrent_uni_streams(0u32.into());
    tc.receive_window(RECEIVE_WINDOW.into());
    tc.stream_receive_window(RECEIVE_WINDOW.into());
    tc.send_window(RECEIVE_WINDOW as u64);
    tc.keep_alive_interval(Some(t.keep_alive));
    tc.max_idle_timeout(Some(t.idle_timeout.try_into().map_err(|e| NetError::Config(format!("{e}")))?));
    Ok(Arc::new(tc))
}

/// Server (accepting) configuration.
pub fn server_config(id: &Identity, t: Timing) -> Result<quinn::ServerConfig, NetError> {
    let p = provider();
    let mut tls = rustls::ServerConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(AnyCert(p)))
        .with_single_cert(vec![id.cert.clone()], id.key())
        .map_err(|e| NetError::Config(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let q = QuicServerConfig::try_from(tls).map_err(|e| NetError::Config(e.to_string()))?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(q));
    sc.transport_config(transport(t)?);
    Ok(sc)
}

/// Client (dialing) configuration.
pub fn client_config(id: &Identity, t: Timing) -> Result<quinn::ClientConfig, NetError> {
    let p = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(p)))
        .with_client_auth_cert(vec![id.cert.clone()], id.key())
        .map_err(|e| NetError::Config(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let q = QuicClientConfig::try_from(tls).map_err(|e| NetError::Config(e.to_string()))?;
    let mut cc = quinn::ClientConfig::new(Arc::new(q));
    cc.transport_config(transport(t)?);
    Ok(cc)
}

/// Node id of the peer of a connection.
pub fn peer_id(conn: &quinn::Connection) -> Result<Hash, NetError> {
    let any = conn.peer_identity().ok_or_else(|| NetError::Protocol("no peer certificate".into()))?;
    let certs = any
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| NetError::Protocol("unexpected peer identity".into()))?;
    let c = certs.first().ok_or_else(|| NetError::Protocol("empty certificate chain".into()))?;
    node_id_of(c)
}

/// Write one message as a frame.
pub async fn write_msg(s: &mut quinn::SendStream, m: &Message) -> Result<(), NetError> {
    s.write_all(&m.to_frame()).await.map_err(|e| NetError::Stream(e.to_string()))
}

/// Read one frame: the 5-byte header is checked against the type's limit before the payload
/// is read, and the payload buffer grows only as bytes arrive (a claimed length is never
/// allocated up front, so a peer dribbling a huge frame holds only what it has sent).
pub async fn read_msg(r: &mut quinn::RecvStream) -> Result<Message, NetError> {
    let mut h = [0u8; 5];
    r.read_exact(&mut h).await.map_err(|e| NetError::Stream(e.to_string()))?;
    let (kind, n) = Message::check_header(&h)?;
    let payload = read_payload(r, n).await?;
    Ok(Message::from_payload(kind, &payload)?)
}

async fn read_payload(r: &mut quinn::RecvStream, n: usize) -> Result<Vec<u8>, NetError> {
    let mut payload = Vec::with_capacity(n.min(64 * 1024));
    while payload.len() < n {
        match r.read_chunk(n - payload.len(), true).await {
            Ok(Some(c)) => payload.extend_from_slice(&c.bytes),
            Ok(None) => return Err(NetError::Stream("stream ended inside a frame".into())),
            Err(e) => return Err(NetError::Stream(e.to_string())),
        }
    }
    Ok(payload)
}

/// Slowest a peer may send a request frame: the whole frame (header included) must arrive
/// within [`FRAME_GRACE`] plus one second per this many bytes (a 1 MiB frame: 14 s).
pub const MIN_FRAME_RATE: usize = 256 * 1024;
/// Time allowed for any frame, however small.
pub const FRAME_GRACE: Duration = Duration::from_secs(10);

/// [`read_msg`] with a deadline derived from the frame's size ([`MIN_FRAME_RATE`]): a peer
/// that dribbles bytes is cut off ([`NetError::Slow`]) instead of holding a stream open and
/// memory with it.
pub async fn read_msg_timed(r: &mut quinn::RecvStream) -> Result<Message, NetError> {
    let start = tokio::time::Instant::now();
    let mut h = [0u8; 5];
    let header = tokio::time::timeout(FRAME_GRACE, r.read_exact(&mut h));
    header.await.map_err(|_| NetError::Slow)?.map_err(|e| NetError::Stream(e.to_string()))?;
    let (kind, n) = Message::check_header(&h)?;
    let deadline = start + FRAME_GRACE + Duration::from_secs((n / MIN_FRAME_RATE) as u64);
    let payload =
        tokio::time::timeout_at(deadline, read_payload(r, n)).await.map_err(|_| NetError::Slow)??;
    Ok(Message::from_payload(kind, &payload)?)
}

/// A peer's request: [`read_msg_timed`] for request kinds (and `Hello`, which opens a
/// connection) only, each within [`crate::net::message::MAX_REQUEST_FRAME`]. An answer kind
/// sent as a request is refused from its header ([`NetError::Unsolicited`]) and its payload
/// never read.
pub async fn read_request_timed(r: &mut quinn::RecvStream) -> Result<Message, NetError> {
    let start = tokio::time::Instant::now();
    let mut h = [0u8; 5];
    let header = tokio::time::timeout(FRAME_GRACE, r.read_exact(&mut h));
    header.await.map_err(|_| NetError::Slow)?.map_err(|e| NetError::Stream(e.to_string()))?;
    let (kind, n) = Message::check_header(&h)?;
    if !kind.is_request() && kind != crate::net::message::Kind::Hello {
        return Err(NetError::Unsolicited(format!("{kind:?}")));
    }
    if n + 1 > crate::net::message::MAX_REQUEST_FRAME {
        return Err(NetError::Frame(crate::net::message::FrameError::TooLarge {
            kind,
            len: n + 1,
            max: crate::net::message::MAX_REQUEST_FRAME,
        }));
    }
    let deadline = start + FRAME_GRACE + Duration::from_secs((n / MIN_FRAME_RATE) as u64);
    let payload =
        tokio::time::timeout_at(deadline, read_payload(r, n)).await.map_err(|_| NetError::Slow)??;
    Ok(Message::from_payload(kind, &payload)?)
}

/// Send a request on a new stream and read its answer.
pub async fn request(conn: &quinn::Connection, m: &Message, timeout: Duration) -> Result<Message, NetError> {
    let fut = async {
        let (mut s, mut r) = conn.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
        write_msg(&mut s, m).await?;
        let _ = s.finish();
        read_msg(&mut r).await
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| NetError::Stream("request timed out".into()))?
}

/// Send a message that has no answer (an announcement) on a new stream.
pub async fn announce(conn: &quinn::Connection, m: &Message) -> Result<(), NetError> {
    let (mut s, _r) = conn.open_bi().await.map_err(|e| NetError::Stream(e.to_string()))?;
    write_msg(&mut s, m).await?;
    let _ = s.finish();
    Ok(())
}
