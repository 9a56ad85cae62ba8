//! Module-file I/O: reading module files (decompressing `.ko.xz` and
//! `.ko.zst` by their magic bytes, up to [`max_decompressed`] bytes),
//! mapping plain ones rather than copying them ([`open`], [`open_stable`]:
//! through `mapped`, with the checks that a mapping, which shows
//! later writes, needs), finding them below directories, and writing output
//! files atomically ([`write_proven`]: written in pieces, proven as read
//! back before the rename).

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The first bytes of an xz stream.
pub const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";
/// The first bytes of a zstd frame.
pub const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";

/// The default bound on a decompressed module: 1 GiB (the largest module
/// of a distribution kernel is a few tens of MiB).
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 1 << 30;

/// The environment variable that sets the bound on a decompressed module,
/// in bytes or with a binary suffix: `KLP_CONVERT_MAX_DECOMPRESSED=4G`.
pub const MAX_DECOMPRESSED_ENV: &str = "KLP_CONVERT_MAX_DECOMPRESSED";

/// The bound [`read`] applies, for the whole process.
static MAX_DECOMPRESSED: AtomicU64 = AtomicU64::new(DEFAULT_MAX_DECOMPRESSED);

/// The most bytes a compressed module may decompress to.
pub fn max_decompressed() -> u64 {
    MAX_DECOMPRESSED.load(Ordering::Relaxed)
}

/// Set the bound of [`max_decompressed`] for the whole process.
pub fn set_max_decompressed(bytes: u64) {
    MAX_DECOMPRESSED.store(bytes, Ordering::Relaxed);
}

/// Parse a size: decimal bytes, or with `K`, `M` or `G` (KiB, MiB, GiB).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, shift) = match t.as_bytes().last()? {
        b'k' | b'K' => (&t[..t.len() - 1], 10),
        b'm' | b'M' => (&t[..t.len() - 1], 20),
        b'g' | b'G' => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Take the bound from [`MAX_DECOMPRESSED_ENV`] when it is set; the error
/// says what is wrong with its value.
pub fn max_decompressed_from_env() -> Result<(), String> {
    let Some(value) = std::env::var_os(MAX_DECOMPRESSED_ENV) else {
        return Ok(());
    };
    let text = value.to_string_lossy();
    let bytes = parse_size(&text).ok_or_else(|| {
        format!("{MAX_DECOMPRESSED_ENV}='{text}': expected a size in bytes, or with K, M or G (4G)")
    })?;
    set_max_decompressed(bytes);
    Ok(())
}

/// Module file names picked up in a directory ([`find_modules`]).
pub const MODULE_SUFFIXES: [&str; 3] = [".ko", ".ko.xz", ".ko.zst"];

/// Why a module file could not be read, found or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, listing or writing `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The output names the input through another name: writing there
    /// would replace the link, not the module.
    #[error(
        "{}: is the input {} through {how}; writing it would replace the link, not the module (use --in-place)",
        path.display(),
        input.display()
    )]
    OutputIsInput {
        /// The output as given.
        path: PathBuf,
        /// The input.
        input: PathBuf,
        /// `a symbolic link` or `a hard link`.
        how: &'static str,
    },
    /// The input changed while it was read: what was read may be torn.
    #[error("{}: changed while it was being read; nothing written", path.display())]
    Changed {
        /// The input.
        path: PathBuf,
    },
    /// `path` decompresses to more than the bound ([`max_decompressed`]).
    #[error(
        "{}: {format}: decompresses to more than {limit} bytes, the limit ({MAX_DECOMPRESSED_ENV}=BYTES raises it)",
        path.display()
    )]
    TooLarge {
        /// The compressed file.
        path: PathBuf,
        /// The compression: `xz` or `zstd`.
        format: &'static str,
        /// The bound, in bytes.
        limit: u64,
    },
    /// `path` is compressed, and the output would replace it (or be named
    /// like a compressed module): modules are written uncompressed.
    #[error(
        "{}: klp-convert writes modules uncompressed and will not write one in place of, or named as, a {format}-compressed module; convert into OUTPUT.ko with -o, then compress that",
        path.display()
    )]
    Compressed {
        /// The input (in place) or the output.
        path: PathBuf,
        /// The compression: `xz` or `zstd`.
        format: &'static str,
    },
    /// `path` is compressed but does not decompress.
    #[error("{}: {format}: {source}", path.display())]
    Decompress {
        /// The compressed file.
        path: PathBuf,
        /// The compression: `xz` or `zstd`.
        format: &'static str,
        /// What the decompressor said.
        source: io::Error,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Decompress { path, .. }
            | Error::TooLarge { path, .. }
            | Error::Compressed { path, .. }
            | Error::OutputIsInput { path, .. }
            | Error::Changed { path } => path,
        }
    }
}

/// An [`Error::Io`] about `path`.
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read a module file. Compressed modules (`.ko.xz`, `.ko.zst`, as
/// distributions ship them) are recognised by their magic bytes and
/// decompressed, whatever the file is called ([`decompress`]).
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let raw = fs::read(path).map_err(io_error(path))?;
    decompress(path, raw)
}

/// A module file's contents for a reader that only looks at them (`check`,
/// `show`, `build`): the file mapped when it can be (`mapped`),
/// else read; decompressed into memory when compressed. [`Module::whole`]
/// says whether the file stayed whole while it was looked at.
#[derive(Debug)]
pub struct Module {
    path: PathBuf,
    contents: Contents,
}

/// Where a module's bytes are: a mapping of the file, or memory.
#[derive(Debug)]
enum Contents {
    Mapped(crate::mapped::Mapping),
    Owned(Vec<u8>),
}

impl Contents {
    fn bytes(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m.bytes(),
            Contents::Owned(v) => v,
        }
    }

    fn torn(&self) -> bool {
        matches!(self, Contents::Mapped(m) if m.torn())
    }
}

impl std::ops::Deref for Module {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.contents.bytes()
    }
}

impl Module {
    /// The module's bytes (decompressed).
    pub fn bytes(&self) -> &[u8] {
        self.contents.bytes()
    }

    /// [`Error::Changed`] if the file was truncated while it was mapped
    /// (what was read of it then is not the file's); to be asked after the
    /// bytes were used, before what was found in them is reported.
    pub fn whole(&self) -> Result<(), Error> {
        if self.contents.torn() {
            return Err(Error::Changed {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

/// [`read`], as a [`Module`]: what `check`, `show` and `build` read
/// modules with. Read into memory, not mapped: the ELF reader validates
/// the headers once and decodes them again where they are used, and bytes
/// another process changes under a mapping between the two could make it
/// index past what it validated. Only `convert`, which confirms its input
/// after the conversion and catches what a change made of it
/// ([`open_stable`]), parses a mapping.
pub fn open(path: &Path) -> Result<Module, Error> {
    read(path).map(|v| Module {
        path: path.to_path_buf(),
        contents: Contents::Owned(v),
    })
}

/// `path` mapped whole if it is a regular file of a nonzero size and the
/// system maps it; `Ok(None)` tells the caller to read it instead.
fn map_regular(path: &Path) -> io::Result<Option<crate::mapped::Mapping>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let meta = fs::metadata(path)?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    // O_NONBLOCK: should a FIFO have taken the file's place meanwhile, it
    // is not waited on (it is then read as before, by the fallback).
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let Ok(len) = usize::try_from(meta.len()) else {
        return Ok(None);
    };
    if !meta.is_file() || len == 0 {
        return Ok(None);
    }
    Ok(crate::mapped::Mapping::new(&file, len))
}

/// The compression of a file's bytes, by their magic: `xz`, `zstd` or none.
pub fn compression(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(XZ_MAGIC) {
        Some("xz")
    } else if bytes.starts_with(ZSTD_MAGIC) {
        Some("zstd")
    } else {
        None
    }
}

/// The module in `raw`, the bytes of `path`: decompressed when
/// [`compression`] knows its magic (to at most [`max_decompressed`] bytes),
/// else `raw` itself.
pub fn decompress(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, Error> {
    match compression(&raw) {
        Some(format) => decompress_as(path, &raw, format),
        None => Ok(raw),
    }
}

/// [`decompress`] of borrowed bytes: `raw` itself when not compressed.
pub fn decompress_slice<'r>(
    path: &Path,
    raw: &'r [u8],
) -> Result<std::borrow::Cow<'r, [u8]>, Error> {
    match compression(raw) {
        Some(format) => decompress_as(path, raw, format).map(std::borrow::Cow::Owned),
        None => Ok(std::borrow::Cow::Borrowed(raw)),
    }
}

/// The module in `raw`, compressed as `format` says ([`decompress`]).
fn decompress_as(path: &Path, raw: &[u8], format: &'static str) -> Result<Vec<u8>, Error> {
    let failed = |source: io::Error| Error::Decompress {
        path: path.to_path_buf(),
        format,
        source,
    };
    let limit = max_decompressed();
    let out = if format == "xz" {
        decompress_xz(raw, limit).map_err(failed)?
    } else {
        decompress_zstd(raw, limit).map_err(|e| match e {
            ZstdError::TooLarge => Error::TooLarge {
                path: path.to_path_buf(),
                format,
                limit,
            },
            ZstdError::Bad(source) => failed(source),
        })?
    };
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            format,
            limit,
        });
    }
    Ok(out)
}

/// How far an xz dictionary may exceed the bound: 64 MiB, what `xz -9`
/// uses, and 1 MiB more. A small module packed by `xz -9` declares a 64 MiB
/// dictionary whatever its size, so a tight bound must still read it; the
/// dictionary is allocated zeroed and touched only as far as the output
/// reaches, so what it costs in memory follows the output, and a header can
/// ask for no more than the bound plus this.
pub const XZ_DICT_SLACK: u64 = 65 << 20;

/// The module in the xz file `raw`, to at most `limit` bytes (one more
/// tells [`decompress`] it is over), with xz4rust, a port of the kernel's
/// own XZ Embedded. Concatenated streams and stream padding are read as
/// kmod's userspace decompression (liblzma with `LZMA_CONCATENATED`) and
/// `xz -d` read them; the kernel's in-kernel module decompression
/// (kernel/module/decompress.c, which kmod 31 and later hands `.ko.xz`
/// files to when /sys/module/compression says xz) reads only the first
/// stream. Anything else after a stream, a cut stream, a failed check or a
/// dictionary over `limit` + [`XZ_DICT_SLACK`] is refused.
fn decompress_xz(raw: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let max_dict = usize::try_from(limit.saturating_add(XZ_DICT_SLACK)).unwrap_or(usize::MAX);
    let mut decoder = xz4rust::XzDecoder::in_heap_with_alloc_dict_size(0, max_dict);
    let mut out = Vec::new();
    let (mut filled, mut at) = (0, 0);
    while room_ahead(&mut out, filled, limit) {
        let input = raw.get(at..).unwrap_or_default();
        let step = decoder
            .decode(input, &mut out[filled..])
            .map_err(|e| xz_error(&e, limit))?;
        at += step.input_consumed();
        filled += step.output_produced();
        if step.is_end_of_stream() {
            let rest = raw.get(at..).unwrap_or_default();
            let zeros = rest.iter().take_while(|&&b| b == 0).count();
            if zeros % 4 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "corrupt data: {zeros} bytes of stream padding, not a multiple of four"
                    ),
                ));
            }
            let rest = &rest[zeros..];
            if rest.is_empty() {
                break;
            }
            if !rest.starts_with(XZ_MAGIC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} bytes of data after the stream", rest.len()),
                ));
            }
            at += zeros;
            decoder.reset();
        } else if !step.made_progress() {
            // With output room left, a decoder that takes nothing more
            // has run out of input.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "premature eof",
            ));
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// xz4rust's error `e` in words (its Display text is the variant's name).
fn xz_error(e: &xz4rust::XzError, limit: u64) -> io::Error {
    use xz4rust::XzError as X;
    let text = match e {
        X::NeedsLargerInputBuffer => {
            return io::Error::new(io::ErrorKind::UnexpectedEof, "premature eof")
        }
        X::DictionaryTooLarge(size) => format!(
            "the stream's dictionary of {} MiB is over the limit of {} MiB ({MAX_DECOMPRESSED_ENV} raises it)",
            size.div_ceil(1 << 20),
            limit.saturating_add(XZ_DICT_SLACK) >> 20,
        ),
        X::ContentCrc32Mismatch(..) | X::ContentCrc64Mismatch(..) => {
            "checksum mismatch: the content does not match the stream's check".to_string()
        }
        X::Sha256NotSupported => {
            "the stream's SHA-256 check is not supported (xz and kbuild write CRC64 or CRC32)".to_string()
        }
        X::UnsupportedCheckType(_)
        | X::UnsupportedStreamHeaderOption
        | X::UnsupportedBlockHeaderOption
        | X::UnsupportedLzmaProperties(_)
        | X::UnsupportedBcjFilter(_) => "unsupported options or filters".to_string(),
        _ => "corrupt data".to_string(),
    };
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// The largest zstd window read: 128 MiB, libzstd's default window limit
/// (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`, 27), which kmod's decompression inherits
/// and kbuild's `zstd --long=27` keeps to. ruzstd's `StreamingDecoder::new`
/// checks no window at all, and while the window is larger than what was
/// decoded it hands out nothing: a 32 KiB frame asking for a 2^40-byte
/// window had it decode a whole gigabyte into memory before the output
/// bound saw a byte.
pub const ZSTD_MAX_WINDOW: u64 = 1 << 27;

/// Why a zstd frame was not read.
enum ZstdError {
    /// Over the bound (the frame says so, or its content is).
    TooLarge,
    /// Anything else, in words.
    Bad(io::Error),
}

/// The module in the zstd frame `raw`, to at most `limit` bytes (one more
/// tells [`decompress`] it is over). The frame header is read first: its
/// window is ruzstd's memory, and a content size it declares over `limit` is
/// over the bound without decoding. The file must be that one frame: the
/// kernel's and kmod's decompression read one frame, so a second one or
/// trailing bytes would be a module klp-convert reads and the kernel loads
/// differently.
fn decompress_zstd(raw: &[u8], limit: u64) -> Result<Vec<u8>, ZstdError> {
    let bad = |kind, text: String| ZstdError::Bad(io::Error::new(kind, text));
    let (frame, _) =
        ruzstd::frame::read_frame_header(raw).map_err(|e| ZstdError::Bad(zstd_error(&e)))?;
    let header = &frame.header;
    if header.descriptor.reserved_flag() {
        // libzstd refuses it too; ruzstd reads on.
        return Err(bad(
            io::ErrorKind::InvalidData,
            "corrupt data in the frame header (a reserved bit is set)".to_string(),
        ));
    }
    let declared = match header.descriptor.frame_content_size_bytes() {
        Ok(0) => None,
        Ok(_) => Some(header.frame_content_size()),
        Err(e) => return Err(ZstdError::Bad(zstd_error(&e))),
    };
    if declared.is_some_and(|size| size > limit) {
        return Err(ZstdError::TooLarge);
    }
    let window = header
        .window_size()
        .map_err(|e| ZstdError::Bad(zstd_error(&e)))?;
    if window > ZSTD_MAX_WINDOW {
        return Err(bad(
            io::ErrorKind::InvalidData,
            format!("the frame needs a {window}-byte window; zstd's decoders, kmod's included, accept at most 128 MiB"),
        ));
    }
    let mut decoder = ruzstd::streaming_decoder::StreamingDecoder::new(raw)
        .map_err(|e| ZstdError::Bad(zstd_error(&e)))?;
    let out = read_bounded(&mut decoder, limit).map_err(|e| ZstdError::Bad(zstd_io_error(e)))?;
    if out.len() as u64 > limit {
        return Err(ZstdError::TooLarge);
    }
    // The frame's checksum (zstd writes one by default, and kmod's libzstd
    // checks it): ruzstd computes it but leaves the comparison to its
    // caller. Without it, a flipped byte decodes to another module.
    let frame = &decoder.decoder;
    if let (Some(want), Some(got)) = (
        frame.get_checksum_from_data(),
        frame.get_calculated_checksum(),
    ) {
        if want != got {
            return Err(bad(
                io::ErrorKind::InvalidData,
                format!(
                    "checksum mismatch: the frame says {want:08x}, its content hashes to {got:08x}"
                ),
            ));
        }
    }
    // libzstd refuses a frame whose content differs from the size it
    // declares ("corrupted"), and so does kmod.
    if let Some(size) = declared {
        if size != out.len() as u64 {
            return Err(bad(
                io::ErrorKind::InvalidData,
                format!(
                    "corrupt data: the frame declares {size} bytes and holds {}",
                    out.len()
                ),
            ));
        }
    }
    let rest = decoder.get_ref();
    if !rest.is_empty() {
        let what = if rest.starts_with(ZSTD_MAGIC)
            || rest.len() >= 4 && rest[0] & 0xf0 == 0x50 && rest[1..4] == [0x2a, 0x4d, 0x18]
        {
            "a second frame"
        } else {
            "data"
        };
        return Err(bad(
            io::ErrorKind::InvalidData,
            format!(
                "{} bytes of {what} after the frame; the kernel and kmod read one frame",
                rest.len()
            ),
        ));
    }
    Ok(out)
}

/// ruzstd's error `e` in fixed words: its Display text carries Debug text
/// of inner errors (`DecompressLiteralsError(DecodedLiteralCountMismatch {
/// decoded: 3, expected: 9 })`) and swaps its "header" and "body" labels. An
/// input cut short is an unexpected end of file somewhere down the chain,
/// said "premature eof" as for xz; anything else is "corrupt data" and where
/// in the frame.
fn zstd_error(e: &(dyn std::error::Error + 'static)) -> io::Error {
    use ruzstd::frame::{FrameDescriptorError, FrameHeaderError, ReadFrameHeaderError};
    use ruzstd::frame_decoder::FrameDecoderError as F;
    let mut link = Some(e);
    while let Some(err) = link {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
        {
            return io::Error::new(io::ErrorKind::UnexpectedEof, "premature eof");
        }
        link = err.source();
    }
    let header = e.is::<ReadFrameHeaderError>()
        || e.is::<FrameHeaderError>()
        || e.is::<FrameDescriptorError>();
    let place = match e.downcast_ref::<F>() {
        _ if header => " in the frame header",
        Some(F::ReadFrameHeaderError(_) | F::FrameHeaderError(_) | F::FailedToInitialize(_)) => {
            " in the frame header"
        }
        Some(F::DictNotProvided { .. }) => {
            " (the frame needs a dictionary, which modules never use)"
        }
        Some(F::FailedToReadBlockHeader(_)) => " in a block header",
        Some(F::FailedToReadBlockBody(_)) => " in a block",
        Some(F::FailedToReadChecksum(_)) => " in the checksum",
        _ => "",
    };
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt data{place}"))
}

/// [`zstd_error`] of what ruzstd's reader returned: the decoder's error
/// inside an [`io::Error`], or an I/O error of its own.
fn zstd_io_error(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return io::Error::new(io::ErrorKind::UnexpectedEof, "premature eof");
    }
    match e.get_ref() {
        Some(inner) => zstd_error(inner),
        None => zstd_error(&e),
    }
}

/// Make room in `out` past its first `filled` bytes for a decoder to write
/// into: zeroed 64 KiB at a time, never past `limit + 1` bytes in all (one
/// more than the bound, to tell an output over it). False when the output
/// holds `limit + 1` bytes already: the decoder must stop.
fn room_ahead(out: &mut Vec<u8>, filled: usize, limit: u64) -> bool {
    const CHUNK: usize = 1 << 16;
    if filled < out.len() {
        return true;
    }
    let room = limit.saturating_add(1).saturating_sub(filled as u64);
    if room == 0 {
        return false;
    }
    let more = usize::try_from(room).map_or(CHUNK, |r| r.min(CHUNK));
    out.resize(filled + more, 0);
    true
}

/// All of `decoder`, up to `limit + 1` bytes (one more than the bound, to
/// tell a module over it). The buffer is zeroed 64 KiB at a time ahead of
/// the decoder, so the output costs what it holds: `read_to_end` has the
/// decoder fill buffers that double, and a module of 35 MiB cost 64 MiB.
/// The decoder's own window comes on top (zstd's, at most
/// [`ZSTD_MAX_WINDOW`]; xz's dictionary, touched only as far as the output
/// reaches): up to twice the output in all.
fn read_bounded(decoder: &mut impl io::Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut filled = 0;
    while room_ahead(&mut out, filled, limit) {
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// The module files named by `paths`: files as given, directories searched
/// for `.ko`, `.ko.xz` and `.ko.zst` ([`MODULE_SUFFIXES`]), sorted.
pub fn find_modules(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(d) = stack.pop() {
                let entries = fs::read_dir(&d).map_err(io_error(&d))?;
                for e in entries {
                    let e = e.map_err(io_error(&d))?;
                    let path = e.path();
                    let t = e.file_type().map_err(io_error(&path))?;
                    let module = MODULE_SUFFIXES
                        .iter()
                        .any(|s| path.to_string_lossy().ends_with(s));
                    if t.is_dir() {
                        stack.push(path);
                    } else if t.is_file() && module {
                        found.push(path);
                    } else if t.is_symlink() && module {
                        // A link to a module (RHEL's weak-updates/) is read;
                        // one that leads nowhere is an error, not skipped.
                        let target = fs::metadata(&path).map_err(io_error(&path))?;
                        if target.is_file() {
                            found.push(path);
                        }
                    }
                    // Links to directories are not followed: /lib/modules/
                    // <release> links `build` and `source` to whole trees.
                }
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Do `a` and `b` name the same existing file?
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuse an `output` that is the existing `input` under another name: a
/// symbolic link to it, or another hard link. (The same path spelled
/// differently, `./a.ko` for `a.ko`, is the input itself.)
pub fn check_output(input: &Path, output: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(i), Ok(o)) = (fs::metadata(input), fs::metadata(output)) else {
        return Ok(());
    };
    if (i.dev(), i.ino()) != (o.dev(), o.ino()) {
        return Ok(());
    }
    let how = if fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_symlink()) {
        "a symbolic link"
    } else if !same_file(input, output) {
        "a hard link"
    } else {
        return Ok(());
    };
    Err(Error::OutputIsInput {
        path: output.to_path_buf(),
        input: input.to_path_buf(),
        how,
    })
}

/// Does `path` hold `bytes` now? Read again, 64 KiB at a time.
fn still_holds(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    let mut chunk = vec![0; 1 << 16];
    let mut at = 0;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok(at == bytes.len()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(path)(e)),
        };
        if bytes.get(at..at + n) != Some(&chunk[..n]) {
            return Ok(false);
        }
        at += n;
    }
}

/// Read `path` whole, refusing a file that changed meanwhile: a torn read
/// must not be converted. Its size or modification time moved, or a second
/// read differs: a write(2) sets the time when it begins, so one that began
/// before the first look and copies during the read moves neither. A FIFO,
/// a device or a socket is refused unopened: it has no size to check, and
/// reading it could block (a FIFO without a writer) or never end.
pub fn read_stable(path: &Path) -> Result<Vec<u8>, Error> {
    let stamp = |p: &Path| {
        fs::metadata(p)
            .map(|m| (m.len(), m.modified().ok(), m.is_file() || m.is_dir()))
            .map_err(io_error(p))
    };
    let before = stamp(path)?;
    if !before.2 {
        return Err(io_error(path)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, a device or a socket)",
        )));
    }
    let bytes = fs::read(path).map_err(io_error(path))?;
    if stamp(path)? != before || bytes.len() as u64 != before.0 || !still_holds(path, &bytes)? {
        return Err(Error::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// What [`open_stable`] compares before and after: a file that moved in
/// any of these changed. The change time moves with every write and every
/// `utime`, so a writer that puts the modification time back still shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    changed: (i64, i64),
    file: (u64, u64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt as _;
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            changed: (m.ctime(), m.ctime_nsec()),
            file: (m.dev(), m.ino()),
        }
    }
}

/// A 64-bit digest of bytes fed in pieces of any size: the same bytes give
/// the same digest however they were cut. Four independent lanes of
/// xor-multiply-rotate over 8-byte words, about as fast as memory reads
/// (21 MB in 2 ms): it tells the bytes a mapping held before a conversion
/// from those it holds after, against accidental change, not an adversary
/// (who could as well write the file before it is read).
#[derive(Debug, Clone)]
pub struct Digest {
    lanes: [u64; 4],
    pending: [u8; 32],
    filled: usize,
    total: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            lanes: [
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ],
            pending: [0; 32],
            filled: 0,
            total: 0,
        }
    }
}

impl Digest {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut d = Digest::default();
        d.update(bytes);
        d.finish()
    }

    fn block(&mut self, b: &[u8]) {
        for (lane, w) in self.lanes.iter_mut().zip(b.chunks_exact(8)) {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            *lane = ((*lane ^ w).wrapping_mul(Self::K)).rotate_left(29);
        }
    }

    /// Feed `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.filled > 0 {
            let take = bytes.len().min(32 - self.filled);
            self.pending[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 32 {
                return;
            }
            let pending = self.pending;
            self.block(&pending);
            self.filled = 0;
        }
        let mut blocks = bytes.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// The digest of everything fed, its length included.
    pub fn finish(&self) -> u64 {
        let mut last = self.clone();
        let filled = last.filled;
        last.pending[filled..].fill(0);
        let pending = last.pending;
        last.block(&pending);
        let mut h = self.total;
        for lane in last.lanes {
            h = (h.rotate_left(5) ^ lane).wrapping_mul(Self::K);
        }
        h ^ (h >> 32)
    }
}

/// An input to convert, read as [`open_stable`] reads it;
/// [`Stable::confirm`] says whether it stayed as it was.
#[derive(Debug)]
pub struct Stable {
    path: PathBuf,
    contents: Contents,
    /// Mapped: the stamp and digest taken before the bytes were used.
    before: Option<(Stamp, u64)>,
}

impl Stable {
    /// The file's bytes (as stored: compressed or not).
    pub fn bytes(&self) -> &[u8] {
        self.contents.bytes()
    }

    /// [`Error::Changed`] unless the mapped file is as it was when opened:
    /// not truncated under the mapping, the same stamp (size, times,
    /// inode), and the same digest of its bytes. Asked after a conversion,
    /// before its output replaces anything, and of every failure (a changed
    /// input's errors are not the module's). A copy ([`open_copy`], or a
    /// file that could not be mapped) was compared whole when read, and
    /// nothing changes it.
    pub fn confirm(&self) -> Result<(), Error> {
        let Some((stamp, digest)) = self.before else {
            return Ok(());
        };
        let changed = || Error::Changed {
            path: self.path.clone(),
        };
        if self.contents.torn() {
            return Err(changed());
        }
        let now = fs::metadata(&self.path).map_err(io_error(&self.path))?;
        if Stamp::of(&now) != stamp || Digest::of(self.bytes()) != digest || self.contents.torn() {
            return Err(changed());
        }
        Ok(())
    }
}

/// Open `path` for a conversion, which must refuse a file that changes
/// while it is converted: a torn read must not be converted. A plain
/// regular file is mapped (`mapped`), its stamp taken before and after,
/// and the mapping digested. The conversion reads the mapping, which shows
/// any later write, and [`Stable::confirm`] compares stamp and digest
/// again after it: every byte the conversion read was read between two
/// digests, so a write that changed one (even a write that began before
/// the first look, which moves no stamp) shows in the second. The two
/// digests are the two reads [`read_stable`] compares, around the whole
/// conversion rather than around a copy.
/// Anything else is read by [`read_stable`] as before (an empty file, a
/// /proc file, a file system that cannot map), and a FIFO, a device or a
/// socket is refused unopened.
pub fn open_stable(path: &Path) -> Result<Stable, Error> {
    let meta = fs::metadata(path).map_err(io_error(path))?;
    if meta.is_file() && meta.len() > 0 {
        if let Some(m) = map_regular(path).map_err(io_error(path))? {
            let stamp = Stamp::of(&meta);
            let changed = || Error::Changed {
                path: path.to_path_buf(),
            };
            // The mapping, checked as `read_stable` checks a read: a change
            // of size or stamp now is a change while the file was read.
            if m.bytes().len() as u64 != stamp.len || m.torn() {
                return Err(changed());
            }
            let now = fs::metadata(path).map_err(io_error(path))?;
            if Stamp::of(&now) != stamp {
                return Err(changed());
            }
            // What the conversion will read: `confirm` compares it again
            // after the conversion, which reads the mapping.
            let digest = Digest::of(m.bytes());
            return Ok(Stable {
                path: path.to_path_buf(),
                contents: Contents::Mapped(m),
                before: Some((stamp, digest)),
            });
        }
    }
    open_copy(path)
}

/// [`read_stable`] as a [`Stable`]: the file copied into memory, for a
/// conversion that must not depend on the file after the read (one whose
/// mapped input changed meanwhile, tried again).
pub fn open_copy(path: &Path) -> Result<Stable, Error> {
    Ok(Stable {
        path: path.to_path_buf(),
        contents: Contents::Owned(read_stable(path)?),
        before: None,
    })
}

/// How many random characters a temporary file name carries: with the
/// process id, enough that two writers never pick the same name (and
/// `tempfile` tries another name if one is taken anyway).
const TEMP_RANDOM: usize = 6;

/// The most bytes of the destination's name a temporary file name repeats:
/// the rest of the name must fit in a file name (255 bytes on Linux).
const TEMP_NAME_PART: usize = 128;

/// The start of the names of the temporary files that process `pid` writes
/// beside `file_name`: `.{file_name}.klp-convert-{pid}.`, then
/// [`TEMP_RANDOM`] random characters and `.tmp`. A leftover names the
/// output it was for and the run that left it, and kbuild's `make clean`
/// removes it (it matches `.*.tmp`).
fn temp_prefix(file_name: &std::ffi::OsStr, pid: u32) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
    let name = file_name.as_bytes();
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(&name[..name.len().min(TEMP_NAME_PART)]);
    prefix.extend_from_slice(format!(".klp-convert-{pid}.").as_bytes());
    std::ffi::OsString::from_vec(prefix)
}

/// Create a temporary file in `dir`, named `prefix`, `random` random
/// characters and `.tmp` (`tempfile` picks the name and tries another one
/// when it is taken). The creation is exclusive, `O_CREAT | O_EXCL`: a
/// file already at that name is not opened, and a symbolic link there is
/// not followed, whatever it points to. The file is private (mode 0600)
/// until [`write_atomically`] gives it its mode, and it is removed when
/// dropped unless persisted. An error is the system's alone, without the
/// name of a file that does not exist.
fn create_temp(
    dir: &Path,
    prefix: &std::ffi::OsStr,
    random: usize,
) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::OpenOptionsExt as _;
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .rand_bytes(random)
        .make_in(dir, |path| {
            // Readable too: the output is mapped back to be proven.
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
        })
}

/// How far [`write_atomically`] goes to survive a crash of the machine
/// (a killed process never leaves a partial file either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The file and its directory are synced before and after the rename:
    /// after a power loss `path` holds the old bytes or the new ones. For
    /// `--in-place`, where the old bytes are the user's only copy.
    Synced,
    /// The rename only, as compilers and linkers write their outputs: a
    /// power loss may lose the new file (never the input). Syncing costs
    /// more than the whole conversion of a large module.
    RenameOnly,
}

/// A temporary file beside a destination, and the directory they share.
struct Temp {
    tmp: tempfile::NamedTempFile,
    dir: PathBuf,
}

/// Create the temporary file beside `path` (see [`temp_prefix`]). Errors
/// name `path`.
fn temp_beside(path: &Path) -> Result<Temp, Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| Error::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let prefix = temp_prefix(file_name, std::process::id());
    let tmp = create_temp(&dir, &prefix, TEMP_RANDOM).map_err(io_error(path))?;
    Ok(Temp { tmp, dir })
}

/// Give the written `temp` its mode and rename it over `path`, synced as
/// `durability` says. On error the temporary file is removed (dropped).
fn commit(
    path: &Path,
    temp: Temp,
    mode: fs::Permissions,
    durability: Durability,
) -> Result<(), Error> {
    let Temp { tmp, dir } = temp;
    let f = tmp.as_file();
    f.set_permissions(mode).map_err(io_error(path))?;
    if durability == Durability::RenameOnly {
        return tmp
            .persist(path)
            .map(drop)
            .map_err(|e| io_error(path)(e.error));
    }
    f.sync_all().map_err(io_error(path))?;
    tmp.persist(path).map_err(|e| io_error(path)(e.error))?;
    // The rename itself survives a crash once the directory is synced.
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(&dir))
}

/// Write `bytes` to a new temporary file beside `path` (see [`temp_prefix`]),
/// then rename it over `path`. On error the temporary file is removed and
/// `path` is left as it was.
///
/// A process killed before the rename leaves its temporary file behind, and
/// no later run removes it: no run can tell whether another's temporary
/// file is still being written. A process id does not say (builds in other
/// PID namespaces share the tree), and neither does an age. So each run
/// touches its own file only; the random name never meets another's.
pub fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: fs::Permissions,
    durability: Durability,
) -> Result<(), Error> {
    // Errors name the destination. On any error the temporary file is
    // dropped, which removes it.
    let temp = temp_beside(path)?;
    temp.tmp
        .as_file()
        .write_all(bytes)
        .map_err(io_error(path))?;
    commit(path, temp, mode, durability)
}

/// A writer that counts the bytes it passes on.
struct Counting<W> {
    inner: W,
    total: u64,
}

impl<W: io::Write> io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.total += n as u64;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// [`write_atomically`] for an output written in pieces and proven before
/// it replaces anything: `write` writes the file (never held whole in
/// memory) and returns what `prove` needs, then the temporary file is
/// mapped back (`mapped`; read back when it cannot be) and `prove`
/// judges what it holds. Only when `prove` accepts, the file was not
/// truncated meanwhile, it is as long as what `write` wrote and its stamp
/// (size, times, inode) did not move, is it renamed over `path`. On any
/// error the temporary file is removed and `path` is left as it was; an
/// error of `prove` on a file that changed meanwhile is [`Error::Changed`],
/// not `prove`'s.
///
/// Unlike the input ([`Stable::confirm`]), the output is not digested as
/// written and again as proven: the file is this run's own, created
/// exclusively under a random name, private (mode 0600) until the rename.
/// What `prove` reads is what the kernel will load after the rename, and a
/// change to it meanwhile, which would take another process of the same
/// user opening that file on purpose, moves its stamp (any write(2) or
/// truncate moves the change time) or tears the mapping. Two digests of a
/// 37 MB output cost 45 million instructions, a twentieth of the
/// conversion that wrote it.
pub fn write_proven<S, T, E: From<Error>>(
    path: &Path,
    mode: fs::Permissions,
    durability: Durability,
    write: impl FnOnce(&mut dyn io::Write) -> io::Result<S>,
    prove: impl FnOnce(S, &[u8]) -> Result<T, E>,
) -> Result<T, E> {
    let temp = temp_beside(path)?;
    let file = temp.tmp.as_file();
    let mut out = Counting {
        inner: file,
        total: 0,
    };
    let state = write(&mut out).map_err(io_error(path))?;
    let written = out.total;
    let changed = || Error::Changed {
        path: path.to_path_buf(),
    };
    let stamp = |f: &fs::File| f.metadata().map(|m| Stamp::of(&m)).map_err(io_error(path));
    let before = stamp(file)?;
    if before.len != written {
        return Err(changed().into());
    }
    let len = usize::try_from(before.len).map_err(|_| changed())?;
    let mapped = crate::mapped::Mapping::new(file, len);
    let read_back;
    let bytes = match &mapped {
        Some(m) => m.bytes(),
        None => {
            let mut v = Vec::with_capacity(len);
            let mut f = file;
            io::Seek::seek(&mut f, io::SeekFrom::Start(0)).map_err(io_error(path))?;
            f.read_to_end(&mut v).map_err(io_error(path))?;
            read_back = v;
            &read_back
        }
    };
    let torn = || mapped.as_ref().is_some_and(|m| m.torn());
    let proven = match prove(state, bytes) {
        Err(_) if torn() => return Err(changed().into()),
        result => result?,
    };
    if torn() || stamp(file)? != before {
        return Err(changed().into());
    }
    drop(mapped);
    commit(path, temp, mode, durability)?;
    Ok(proven)
}

#[cfg(test)]
mod temp_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn temporary_names_name_the_output_and_the_run() {
        let p = temp_prefix(std::ffi::OsStr::new("lp.ko"), 42);
        assert_eq!(p, ".lp.ko.klp-convert-42.");
        let long = "x".repeat(300);
        let p = temp_prefix(std::ffi::OsStr::new(&long), 4_194_304);
        assert_eq!(p.len(), 1 + TEMP_NAME_PART + ".klp-convert-4194304.".len());
        let dir = tempfile::tempdir().unwrap();
        let t = create_temp(dir.path(), &p, TEMP_RANDOM).unwrap();
        let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.len() <= 255 && name.ends_with(".tmp"), "{name}");
        assert_eq!(
            fs::metadata(t.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(t);
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    /// What stands at a would-be temporary name (here the only one: no
    /// random part) is neither opened, followed nor changed.
    #[test]
    fn a_file_or_link_at_the_temporary_name_is_not_followed_or_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let prefix = temp_prefix(std::ffi::OsStr::new("lp.ko"), 7);
        let at = d.join(format!("{}.tmp", prefix.to_string_lossy()));
        let victim = d.join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let cases: [(&str, &dyn Fn()); 3] = [
            ("a file", &|| fs::write(&at, b"someone else's").unwrap()),
            ("a link to a file", &|| {
                std::os::unix::fs::symlink(&victim, &at).unwrap()
            }),
            ("a dangling link", &|| {
                std::os::unix::fs::symlink(d.join("created"), &at).unwrap()
            }),
        ];
        for (what, place) in cases {
            place();
            let e = create_temp(d, &prefix, 0).expect_err(what);
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{what}: {e}");
            assert_eq!(fs::read(&victim).unwrap(), b"keep me", "{what}");
            assert!(!d.join("created").exists(), "{what}: the link was followed");
            if what == "a file" {
                assert_eq!(fs::read(&at).unwrap(), b"someone else's");
            }
            fs::remove_file(&at).unwrap();
        }
    }

    /// Another run's temporary files, whatever their process id says, stay;
    /// a write leaves none of its own.
    #[test]
    fn a_write_leaves_other_runs_temporary_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let out = d.join("out.ko");
        let own = std::process::id();
        let foreign = [
            // pid_max is at most 2^22: no process here has this id, as in
            // another PID namespace.
            ".out.ko.klp-convert-4194305.AbC123.tmp".to_string(),
            format!(".out.ko.klp-convert-{own}.zzzzzz.tmp"),
            // The names of earlier versions.
            ".out.ko.klp-convert-4194305.tmp".to_string(),
        ];
        for f in &foreign {
            fs::write(d.join(f), b"a write in progress").unwrap();
        }
        for durability in [Durability::RenameOnly, Durability::Synced] {
            write_atomically(&out, b"new", fs::Permissions::from_mode(0o640), durability).unwrap();
            assert_eq!(fs::read(&out).unwrap(), b"new");
            assert_eq!(
                fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        let mut want: Vec<String> = foreign.to_vec();
        want.push("out.ko".into());
        want.sort();
        assert_eq!(names(d), want);
        for f in &foreign {
            assert_eq!(fs::read(d.join(f)).unwrap(), b"a write in progress");
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_names_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("outdir");
        fs::create_dir(&out).unwrap();
        let e = write_atomically(
            &out,
            b"new",
            fs::Permissions::from_mode(0o644),
            Durability::RenameOnly,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("{}: ", out.display())),
            "{e}"
        );
        assert_eq!(names(dir.path()), ["outdir"]);
    }
}

#[cfg(test)]
mod stable_tests {
    use super::*;
    use std::os::unix::fs::FileExt as _;

    /// A file of `len` bytes (four pages and a bit: several pages to
    /// truncate away), in a fresh directory.
    fn input(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ko");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8 + 1).collect();
        fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    /// Truncate `path` to `len` bytes.
    fn cut(path: &Path, len: u64) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_len(len).unwrap();
    }

    fn is_changed(r: Result<(), Error>, path: &Path) -> bool {
        matches!(r, Err(Error::Changed { path: p }) if p == path)
    }

    #[test]
    fn digests_do_not_depend_on_how_the_bytes_are_cut() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
        let whole = Digest::of(&bytes);
        for cut in [1, 7, 31, 32, 33, 64, 999] {
            let mut d = Digest::default();
            for piece in bytes.chunks(cut) {
                d.update(piece);
            }
            assert_eq!(d.finish(), whole, "pieces of {cut}");
        }
        let mut other = bytes.clone();
        for at in [0, 8, 500, 999] {
            other[at] ^= 0x80;
            assert_ne!(Digest::of(&other), whole, "byte {at}");
            other[at] ^= 0x80;
        }
        assert_ne!(Digest::of(&bytes[..999]), whole);
        assert_ne!(Digest::of(&[0; 8]), Digest::of(&[0; 16]));
    }

    #[test]
    fn a_file_left_alone_is_mapped_and_confirmed() {
        let (_dir, path, bytes) = input(4 * 4096 + 100);
        let s = open_stable(&path).unwrap();
        assert!(matches!(s.contents, Contents::Mapped(_)));
        assert_eq!(s.bytes(), &bytes[..]);
        s.confirm().unwrap();
        s.confirm().unwrap();
    }

    /// The digest alone decides: a write whose every time stamp was put
    /// back (which only a stamp as coarse as the clock allows; made here
    /// by a stamp taken after the write) is refused all the same, as the
    /// bytes the conversion read differ from those digested at open.
    #[test]
    fn a_change_no_stamp_shows_is_refused_by_the_digest() {
        let (_dir, path, _) = input(3 * 4096);
        let mut s = open_stable(&path).unwrap();
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.write_all_at(b"another module", 4096).unwrap();
        let (_, digest) = s.before.unwrap();
        let now = Stamp::of(&fs::metadata(&path).unwrap());
        s.before = Some((now, digest));
        assert!(is_changed(s.confirm(), &path));
        // The same stamp with the digest of what is there now: confirmed.
        s.before = Some((now, Digest::of(s.bytes())));
        s.confirm().unwrap();
    }

    /// Truncated while mapped: the pages past the new end fault (SIGBUS,
    /// for real), read as zeros, and the read is refused as changed.
    #[test]
    fn a_file_truncated_under_its_mapping_is_changed() {
        let (_dir, path, bytes) = input(4 * 4096 + 100);
        let s = open_stable(&path).unwrap();
        cut(&path, 4096);
        let seen: u64 = s.bytes().iter().map(|&b| u64::from(b)).sum();
        let want: u64 = bytes[..4096].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(seen, want, "the pages past the end read as zeros");
        assert!(s.contents.torn());
        assert!(is_changed(s.confirm(), &path));
    }

    /// Rewritten while mapped, in place and to the same size, its time
    /// stamp put back as a write that began before the first look would
    /// leave it: the second digest differs, and so does the change time.
    #[test]
    fn a_file_rewritten_under_its_mapping_is_changed() {
        let (_dir, path, bytes) = input(3 * 4096);
        let old = fs::metadata(&path).unwrap().modified().unwrap();
        let s = open_stable(&path).unwrap();
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.write_all_at(b"another module", 2 * 4096).unwrap();
        f.set_modified(old).unwrap();
        assert_ne!(s.bytes(), &bytes[..], "the mapping shows the write");
        assert!(!s.contents.torn());
        assert!(is_changed(s.confirm(), &path));
    }

    /// Replaced by a rename (another inode, the same bytes but one) and
    /// grown by an append: each changed.
    #[test]
    fn a_file_replaced_or_grown_is_changed() {
        let (dir, path, mut bytes) = input(4096);
        let s = open_stable(&path).unwrap();
        bytes[10] ^= 1;
        let staged = dir.path().join("staged");
        fs::write(&staged, &bytes).unwrap();
        fs::rename(&staged, &path).unwrap();
        assert!(is_changed(s.confirm(), &path));
        let s = open_stable(&path).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"appended")
            .unwrap();
        assert!(is_changed(s.confirm(), &path));
    }

    /// What cannot be mapped is read as before: an empty file, a /proc
    /// file (size 0, yet content: a read finds more than the size, which
    /// is refused as changed, as it always was).
    #[test]
    fn files_without_a_mapping_are_read_as_before() {
        let (_dir, path, _) = input(0);
        let s = open_stable(&path).unwrap();
        assert!(matches!(s.contents, Contents::Owned(ref v) if v.is_empty()));
        s.confirm().unwrap();
        let proc_file = Path::new("/proc/self/stat");
        if proc_file.exists() {
            assert!(matches!(open_stable(proc_file), Err(Error::Changed { .. })));
            let m = open(proc_file).unwrap();
            assert!(!m.bytes().is_empty() && m.whole().is_ok());
        }
    }

    #[test]
    fn open_reads_a_copy_later_changes_do_not_reach() {
        let (_dir, path, bytes) = input(4 * 4096);
        let m = open(&path).unwrap();
        assert!(matches!(m.contents, Contents::Owned(_)));
        cut(&path, 0);
        assert_eq!(m.bytes(), &bytes[..]);
        m.whole().unwrap();
    }

    /// `write_proven`: what `prove` refuses is not written; an output
    /// truncated while it is proven is refused as changed (its SIGBUS
    /// handled); what passes replaces the destination.
    #[test]
    fn written_outputs_are_proven_before_they_replace_anything() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.ko");
        fs::write(&out, b"old").unwrap();
        let mode = || fs::Permissions::from_mode(0o644);
        let data = vec![5u8; 3 * 4096];
        let listing = || {
            let mut v: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let refused: Result<(), Error> = write_proven(
            &out,
            mode(),
            Durability::RenameOnly,
            |w| w.write_all(&data),
            |(), written| {
                assert_eq!(written, &data[..]);
                Err(Error::Compressed {
                    path: out.clone(),
                    format: "xz",
                })
            },
        );
        assert!(matches!(refused, Err(Error::Compressed { .. })));
        assert_eq!(fs::read(&out).unwrap(), b"old");
        assert_eq!(listing(), ["out.ko"]);

        let torn: Result<(), Error> = write_proven(
            &out,
            mode(),
            Durability::Synced,
            |w| w.write_all(&data),
            |(), written| {
                let temp = fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.to_string_lossy().ends_with(".tmp"))
                    .unwrap();
                cut(&temp, 10);
                assert_eq!(std::hint::black_box(written[2 * 4096]), 0);
                Ok(())
            },
        );
        assert!(matches!(torn, Err(Error::Changed { path }) if path == out));
        assert_eq!(fs::read(&out).unwrap(), b"old");
        assert_eq!(listing(), ["out.ko"]);

        let n = write_proven(
            &out,
            mode(),
            Durability::RenameOnly,
            |w| w.write_all(&data).map(|()| 7),
            |seven, written| Ok::<_, Error>(seven + written.len()),
        )
        .unwrap();
        assert_eq!(n, 7 + data.len());
        assert_eq!(fs::read(&out).unwrap(), data);
        assert_eq!(listing(), ["out.ko"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("2m"), Some(2 << 20));
        assert_eq!(parse_size(" 1G "), Some(1 << 30));
        for bad in ["", "G", "-1", "1.5G", "1T", "lots", "99999999999999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_name_the_file() {
        let e = read(Path::new("/nonexistent/x.ko")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x.ko: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        let dir = std::env::temp_dir().join(format!("klp-module-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let cut = dir.join("cut.ko.xz");
        fs::write(&cut, [XZ_MAGIC, b"garbage"].concat()).unwrap();
        let e = read(&cut).unwrap_err();
        assert!(matches!(e, Error::Decompress { format: "xz", .. }), "{e:?}");
        assert!(e.to_string().contains("cut.ko.xz: xz: "), "{e}");
        fs::write(dir.join("a.ko"), b"x").unwrap();
        assert_eq!(
            find_modules(std::slice::from_ref(&dir)).unwrap(),
            [dir.join("a.ko"), cut]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
