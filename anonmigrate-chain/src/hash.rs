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

#[cfg(test)]
mod tests {
    use super::*;

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
