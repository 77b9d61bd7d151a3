//! Local hygiene of the data dir's files: `node.key` and the database (with its `-wal` and
//! `-shm`) are private to the owner (0600) from the moment they exist, whatever the umask; an
//! existing key that cannot be read or parsed is an error, never a new identity.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use minima_core::crypto::Hash;
use minima_core::net::transport::{Identity, KEY_FILE};
use minima_core::store::{Store, DB_FILE};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

/// Run `f` under a umask that would leave new files world-readable (0644), as many systems'
/// default is; restores the previous umask. Tests in this file run one at a time through it.
fn with_open_umask<T>(f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: umask only swaps the process's file creation mask.
    let old = unsafe { libc::umask(0o022) };
    let r = f();
    unsafe { libc::umask(old) };
    r
}

#[test]
fn node_key_is_created_0600_and_reloaded_as_the_same_identity() {
    let dir = tempfile::tempdir().unwrap();
    let id = with_open_umask(|| Identity::load_or_create(dir.path())).unwrap();
    let key = dir.path().join(KEY_FILE);
    assert_eq!(mode(&key), 0o600);
    assert!(!dir.path().join(format!("{KEY_FILE}.tmp")).exists(), "no temporary file left");
    let again = Identity::load_or_create(dir.path()).unwrap();
    assert_eq!(again.node_id, id.node_id);
    // A key left readable by others (an older version, a copy) is narrowed on load.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(Identity::load_or_create(dir.path()).unwrap().node_id, id.node_id);
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn a_corrupt_or_unreadable_node_key_is_an_error_not_a_new_identity() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join(KEY_FILE);
    for bad in [
        &b"not a key"[..],
        &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
        &[0xff, 0xfe, 0][..],
        &[][..],
    ] {
        std::fs::write(&key, bad).unwrap();
        let r = Identity::load_or_create(dir.path());
        assert!(r.is_err(), "{bad:?} was taken as a key");
        assert_eq!(std::fs::read(&key).unwrap(), bad, "the bad key file is left as it was");
    }
    // A key path that cannot be read as a file at all.
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap();
    assert!(Identity::load_or_create(dir.path()).is_err());
    assert!(key.is_dir());
}

#[test]
fn the_database_and_its_wal_and_shm_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store = with_open_umask(|| Store::open(dir.path(), "devnet", &Hash([1; 32]))).unwrap();
    let db = dir.path().join(DB_FILE);
    assert_eq!(mode(&db), 0o600);
    let mut seen = 0;
    for suffix in ["-wal", "-shm"] {
        let p = dir.path().join(format!("{DB_FILE}{suffix}"));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "WAL mode keeps a -wal and a -shm file while open");
    drop(store);
    // An existing database readable by others is narrowed when opened.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = Store::open(dir.path(), "devnet", &Hash([1; 32])).unwrap();
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn the_data_dir_is_created_0700_and_narrowed_when_open_to_others() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("node");
    let mut cfg = minima_core::node::Config::new(&dir, minima_core::Params::devnet());
    cfg.mining = minima_core::node::Mining::Off;
    let node = with_open_umask(|| minima_core::node::Node::start(cfg.clone())).unwrap();
    assert_eq!(mode(&dir), 0o700);
    node.stop(std::time::Duration::from_secs(5)).unwrap();
    drop(node);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let node = minima_core::node::Node::start(cfg).unwrap();
    assert_eq!(mode(&dir), 0o700);
    node.stop(std::time::Duration::from_secs(5)).unwrap();
}
