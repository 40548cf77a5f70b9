//! The secret of an encrypted memory ([`Key`]) and the database key derived from it for
//! one file ([`FileKey`]).
//!
//! SQLCipher would stretch a passphrase itself, on every connection: 256,000 rounds of
//! PBKDF2 (≈ 0.1–0.2 s) for each thread's connection, each pool connection and each
//! backup. cairn stretches it once per file instead, with the same construction and
//! count (PBKDF2-HMAC, here SHA-256, over the file's own 16-byte salt), and hands
//! SQLCipher the raw 256-bit key with that salt (`PRAGMA key = "x'<key><salt>'"`), which
//! SQLCipher uses as it is. The salt is the first 16 bytes of every SQLCipher file, so a
//! copy of the file (backup, archive, replica) is opened with the same secret, and two
//! files under one passphrase still get different keys.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// PBKDF2 rounds for a passphrase: SQLCipher 4's default count.
const KDF_ROUNDS: u32 = 256_000;
/// Bytes of the per-file salt SQLCipher keeps at the start of the file.
pub(crate) const SALT_BYTES: usize = 16;
/// What every unencrypted SQLite file starts with.
pub(crate) const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The secret an encrypted memory is opened with ([`crate::Options::key`]).
///
/// Either a passphrase (any bytes, stretched with PBKDF2 once per file) or a raw 256-bit
/// key (used as it is, for keys that come from a key manager). The secret is wiped from
/// memory when the last clone drops, and never printed: its `Debug` output is
/// `Key(<redacted>)`.
///
/// ```
/// use cairn::Key;
/// let key = Key::passphrase("correct horse battery staple");
/// assert_eq!(format!("{key:?}"), "Key(<redacted>)");
/// ```
#[derive(Clone)]
pub struct Key {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Secret,
    /// The key last derived, for its salt: a memory, its backups and its archives share
    /// one salt, so the 0.1 s derivation runs once for all of them.
    derived: Mutex<Option<FileKey>>,
}

enum Secret {
    Passphrase(Zeroizing<Vec<u8>>),
    Raw(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A passphrase (or any secret bytes). An empty one is refused when the memory is
    /// opened ([`Error::InvalidInput`] naming `key`).
    pub fn passphrase(secret: impl Into<Vec<u8>>) -> Key {
        Key::with(Secret::Passphrase(Zeroizing::new(secret.into())))
    }

    /// A raw 256-bit key, used without stretching.
    pub fn raw(key: [u8; 32]) -> Key {
        Key::with(Secret::Raw(Zeroizing::new(key)))
    }

    /// The passphrase in the file at `path`: its whole content, less one trailing line
    /// break (`\n` or `\r\n`). Refused: a missing or unreadable file ([`Error::File`]),
    /// an empty passphrase ([`Error::InvalidInput`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key> {
        let path = path.as_ref();
        let mut bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::file(path, e))?);
        let mut len = bytes.len();
        if bytes[..len].ends_with(b"\n") {
            len -= 1;
            if bytes[..len].ends_with(b"\r") {
                len -= 1;
            }
        }
        if len == 0 {
            return Err(Error::invalid_input(
                "key",
                format!("the key file {} is empty", path.display()),
            ));
        }
        bytes.truncate(len);
        Ok(Key::passphrase(std::mem::take(&mut *bytes)))
    }

    fn with(secret: Secret) -> Key {
        Key {
            inner: Arc::new(Inner {
                secret,
                derived: Mutex::new(None),
            }),
        }
    }

    /// An empty passphrase is no secret: refused before anything is opened.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.inner.secret {
            Secret::Passphrase(p) if p.is_empty() => {
                Err(Error::invalid_input("key", "the passphrase is empty"))
            }
            _ => Ok(()),
        }
    }

    /// The database key of the file at `path`: for an existing SQLCipher file, derived
    /// with the salt at its start; for a missing or empty file, with a fresh salt (the
    /// file is created with it). A plain SQLite file is [`Error::NotEncrypted`].
    pub(crate) fn for_file(&self, path: &Path) -> Result<FileKey> {
        match read_salt(path)? {
            Header::Plain => Err(Error::NotEncrypted {
                path: path.to_owned(),
            }),
            Header::Salt(salt) => Ok(self.derive(salt)),
            Header::Empty => Ok(self.derive(fresh_salt()?)),
        }
    }

    /// The key for `salt`, derived once per salt.
    fn derive(&self, salt: [u8; SALT_BYTES]) -> FileKey {
        let mut cached = self.inner.derived.lock();
        if let Some(key) = cached.as_ref().filter(|k| k.salt == salt) {
            return key.clone();
        }
        let key = match &self.inner.secret {
            Secret::Raw(raw) => **raw,
            Secret::Passphrase(p) => pbkdf2_sha256(p, &salt, KDF_ROUNDS),
        };
        let derived = FileKey {
            material: Arc::new(Material {
                key: Zeroizing::new(key),
            }),
            salt,
        };
        *cached = Some(derived.clone());
        derived
    }
}

/// The key SQLCipher encrypts one file (and its copies) with.
#[derive(Clone)]
pub(crate) struct FileKey {
    material: Arc<Material>,
    /// The file's salt (its first 16 bytes).
    pub(crate) salt: [u8; SALT_BYTES],
}

struct Material {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

impl FileKey {
    /// The statement that keys a connection; it must be the connection's first.
    pub(crate) fn pragma(&self) -> Zeroizing<String> {
        let mut sql = Zeroizing::new(String::with_capacity(120));
        sql.push_str("PRAGMA key = \"x'");
        for b in self.material.key.iter().chain(self.salt.iter()) {
            sql.push(hex_digit(b >> 4));
            sql.push(hex_digit(b & 0xF));
        }
        sql.push_str("'\"");
        sql
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    })
}

/// What the first 16 bytes of a file say.
pub(crate) enum Header {
    /// No file, or fewer than 16 bytes: a new database.
    Empty,
    /// An unencrypted SQLite file.
    Plain,
    /// Anything else: an SQLCipher file's salt (or garbage, which the key then fails on).
    Salt([u8; SALT_BYTES]),
}

/// Reads the start of the file at `path` (nothing is created or written).
pub(crate) fn read_salt(path: &Path) -> Result<Header> {
    use std::io::Read as _;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Header::Empty),
        Err(e) => return Err(Error::file(path, e)),
    };
    let mut head = [0u8; SALT_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => return Ok(Header::Empty),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::file(path, e)),
        }
    }
    Ok(if &head == PLAIN_HEADER {
        Header::Plain
    } else {
        Header::Salt(head)
    })
}

/// 16 random bytes from SQLite's generator (seeded from the operating system's).
fn fresh_salt() -> Result<[u8; SALT_BYTES]> {
    let conn = rusqlite::Connection::open_in_memory()?;
    let bytes: Vec<u8> = conn.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
    let mut salt = [0u8; SALT_BYTES];
    salt.copy_from_slice(&bytes[..SALT_BYTES]);
    Ok(salt)
}

/// HMAC-SHA-256 (RFC 2104) of `message` under `key`; keys longer than a block are hashed
/// first, as the RFC says.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// PBKDF2 (RFC 8018) with HMAC-SHA-256, one 32-byte block.
///
/// The rounds after the first hash only 32-byte messages, so each is two calls of the
/// SHA-256 compression function on the key's precomputed inner and outer states: the
/// loop then costs the same in a debug build as in a release one (the generic hashing
/// front end, compiled unoptimized into cairn's tests, made a derivation take seconds).
fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; 64]);
    if password.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(password));
    } else {
        block[..password.len()].copy_from_slice(password);
    }
    let inner = Zeroizing::new(padded_state(&block, 0x36));
    let outer = Zeroizing::new(padded_state(&block, 0x5c));
    let mut u = Zeroizing::new(hmac_sha256(password, &[salt, &1u32.to_be_bytes()]));
    let mut out = *u;
    for _ in 1..rounds {
        let inner_hash = Zeroizing::new(finish_32(*inner, &u));
        *u = finish_32(*outer, &inner_hash);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The SHA-256 state after the one block `key ^ pad`: HMAC's inner or outer prefix.
fn padded_state(key: &[u8; 64], pad: u8) -> [u32; 8] {
    let mut state = SHA256_INITIAL;
    let mut padded = Zeroizing::new([0u8; 64]);
    for (p, k) in padded.iter_mut().zip(key.iter()) {
        *p = k ^ pad;
    }
    sha2::block_api::compress256(&mut state, &[*padded]);
    state
}

/// SHA-256 of (the one block `state` absorbed) followed by `message`: the message, its
/// padding and the total length (96 bytes) fill exactly one more block.
fn finish_32(mut state: [u32; 8], message: &[u8; 32]) -> [u8; 32] {
    let mut last = Zeroizing::new([0u8; 64]);
    last[..32].copy_from_slice(message);
    last[32] = 0x80;
    last[56..].copy_from_slice(&(96u64 * 8).to_be_bytes());
    sha2::block_api::compress256(&mut state, &[*last]);
    let mut digest = [0u8; 32];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(state.iter()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    state.zeroize();
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn pbkdf2_matches_the_published_vectors() {
        // RFC 7914 §11 (PBKDF2-HMAC-SHA256, first 32 bytes of the 64-byte output).
        assert_eq!(
            hex(&pbkdf2_sha256(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"Password", b"NaCl", 80_000)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 and test case 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn secrets_are_never_printed() {
        let key = Key::passphrase("hunter2");
        let file_key = key.derive([7; 16]);
        assert!(!format!("{key:?} {file_key:?}").contains("hunter2"));
        let pragma = file_key.pragma();
        assert!(pragma.starts_with("PRAGMA key = \"x'") && pragma.ends_with("'\""));
        assert_eq!(pragma.len() - "PRAGMA key = \"x''\"".len(), 96);
        assert!(pragma.contains(&hex(&[7; 16])));
    }

    #[test]
    fn one_derivation_per_salt_and_raw_keys_are_used_as_they_are() {
        let key = Key::passphrase("p");
        let a = key.derive([1; 16]);
        let b = key.derive([1; 16]);
        assert!(Arc::ptr_eq(&a.material, &b.material));
        let c = key.derive([2; 16]);
        assert_ne!(*a.material.key, *c.material.key);
        let raw = Key::raw([9; 32]).derive([3; 16]);
        assert_eq!(*raw.material.key, [9; 32]);
    }

    #[test]
    fn key_files_lose_one_line_break_and_may_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "secret\r\n").unwrap();
        let key = Key::from_file(&path).unwrap();
        assert!(matches!(&key.inner.secret, Secret::Passphrase(p) if p.as_slice() == b"secret"));
        std::fs::write(&path, "\n").unwrap();
        assert!(Key::from_file(&path).unwrap_err().is_invalid_input());
        assert!(matches!(
            Key::from_file(dir.path().join("missing")),
            Err(Error::File { .. })
        ));
    }
}
