//! Local control: JSON-RPC 2.0 over a Unix domain socket in the data dir, one request per line.
//!
//! The socket is created with mode 0600 (no TCP port: the file system is the access check);
//! clients refuse a socket that other users could reach. Requests are bounded (4 MiB a line,
//! enough for a coin import; a few seconds to send it); malformed ones get a JSON-RPC error and
//! change nothing. Wallet methods: `address`, `balance`, `history`, `send`, `seed`, `rescan`,
//! `coins_export`, `coins_import`; energy: `energy`, `power`, `sync_once`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use crate::node::Node;

/// Socket file name inside the data dir.
pub const SOCKET_FILE: &str = "minima.sock";
/// Longest request line.
pub const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Errors of the RPC client and server.
#[derive(Debug, Error)]
pub enum RpcError {
    /// No node is listening.
    #[error("no node is running on {0} (cannot connect to its socket)")]
    NotRunning(PathBuf),
    /// The socket could be reached by other users.
    #[error("refusing socket {path}: mode {mode:o} lets other users reach it (want 0600, owned by you)")]
    Insecure {
        /// Socket path.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// Socket I/O failed.
    #[error("socket {path}: {error}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// What failed.
        error: String,
    },
    /// The node answered with an error.
    #[error("node error {code}: {message}")]
    Remote {
        /// JSON-RPC code.
        code: i64,
        /// Message.
        message: String,
    },
    /// The answer was not JSON-RPC.
    #[error("bad answer from node: {0}")]
    BadAnswer(String),
}

/// Path of the socket for a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Check that a socket is ours and private.
pub fn check_socket(path: &Path) -> Result<(), RpcError> {
    let md = std::fs::symlink_metadata(path).map_err(|_| RpcError::NotRunning(path.to_path_buf()))?;
    let mode = md.permissions().mode() & 0o777;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    if mode & 0o077 != 0 || md.uid() != uid {
        return Err(RpcError::Insecure { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Send one request and wait for its answer.
pub fn call(data_dir: &Path, method: &str, params: Value) -> Result<Value, RpcError> {
    let path = socket_path(data_dir);
    check_socket(&path)?;
    let io = |e: std::io::Error| RpcError::Io { path: path.clone(), error: e.to_string() };
    let mut s = UnixStream::connect(&path).map_err(|_| RpcError::NotRunning(data_dir.to_path_buf()))?;
    s.set_read_timeout(Some(Duration::from_secs(300))).map_err(io)?;
    // `params` is moved in (`json!` would copy it and leave the original unwiped).
    let mut req = json!({"jsonrpc": "2.0", "id": 1, "method": method});
    req["params"] = params;
    // The request may carry secrets (`seed`): both copies are wiped once sent.
    let text = Zeroizing::new(format!("{req}\n"));
    wipe(&mut req);
    s.write_all(text.as_bytes()).map_err(io)?;
    let mut line = String::new();
    BufReader::new(s.take(16 * 1024 * 1024)).read_line(&mut line).map_err(io)?;
    let v: Value = serde_json::from_str(&line).map_err(|e| RpcError::BadAnswer(e.to_string()))?;
    if let Some(e) = v.get("error") {
        return Err(RpcError::Remote {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
        });
    }
    v.get("result").cloned().ok_or_else(|| RpcError::BadAnswer("no result".into()))
}

/// The server: a thread accepting connections on the data dir's socket.
pub struct Server {
    stop: Arc<AtomicBool>,
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// A request line in a buffer allocated once at its largest ([`MAX_REQUEST`]), its bytes
/// wiped when dropped. Only the bytes written are wiped: the buffer never grows, so nothing of
/// the request lies past its length, and wiping the untouched rest (as `Zeroizing<Vec>` does)
/// would bring 4 MiB of fresh pages into memory at the end of every call.
struct RequestLine(Vec<u8>);

impl std::ops::Deref for RequestLine {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for RequestLine {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for RequestLine {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// Read one request line (without its newline) into a buffer wiped when dropped — requests
/// may carry secrets (`seed`) — allocated once at its largest, so no partial copy is left
/// behind by growth. `None`: larger than [`MAX_REQUEST`].
fn read_request(c: &mut UnixStream) -> std::io::Result<Option<RequestLine>> {
    let mut line = RequestLine(Vec::with_capacity(MAX_REQUEST + 1));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        let n = c.read(&mut chunk[..])?;
        if n == 0 {
            return Ok(Some(line));
        }
        if let Some(end) = chunk[..n].iter().position(|b| *b == b'\n') {
            if line.len() + end > MAX_REQUEST {
                return Ok(None);
            }
            line.extend_from_slice(&chunk[..end]);
            return Ok(Some(line));
        }
        if line.len() + n > MAX_REQUEST {
            return Ok(None);
        }
        line.extend_from_slice(&chunk[..n]);
    }
}

/// Overwrite every string in `v` (a request's secrets — the `seed` call's phrase and
/// passphrase — are wiped with it, not left in freed memory).
fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(wipe),
        Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Answer one request; the flag asks the caller to stop the node once the answer is sent.
/// The parsed request is wiped afterwards.
fn handle(node: &Node, line: &str) -> (Value, bool) {
    let mut req: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return (error(Value::Null, -32700, format!("parse error: {e}")), false),
    };
    let out = answer(node, &req);
    wipe(&mut req);
    out
}

fn answer(node: &Node, req: &Value) -> (Value, bool) {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return (error(id, -32600, "invalid request: no method"), false);
    };
    match method {
        "status" => match node.status() {
            Ok(s) => (json!({"jsonrpc": "2.0", "id": id, "result": s}), false),
            Err(e) => (error(id, -32000, e.to_string()), false),
        },
        "stop" => (json!({"jsonrpc": "2.0", "id": id, "result": {"stopping": true}}), true),
        "mining" => {
            let Some(on) = req.get("params").and_then(|p| p.get("on")).and_then(Value::as_bool) else {
                return (error(id, -32602, "invalid params: want {\"on\": true|false}"), false);
            };
            match node.set_mining(on) {
                Ok(()) => (json!({"jsonrpc": "2.0", "id": id, "result": {"mining": on}}), false),
                Err(e) => (error(id, -32000, e.to_string()), false),
            }
        }
        other => match wallet_method(node, other, req.get("params").unwrap_or(&Value::Null)) {
            Some(Ok(v)) => (json!({"jsonrpc": "2.0", "id": id, "result": v}), false),
            Some(Err((code, msg))) => (error(id, code, msg), false),
            None => (error(id, -32601, format!("unknown method '{other}'")), false),
        },
    }
}

/// The wallet's methods (`None`: not a wallet method). Secrets (phrase, passphrase) arrive
/// only over this private socket and never appear in answers or logs.
fn wallet_method(node: &Node, method: &str, p: &Value) -> Option<Result<Value, (i64, String)>> {
    let invalid = |m: &str| Err((-32602, format!("invalid params: {m}")));
    let failed = |e: crate::node::NodeError| (-32000, e.to_string());
    let text = |k: &str| p.get(k).and_then(Value::as_str);
    let units = |k: &str| p.get(k).and_then(Value::as_u64);
    Some(match method {
        "address" => {
            let new = p.get("new").and_then(Value::as_bool).unwrap_or(false);
            node.wallet_address(new).map(|a| json!({"address": a})).map_err(failed)
        }
        "balance" => node.wallet_balance().map(|b| json!(b)).map_err(failed),
        "history" => node.wallet_history().map(|h| json!(h)).map_err(failed),
        "send" => {
            let (Some(to), Some(amount)) = (text("to"), units("amount")) else {
                return Some(invalid("want {\"to\": address, \"amount\": base units, \"burn\": base units}"));
            };
            node.wallet_send(to, amount, units("burn").unwrap_or(0)).map(|r| json!(r)).map_err(failed)
        }
        "seed" => {
            let (Some(phrase), Some(pass)) = (text("phrase"), text("passphrase")) else {
                return Some(invalid("want {\"phrase\": 24 words, \"passphrase\": text, \"restore\": bool}"));
            };
            if pass.is_empty() {
                return Some(invalid("an empty passphrase would leave the seed unprotected"));
            }
            let seed = match crate::crypto::phrase_to_seed(phrase) {
                Ok(s) => crate::wallet::Seed(s),
                Err(e) => return Some(Err((-32000, format!("wallet: {e}")))),
            };
            let restore = p.get("restore").and_then(Value::as_bool).unwrap_or(false);
            node.create_wallet(seed, Some(pass.as_bytes())).map_err(failed).and_then(|()| {
                let address = node.wallet_address(false).map_err(failed)?;
                // The wallet exists now; a failed coin search is reported, not an error
                // (`rescan` tries again).
                let (scan, scan_error) = match restore.then(|| node.wallet_rescan()) {
                    Some(Ok(r)) => (Some(r), None),
                    Some(Err(e)) => (None, Some(e.to_string())),
                    None => (None, None),
                };
                Ok(json!({"address": address, "restore": scan, "restore_error": scan_error}))
            })
        }
        "rescan" => node.wallet_rescan().map(|r| json!(r)).map_err(failed),
        "energy" => node.energy_report().map(|r| json!(r)).map_err(failed),
        "sync_once" => {
            let secs = p.get("seconds").and_then(Value::as_f64).unwrap_or(30.0).clamp(0.1, 3600.0);
            node.sync_once(std::time::Duration::from_secs_f64(secs)).map(|r| json!(r)).map_err(failed)
        }
        "power" => {
            use crate::energy::{NetworkType, PowerState};
            let network = match text("network") {
                Some("wifi") => NetworkType::Wifi,
                Some("cellular") => NetworkType::Cellular,
                Some("none") => NetworkType::None,
                _ => {
                    return Some(invalid(
                        "want network wifi|cellular|none, charging, battery_pct, foreground",
                    ))
                }
            };
            let pct = units("battery_pct").unwrap_or(100).min(100) as u8;
            let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
            let st = PowerState {
                charging: flag("charging"),
                battery_pct: pct,
                network,
                foreground: flag("foreground"),
            };
            node.set_power_state(st).map(|()| json!({"power": st})).map_err(failed)
        }
        "coins_export" => node.wallet_export().map(|t| json!({"coins": t})).map_err(failed),
        "coins_import" => {
            let Some(t) = text("coins") else { return Some(invalid("want {\"coins\": exported text}")) };
            node.wallet_import(t).map(|n| json!({"imported": n})).map_err(failed)
        }
        _ => return None,
    })
}

impl Server {
    /// Bind the socket (mode 0600) and serve `node` until [`Server::shutdown`]. `on_stop` runs
    /// when a client asks the node to stop.
    pub fn start(
        node: Arc<Node>,
        data_dir: &Path,
        on_stop: impl Fn() + Send + Sync + 'static,
    ) -> Result<Server, RpcError> {
        let path = socket_path(data_dir);
        let io = |e: std::io::Error| RpcError::Io { path: path.clone(), error: e.to_string() };
        // The data dir is locked by the node: a socket left here is stale.
        let _ = std::fs::remove_file(&path);
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0o177) };
        let listener = UnixListener::bind(&path);
        // SAFETY: restores the previous mask.
        unsafe { libc::umask(old) };
        let listener = listener.map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let on_stop = Arc::new(on_stop);
        let thread = std::thread::Builder::new()
            .name("minima-rpc".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut c) = conn else { continue };
                    let node = node.clone();
                    let on_stop = on_stop.clone();
                    let _ = std::thread::Builder::new().name("minima-rpc-conn".into()).spawn(move || {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                        let (answer, stop) = match read_request(&mut c) {
                            Ok(Some(line)) => match std::str::from_utf8(&line) {
                                Ok(text) => handle(&node, text.trim_end()),
                                Err(_) => (error(Value::Null, -32700, "request is not UTF-8"), false),
                            },
                            Ok(None) => (error(Value::Null, -32600, "request too large"), false),
                            Err(e) => (error(Value::Null, -32700, format!("unreadable request: {e}")), false),
                        };
                        let _ = c.write_all(format!("{answer}\n").as_bytes());
                        let _ = c.flush();
                        if stop {
                            on_stop();
                        }
                    });
                }
            })
            .map_err(io)?;
        Ok(Server { stop, path, thread: Some(thread) })
    }

    /// Stop serving and remove the socket.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's strings (the `seed` call's phrase and passphrase) are wiped after use, and
    /// a passphrase secret is a buffer wiped on drop.
    #[test]
    fn secrets_in_requests_and_passphrases_are_wiped() {
        let mut v = json!({"method": "seed", "params": {"phrase": "abandon ability", "passphrase": "pw", "list": ["x"]}});
        wipe(&mut v);
        assert_eq!(v, json!({"method": "", "params": {"phrase": "", "passphrase": "", "list": [""]}}));
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        if let crate::node::WalletSecret::Passphrase(p) =
            crate::node::WalletSecret::passphrase(b"pw".to_vec())
        {
            wiped_on_drop(&p);
        }
    }
}
