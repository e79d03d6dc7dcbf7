//! Content hashes used for checksums and the lock file.

use sha2::{Digest, Sha256};

/// Turns CRLF and lone CR into LF, so a Windows checkout of the same migration hashes the same.
pub fn normalise_line_endings(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\r') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The hashes [`sha256_hex`] gives for every prefix of `parts` joined with a NUL after each part: element `k` is
/// the hash of the first `k` parts. One pass over the bytes (a quadratic rehash per prefix took minutes on a
/// 100,000-statement migration).
pub fn prefix_hashes<'a>(parts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut hasher = Sha256::new();
    let mut hashes = vec![format!("{:x}", hasher.clone().finalize())];
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
        hashes.push(format!("{:x}", hasher.clone().finalize()));
    }
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hashes_match_hashing_each_prefix_whole() {
        let parts = ["CREATE TABLE a (id int)", "", "INSERT INTO a VALUES (1)"];
        let hashes = prefix_hashes(parts);
        for (k, hash) in hashes.iter().enumerate() {
            let joined: String = parts[..k].iter().map(|p| format!("{p}\u{0}")).collect();
            assert_eq!(*hash, sha256_hex(joined.as_bytes()), "prefix of {k}");
        }
    }

    #[test]
    fn crlf_and_lf_hash_alike() {
        let lf = normalise_line_endings("a\nb\n");
        let crlf = normalise_line_endings("a\r\nb\r\n");
        let cr = normalise_line_endings("a\rb\r");
        assert_eq!(sha256_hex(lf.as_bytes()), sha256_hex(crlf.as_bytes()));
        assert_eq!(lf, cr);
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
