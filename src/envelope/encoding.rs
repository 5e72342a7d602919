//! Compressed bodies: a message whose `content-encoding` attribute says `gzip` or `zstd` is
//! inflated before its envelope is read, with a hard cap on the output — a body that would
//! inflate beyond `limits.max_message_bytes` is `too_large`, whatever its compressed size, so
//! a zip bomb costs at most the cap. The compressed body stays what the message carries: it is
//! what a dead-letter row keeps, and what `dlq replay` inflates again.
//!
//! The attribute is the HTTP header's name and values (RFC 9110 §8.4), as a producer would set
//! it on any transport; in binary-mode CloudEvents it applies to the body, which is the event's
//! data. (CloudEvents 1.0 has no attribute of its own for this.)

use crate::pipeline::{ReasonCode, Rejection};
use bytes::Bytes;
use std::cell::RefCell;
use std::io::{Cursor, Read};

/// The attribute that names a body's compression.
pub const CONTENT_ENCODING: &str = "content-encoding";

/// A body's compression, from its `content-encoding` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Gzip,
    Zstd,
}

impl ContentEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Zstd => "zstd",
        }
    }

    /// The encoding a `content-encoding` attribute's value declares; `None` for none (no
    /// attribute, empty, or `identity`).
    pub fn parse(value: Option<&str>) -> Result<Option<ContentEncoding>, Rejection> {
        let Some(value) = value else {
            return Ok(None);
        };
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("identity") {
            Ok(None)
        } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
            Ok(Some(ContentEncoding::Gzip))
        } else if value.eq_ignore_ascii_case("zstd") {
            Ok(Some(ContentEncoding::Zstd))
        } else {
            Err(Rejection::new(
                ReasonCode::InvalidEncoding,
                format!(
                    "content-encoding `{}` is not supported (gzip, zstd or identity)",
                    value.chars().take(40).collect::<String>()
                ),
            ))
        }
    }
}

/// Compresses `data` as a producer would (gzip at the default level, zstd at level 3, the
/// content size in the frame): `publish --compress`, the tests and the benchmarks.
pub fn compress(encoding: ContentEncoding, data: &[u8]) -> Bytes {
    use std::io::Write;
    match encoding {
        ContentEncoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 4),
                flate2::Compression::default(),
            );
            e.write_all(data).expect("writes to a Vec");
            Bytes::from(e.finish().expect("writes to a Vec"))
        }
        ContentEncoding::Zstd => {
            Bytes::from(zstd::bulk::compress(data, 3).expect("level 3 is valid"))
        }
    }
}

thread_local! {
    // One decompressor of each kind per thread, reset for every body: creating one costs
    // more than inflating a small body (zstd's context and gzip's window are allocated and
    // zeroed on creation; measured in docs/BENCHMARKS.md).
    static GZIP: RefCell<Option<flate2::bufread::GzDecoder<Cursor<Bytes>>>> = const { RefCell::new(None) };
    static ZSTD: RefCell<Option<zstd::stream::raw::Decoder<'static>>> = const { RefCell::new(None) };
}

/// Inflates `data`, never producing more than `max_bytes`.
/// `window_log` bounds a zstd frame's window (its decoder's memory): a frame that asks for
/// more is refused.
pub fn inflate(
    encoding: ContentEncoding,
    data: &Bytes,
    max_bytes: usize,
    window_log: u32,
) -> Result<Bytes, Rejection> {
    let invalid = |e: std::io::Error| {
        Rejection::new(
            ReasonCode::InvalidEncoding,
            format!("body does not inflate as {}: {e}", encoding.as_str()),
        )
    };
    // Most domain objects compress 5–10×: start there, grow as needed, never past the cap
    // (one byte past it tells "exactly at the cap" from "beyond it").
    let mut out = Vec::with_capacity(data.len().saturating_mul(8).min(max_bytes + 1));
    match encoding {
        ContentEncoding::Gzip => gunzip(data, max_bytes, &mut out).map_err(invalid)?,
        ContentEncoding::Zstd => {
            // A frame that declares more than the cap is refused before anything is
            // allocated for it.
            if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(data)
                && declared > max_bytes as u64
            {
                return Err(beyond_cap(encoding, data.len(), max_bytes));
            }
            unzstd(data, max_bytes, window_log, &mut out).map_err(|e| {
                let mut r = invalid(e);
                if r.reason.contains("Frame requires too much memory") {
                    r.reason.push_str(&format!(
                        " (the frame's window is above the {} bytes accepted with \
                         limits.max_message_bytes = {max_bytes}: compress with the content \
                         size, or a smaller window)",
                        1usize << window_log
                    ));
                }
                r
            })?;
        }
    }
    if out.len() > max_bytes {
        return Err(beyond_cap(encoding, data.len(), max_bytes));
    }
    Ok(Bytes::from(out))
}

/// gzip (RFC 1952), every member of the body in turn, into `out` up to one byte past `max`.
fn gunzip(data: &Bytes, max: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    GZIP.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut at = 0;
        while at < data.len() && out.len() <= max {
            let member = Cursor::new(data.slice(at..));
            let decoder = match slot.as_mut() {
                Some(d) => {
                    d.reset(member);
                    d
                }
                None => slot.insert(flate2::bufread::GzDecoder::new(member)),
            };
            let room = (max + 1 - out.len()) as u64;
            let read = decoder.take(room).read_to_end(out);
            at += decoder.get_ref().position() as usize;
            if let Err(e) = read {
                decoder.reset(Cursor::new(Bytes::new()));
                return Err(e);
            }
        }
        // Kept for the next body, without this one (which may slice a larger buffer).
        if let Some(d) = slot.as_mut() {
            d.reset(Cursor::new(Bytes::new()));
        }
        Ok(())
    })
}

/// zstd (RFC 8878), every frame in turn, into `out` up to one byte past `max`.
fn unzstd(data: &[u8], max: usize, window_log: u32, out: &mut Vec<u8>) -> std::io::Result<()> {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decoder = match slot.as_mut() {
            Some(d) => {
                d.reinit()?;
                d
            }
            None => slot.insert(Decoder::new()?),
        };
        decoder.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(window_log))?;
        let mut input = InBuffer::around(data);
        loop {
            if out.len() == out.capacity() {
                let room = max + 1 - out.len().min(max + 1);
                if room == 0 {
                    return Ok(());
                }
                out.reserve_exact(out.capacity().max(4096).min(room));
            }
            let len = out.len();
            let hint = decoder.run(&mut input, &mut OutBuffer::around_pos(out, len))?;
            let consumed = input.pos() == data.len();
            if consumed && hint == 0 {
                return Ok(());
            }
            if consumed && out.len() < out.capacity() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the body ends inside a frame",
                ));
            }
        }
    })
}

fn beyond_cap(encoding: ContentEncoding, size: usize, max_bytes: usize) -> Rejection {
    Rejection::new(
        ReasonCode::TooLarge,
        format!(
            "{} body of {size} bytes inflates beyond limits.max_message_bytes ({max_bytes})",
            encoding.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        compress(ContentEncoding::Gzip, data)
    }

    fn zstd(data: &[u8]) -> Bytes {
        compress(ContentEncoding::Zstd, data)
    }

    #[test]
    fn the_attribute_names_the_encoding_in_any_case() {
        for (value, want) in [
            ("gzip", Some(ContentEncoding::Gzip)),
            ("GZIP ", Some(ContentEncoding::Gzip)),
            ("x-gzip", Some(ContentEncoding::Gzip)),
            ("zstd", Some(ContentEncoding::Zstd)),
            ("identity", None),
            ("", None),
        ] {
            assert_eq!(
                ContentEncoding::parse(Some(value)).unwrap(),
                want,
                "{value}"
            );
        }
        assert_eq!(ContentEncoding::parse(None).unwrap(), None);
        let e = ContentEncoding::parse(Some("br")).unwrap_err();
        assert_eq!(e.code, ReasonCode::InvalidEncoding);
        assert!(e.reason.contains("`br`"), "{}", e.reason);
    }

    #[test]
    fn both_encodings_round_trip_up_to_the_cap_exactly() {
        let body = vec![b'a'; 4096];
        for (enc, packed) in [
            (ContentEncoding::Gzip, gzip(&body)),
            (ContentEncoding::Zstd, zstd(&body)),
        ] {
            assert!(packed.len() < 200, "{enc:?}: {}", packed.len());
            assert_eq!(inflate(enc, &packed, 4096, 20).unwrap(), body, "{enc:?}");
            let e = inflate(enc, &packed, 4095, 20).unwrap_err();
            assert_eq!(e.code, ReasonCode::TooLarge, "{enc:?}");
            assert!(e.reason.contains("4095"), "{}", e.reason);
        }
    }

    #[test]
    fn every_member_or_frame_of_a_body_is_read_and_decompressors_are_reused() {
        for enc in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let mut two = compress(enc, b"{\"a\":").to_vec();
            two.extend_from_slice(&compress(enc, b"1}"));
            // Twice on one thread: the second reuses the first's decompressor.
            for _ in 0..2 {
                assert_eq!(
                    &inflate(enc, &Bytes::from(two.clone()), 64, 20).unwrap()[..],
                    b"{\"a\":1}"
                );
            }
            assert_eq!(
                inflate(enc, &Bytes::from(two.clone()), 5, 20)
                    .unwrap_err()
                    .code,
                ReasonCode::TooLarge
            );
        }
    }

    #[test]
    fn a_bomb_is_refused_without_inflating_it_whole() {
        // 64 MiB of zeros compress to tens of KiB: refused at the 1 MiB cap, whether the
        // frame declares its size (refused unread) or not (inflated up to the cap).
        let zeros = vec![0u8; 64 << 20];
        let mut streamed = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        streamed
            .set_parameter(zstd::zstd_safe::CParameter::WindowLog(20))
            .unwrap();
        streamed.include_contentsize(false).unwrap();
        streamed.write_all(&zeros).unwrap();
        let streamed = Bytes::from(streamed.finish().unwrap());
        for (enc, packed) in [
            (ContentEncoding::Gzip, gzip(&zeros)),
            (ContentEncoding::Zstd, zstd(&zeros)),
            (ContentEncoding::Zstd, streamed),
        ] {
            assert!(packed.len() < 128 << 10, "{enc:?}: {}", packed.len());
            let e = inflate(enc, &packed, 1 << 20, 20).unwrap_err();
            assert_eq!(e.code, ReasonCode::TooLarge, "{enc:?}");
        }
    }

    #[test]
    fn corrupt_or_truncated_bodies_are_invalid_encodings() {
        let body = br#"{"order_id":"o-1"}"#;
        for (enc, packed) in [
            (ContentEncoding::Gzip, gzip(body)),
            (ContentEncoding::Zstd, zstd(body)),
        ] {
            let truncated = packed.slice(..packed.len() - 4);
            let plain = Bytes::from_static(body);
            for bad in [truncated, plain] {
                let e = inflate(enc, &bad, 1 << 20, 20).unwrap_err();
                assert_eq!(e.code, ReasonCode::InvalidEncoding, "{enc:?}: {}", e.reason);
                assert!(e.reason.contains(enc.as_str()), "{}", e.reason);
            }
        }
    }

    #[test]
    fn a_zstd_window_larger_than_a_body_may_be_is_refused() {
        // A streamed frame (no content size) with a 8 MiB window, against a 1 MiB cap.
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(23))
            .unwrap();
        e.include_contentsize(false).unwrap();
        e.write_all(&vec![b'x'; 1000]).unwrap();
        let packed = Bytes::from(e.finish().unwrap());
        let r = inflate(ContentEncoding::Zstd, &packed, 1 << 20, 20).unwrap_err();
        assert_eq!(r.code, ReasonCode::InvalidEncoding, "{}", r.reason);
    }
}
