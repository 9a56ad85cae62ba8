//! Appended module signatures (`scripts/sign-file` output).
//!
//! A signed module is the ELF image followed by the signature, a 12-byte
//! `struct module_signature` and the 28-byte marker below. Any rewrite of the
//! ELF image invalidates the signature, so the converter drops it.

/// The marker that ends a signed module.
pub const MARKER: &[u8] = b"~Module signature appended~\n";

/// Split a module file into its ELF image and its appended signature (if any).
///
/// Returns `(elf, signature)` where `signature` is empty for unsigned files.
/// A marker whose lengths do not fit the file is not treated as a signature.
pub fn split(file: &[u8]) -> (&[u8], &[u8]) {
    const INFO: usize = 12;
    let Some(body) = file.strip_suffix(MARKER) else {
        return (file, &[]);
    };
    if body.len() < INFO {
        return (file, &[]);
    }
    let info = &body[body.len() - INFO..];
    // struct module_signature { u8 algo, hash, id_type, signer_len,
    // key_id_len, __pad[3]; __be32 sig_len; }
    let signer_len = usize::from(info[3]);
    let key_id_len = usize::from(info[4]);
    let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize;
    let total = INFO + sig_len + signer_len + key_id_len;
    match body.len().checked_sub(total) {
        Some(elf_len) => file.split_at(elf_len),
        None => (file, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_signed_file() {
        let mut f = b"\x7fELF-body".to_vec();
        f.extend_from_slice(b"SIGNATURE");
        f.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        f.extend_from_slice(MARKER);
        let (elf, sig) = split(&f);
        assert_eq!(elf, b"\x7fELF-body");
        assert_eq!(sig.len(), 9 + 12 + MARKER.len());
    }

    #[test]
    fn unsigned_and_bogus_files_are_whole() {
        assert_eq!(split(b"\x7fELF").1, b"");
        let mut f = b"x".to_vec();
        f.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        f.extend_from_slice(MARKER);
        assert_eq!(split(&f).0.len(), f.len());
    }
}
