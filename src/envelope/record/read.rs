//! Avro binary read straight into our JSON: every length checked against the bytes left
//! before anything is reserved, output capped, nesting limited.

use super::schema::{Field, Node};
use super::values::{date, decimal, duration, time_of_day, timestamp, uuid_of};
use super::{Fault, Wanted, bad};
use base64::Engine as _;

/// The binary body being read.
pub(super) struct Input<'a> {
    pub(super) body: &'a [u8],
    pub(super) at: usize,
}

impl Input<'_> {
    pub(super) fn byte(&mut self) -> Result<u8, Fault> {
        let b = *self
            .body
            .get(self.at)
            .ok_or_else(|| bad("the body ends inside the record"))?;
        self.at += 1;
        Ok(b)
    }

    /// A zig-zag varint (`int` and `long`).
    pub(super) fn long(&mut self) -> Result<i64, Fault> {
        // Most longs are one byte (lengths of short strings, small counts, union branches).
        if let Some(&b) = self.body.get(self.at)
            && b & 0x80 == 0
        {
            self.at += 1;
            return Ok(i64::from(b >> 1) ^ -i64::from(b & 1));
        }
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(bad("a varint longer than 10 bytes"))
    }

    pub(super) fn int(&mut self) -> Result<i32, Fault> {
        i32::try_from(self.long()?).map_err(|_| bad("an int out of range"))
    }

    /// `n` bytes, checked against what remains before anything is done with them.
    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], Fault> {
        if n > self.body.len() - self.at {
            return Err(bad(format!(
                "a length of {n} bytes with {} left",
                self.body.len() - self.at
            )));
        }
        let s = &self.body[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    pub(super) fn len(&mut self) -> Result<usize, Fault> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| bad(format!("a negative length ({n})")))
    }

    /// A block count of an array or map: negative counts are followed by the block's size.
    pub(super) fn block(&mut self) -> Result<u64, Fault> {
        let n = self.long()?;
        if n < 0 {
            self.len()?;
        }
        Ok(n.unsigned_abs())
    }
}

/// How many bytes of the body a short string is read with, at once: see
/// [`Writer::string_bytes`].
pub(super) const WINDOW: usize = 32;

/// Whether the first `n` bytes of `window` are all ASCII a JSON string keeps as it is (none
/// a control character, `"`, `\\`, or beyond ASCII): a fixed number of bytes, the ones past
/// `n` masked off, which compiles to a few vector instructions without a branch on the
/// length. One question, not two: a string that fails it is scanned again for which.
#[inline]
pub(super) fn plain_ascii(window: &[u8; WINDOW], n: usize) -> bool {
    // Which bytes are the string's (`n` true, then false), taken from a table: no compare
    // of positions.
    let n = n.min(WINDOW);
    let live = &LIVE[WINDOW - n..2 * WINDOW - n];
    !window.iter().zip(live).fold(false, |any, (&c, &live)| {
        // As a signed byte, below 0x20 is a control character or beyond ASCII: one compare.
        let odd = ((c as i8) < 0x20) | (c == b'"') | (c == b'\\');
        any | (odd & live)
    })
}

/// A window's worth of `true`, then of `false`.
static LIVE: [bool; 2 * WINDOW] = {
    let mut live = [false; 2 * WINDOW];
    let mut i = 0;
    while i < WINDOW {
        live[i] = true;
        i += 1;
    }
    live
};

/// `n` (under 100) in decimal, packed first digit lowest, and how many digits.
#[inline(always)]
fn two_digits(n: u8) -> (u64, usize) {
    let (tens, ones) = (u64::from(b'0' + n / 10), u64::from(b'0' + n % 10));
    if n < 10 {
        (ones, 1)
    } else {
        (tens | ones << 8, 2)
    }
}

/// The count of hundredths of the decimal (of at most two decimals) whose nearest double is
/// `f`, if there is one: for `f` positive and below 2^46.
///
/// Below 2^53 / 100 every count of hundredths is exact as a double, and dividing it by 100
/// is rounded once: equal to `f` means `f` is that decimal's nearest double. Below 2^46 a
/// double's spacing is under 0.01, so no other decimal of as few digits reads back as `f`:
/// the text is the one the shortest-digits writer picks.
#[inline(always)]
fn hundredths(f: f64) -> Option<u64> {
    // Rounded by adding a half and truncating (a libm call less); a sum that rounds the
    // wrong way fails the check. Signed conversions: one instruction each way, where
    // unsigned ones branch.
    let cents = (f * 100.0 + 0.5) as i64;
    (cents as f64 / 100.0 == f).then_some(cents.unsigned_abs())
}

/// Where the hundredths fast path for doubles stops (`Writer::finite`).
const TWO_POW_46: f64 = 70_368_744_177_664.0;

pub(super) struct Writer<'a> {
    pub(super) out: Vec<u8>,
    pub(super) max_bytes: usize,
    pub(super) max_depth: usize,
    pub(super) nodes: &'a [Node],
    /// The body being read (a short string of it is copied through a window of it).
    body: &'a [u8],
    /// Where each member of the top-level record sits in `out`: its key's text and its
    /// value. `None` when the top is not a record, or a key is escaped in the output.
    pub(super) members: Option<Vec<super::MemberSpan>>,
    /// What the envelope asks to be noted as the record is written.
    wanted: Wanted<'a>,
    /// Member `wanted.inner.1` of member `wanted.inner.0` (`payload.order_id`: the object
    /// id), noted when the outer member's value is a record: `Some(None)` when that record
    /// has no such field.
    pub(super) inner: Option<Option<std::ops::Range<usize>>>,
    /// The outer member's value is being written.
    in_outer: bool,
    /// When the value of top-level member `wanted.event_time` is a `Timestamp`: its
    /// microseconds, noted as it is written (the envelope does not parse the text back).
    pub(super) time_us: Option<i64>,
    /// That member's value is being written.
    in_time: bool,
}

/// A member's key as it is written after a comma (`,"name":`), quoted once when the schema
/// is compiled; the comma is dropped for an object's first member. Also kept padded to a
/// fixed length when it fits: copying a fixed length is a few moves, where copying the key's
/// own length is a call to `memcpy` (with the strings, a tenth of a record's decode,
/// measured).
#[derive(Debug, Clone)]
pub(super) struct Key {
    text: Box<[u8]>,
    padded: Option<[u8; PADDED_KEY]>,
}

const PADDED_KEY: usize = 32;

impl Key {
    pub(super) fn new(name: &str) -> Key {
        let mut text = vec![b','];
        serde_json::to_writer(&mut text, name).expect("a string serialises");
        text.push(b':');
        // One byte to spare: the copy without the comma starts one in.
        let padded = (text.len() < PADDED_KEY).then(|| {
            let mut padded = [0; PADDED_KEY];
            padded[..text.len()].copy_from_slice(&text);
            padded
        });
        Key {
            text: text.into_boxed_slice(),
            padded,
        }
    }

    /// `,"name":`.
    pub(super) fn text(&self) -> &[u8] {
        &self.text
    }

    /// The name needs no escape: it is written as it is between the quotes.
    pub(super) fn is_plain(&self, name: &str) -> bool {
        self.text.len() == name.len() + 4
    }
}

/// `out`, refusing to grow past `max` bytes.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    max: usize,
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.max {
            return Err(std::io::Error::other("over the cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> Writer<'a> {
    pub(super) fn new(
        nodes: &'a [Node],
        body: &'a [u8],
        out: Vec<u8>,
        max_bytes: usize,
        max_depth: usize,
        wanted: Wanted<'a>,
    ) -> Self {
        Writer {
            out,
            max_bytes,
            max_depth,
            nodes,
            body,
            members: None,
            wanted,
            inner: None,
            in_outer: false,
            time_us: None,
            in_time: false,
        }
    }
}

/// Noting the envelope's members while a record is written (the Avro and Protocol Buffer
/// readers alike): what [`Wanted`] names.
impl Writer<'_> {
    /// Top-level member `name`'s value is about to be written.
    #[inline]
    pub(super) fn top_member(&mut self, name: &[u8]) {
        self.in_outer = self
            .wanted
            .inner
            .is_some_and(|(outer, _)| outer.as_bytes() == name);
        self.in_time = self.wanted.event_time.is_some_and(|t| t.as_bytes() == name);
    }

    /// The top-level member whose name is at `key` and value from `at` was written.
    #[inline]
    pub(super) fn top_member_written(
        &mut self,
        spans: &mut Vec<super::MemberSpan>,
        key: std::ops::Range<usize>,
        at: usize,
    ) {
        self.in_outer = false;
        self.in_time = false;
        spans.push((key, at..self.out.len()));
    }

    /// Whether an object written at `depth` is the outer member's value.
    #[inline]
    pub(super) fn is_outer_value(&self, depth: usize) -> bool {
        depth == 1 && self.in_outer
    }

    /// Member `name` of the outer member's value was written from `at`.
    #[inline]
    pub(super) fn outer_member_written(&mut self, name: &[u8], at: usize) {
        if self
            .wanted
            .inner
            .is_some_and(|(_, inner)| inner.as_bytes() == name)
        {
            self.inner = Some(Some(at..self.out.len()));
        }
    }

    /// The outer member's value is written: without the member wanted, that is noted.
    pub(super) fn outer_value_written(&mut self) {
        if self.inner.is_none() {
            self.inner = Some(None);
        }
    }

    /// A `Timestamp` written at `depth` (of `seconds` and `nanos`, normalised) was the event
    /// time's member's value: its microseconds, as the envelope reads them from its text (the
    /// nanoseconds floored).
    #[inline]
    pub(super) fn timestamp_written(&mut self, depth: usize, seconds: i64, nanos: i32) {
        if depth == 1 && self.in_time {
            self.time_us = Some(seconds * 1_000_000 + i64::from(nanos / 1_000));
        }
    }

    /// Back to `start`, as if nothing after it had been written or noted.
    pub(super) fn rewind(&mut self, start: usize) {
        self.out.truncate(start);
        self.members = None;
        self.inner = None;
        self.in_outer = false;
        self.time_us = None;
        self.in_time = false;
    }
}

impl Writer<'_> {
    /// Inlined always: most calls write a constant of a byte or a few, which then is a
    /// store, not a call to `memcpy` (measured).
    #[inline(always)]
    pub(super) fn raw(&mut self, s: &[u8]) -> Result<(), Fault> {
        if self.out.len() + s.len() > self.max_bytes {
            return Err(Fault::TooLarge);
        }
        self.out.extend_from_slice(s);
        Ok(())
    }

    /// The window of `body` that starts where `b` does, when `b` lies in it and `body` goes
    /// on that far.
    #[inline]
    fn window<'b>(body: &'b [u8], b: &[u8]) -> Option<&'b [u8; WINDOW]> {
        // Where `b` starts in the body, if it does: any other slice's offset is either out
        // of range, or has the same address and so is `b` itself.
        let at = (b.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
        let end = at.checked_add(WINDOW)?;
        body.get(at..end)?.try_into().ok()
    }

    /// Key `k`, with its comma unless it is the object's `first` member.
    #[inline(always)]
    pub(super) fn key(&mut self, k: &Key, first: bool) -> Result<(), Fault> {
        let from = usize::from(first);
        let Some(padded) = &k.padded else {
            return self.raw(&k.text[from..]);
        };
        let len = k.text.len() - from;
        if self.out.len() + len > self.max_bytes {
            return Err(Fault::TooLarge);
        }
        let at = self.out.len();
        self.out
            .extend_from_slice(&padded[from..][..PADDED_KEY - 1]);
        self.out.truncate(at + len);
        Ok(())
    }

    pub(super) fn string(&mut self, s: &str) -> Result<(), Fault> {
        self.string_bytes(s.as_bytes())
    }

    /// A string from the wire: checked to be UTF-8, then written as a JSON string.
    #[inline(always)]
    pub(super) fn string_bytes(&mut self, b: &[u8]) -> Result<(), Fault> {
        // The string as it is, with its quotes, must fit; one to escape (up to six times as
        // long) is capped as it is written (`string_general`).
        if self.out.len() + b.len() + 2 > self.max_bytes {
            return Err(Fault::TooLarge);
        }
        // Most strings are short, ASCII and need no escape (ids, symbols, names). One that
        // lies in the body being read with a window's bytes from its start is checked and
        // copied as that window (truncated after): no branch or loop on its length, which
        // differs from one string to the next and so is mispredicted as often as not (the
        // commonest cost of a record's decode, measured).
        let n = b.len();
        if let Some(window) = Self::window(self.body, b)
            && n <= WINDOW
            && plain_ascii(window, n)
        {
            self.out.push(b'"');
            let at = self.out.len();
            self.out.extend_from_slice(window);
            self.out.truncate(at + n);
            self.out.push(b'"');
            return Ok(());
        }
        self.string_general(b)
    }

    /// [`Writer::string_bytes`] for a string the window does not take: long, near the body's
    /// end, not from the body, to be escaped, or beyond ASCII. Out of line, so the short
    /// strings' path is inlined into the readers without this one's stack frame.
    #[inline(never)]
    fn string_general(&mut self, b: &[u8]) -> Result<(), Fault> {
        // One pass that does not stop early (so it vectorises) answers both questions: does
        // it need an escape, is it beyond ASCII (only then is UTF-8 checked).
        let (escape, wide) = b.iter().fold((false, false), |(e, w), &c| {
            (e | (c < 0x20) | (c == b'"') | (c == b'\\'), w | (c >= 0x80))
        });
        if wide {
            std::str::from_utf8(b).map_err(|_| bad("a string that is not UTF-8"))?;
        }
        if !escape {
            self.out.push(b'"');
            self.out.extend_from_slice(b);
            self.out.push(b'"');
            return Ok(());
        }
        let s = std::str::from_utf8(b).map_err(|_| bad("a string that is not UTF-8"))?;
        // Escaped through a writer that stops at the cap: escapes may sixfold the string.
        let mut capped = Capped {
            out: &mut self.out,
            max: self.max_bytes,
        };
        serde_json::to_writer(&mut capped, s).map_err(|_| Fault::TooLarge)
    }

    /// An integer as a JSON number.
    #[inline]
    pub(super) fn int(&mut self, n: impl itoa::Integer + TryInto<u8>) -> Result<(), Fault> {
        if let Ok(small) = n.try_into()
            && small < 100
        {
            let (digits, len) = two_digits(small);
            return self.packed(digits, len);
        }
        self.raw(itoa::Buffer::new().format(n).as_bytes())
    }

    /// An integer as a JSON string (64-bit ones in Protocol Buffer JSON).
    #[inline]
    pub(super) fn quoted_int(&mut self, n: impl itoa::Integer + TryInto<u8>) -> Result<(), Fault> {
        if let Ok(small) = n.try_into()
            && small < 100
        {
            let (digits, len) = two_digits(small);
            let quote = u64::from(b'"');
            return self.packed(quote | digits << 8 | quote << (8 * (len + 1)), len + 2);
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        // `"` + at most 20 digits and a sign + `"`, written at once.
        let mut text = [b'"'; 24];
        text[1..=digits.len()].copy_from_slice(digits);
        self.raw(&text[..digits.len() + 2])
    }

    /// The first `len` (at most 8) bytes of `text`, packed first byte lowest: written as one
    /// 8-byte store and cut to length. Small numbers (a count, an amount's whole part) vary
    /// in length from one to the next: a copy of their own length is a call to `memcpy`
    /// that branches on it (two fifths of the calls a record's decode made, measured).
    #[inline(always)]
    fn packed(&mut self, text: u64, len: usize) -> Result<(), Fault> {
        if self.out.len() + len > self.max_bytes {
            return Err(Fault::TooLarge);
        }
        let at = self.out.len();
        self.out.extend_from_slice(&text.to_le_bytes());
        self.out.truncate(at + len);
        Ok(())
    }

    pub(super) fn number(&mut self, n: impl serde::Serialize) -> Result<(), Fault> {
        serde_json::to_writer(&mut self.out, &n).map_err(|e| bad(e.to_string()))?;
        if self.out.len() > self.max_bytes {
            return Err(Fault::TooLarge);
        }
        Ok(())
    }

    /// A double. Most in domain objects are positive amounts under 100 of at most two
    /// decimals: those are written here, inlined into the readers; any other out of line.
    #[inline(always)]
    pub(super) fn float(&mut self, f: f64) -> Result<(), Fault> {
        // False for NaN.
        if f > 0.0
            && f < 100.0
            && let Some(cents) = hundredths(f)
        {
            return self.amount(cents);
        }
        self.float_general(f)
    }

    #[inline(never)]
    fn float_general(&mut self, f: f64) -> Result<(), Fault> {
        if f.is_nan() {
            self.raw(b"\"NaN\"")
        } else if f.is_infinite() {
            self.raw(if f > 0.0 {
                b"\"Infinity\""
            } else {
                b"\"-Infinity\""
            })
        } else {
            self.finite(f)
        }
    }

    /// A finite double. When `f` is the double nearest to a decimal of at most two decimals
    /// (an amount), that decimal is written (it reads back as `f`), for a fraction of what
    /// the general shortest-digits writer costs (about a tenth of a record's rendering,
    /// measured on the orders of docs/BENCHMARKS.md).
    fn finite(&mut self, f: f64) -> Result<(), Fault> {
        // Zero is left to the general writer, which keeps the sign of -0.0.
        if f != 0.0
            && f.abs() < TWO_POW_46
            && let Some(cents) = hundredths(f.abs())
        {
            if f < 0.0 {
                self.raw(b"-")?;
            }
            return self.amount(cents);
        }
        self.number(f)
    }

    /// `cents` hundredths as a decimal: a whole part under 100 written with the fraction,
    /// at once.
    #[inline(always)]
    fn amount(&mut self, cents: u64) -> Result<(), Fault> {
        let (whole, frac) = (cents / 100, cents % 100);
        let (text, len) = if whole < 100 {
            two_digits(whole as u8)
        } else {
            self.int(whole)?;
            (0, 0)
        };
        // `1.50` as `1.5`, `2.00` as `2.0`, as the general writer has it.
        let (tens, ones) = (u64::from(b'0') + frac / 10, u64::from(b'0') + frac % 10);
        let fraction = u64::from(b'.') | tens << 8 | ones << 16;
        let frac_len = if frac.is_multiple_of(10) { 2 } else { 3 };
        self.packed(text | fraction << (8 * len), len + frac_len)
    }

    pub(super) fn base64(&mut self, b: &[u8]) -> Result<(), Fault> {
        let text = base64::engine::general_purpose::STANDARD.encode(b);
        self.string(&text)
    }

    pub(super) fn descend(&self, depth: usize) -> Result<usize, Fault> {
        if depth >= self.max_depth {
            return Err(Fault::TooDeep);
        }
        Ok(depth + 1)
    }

    /// Reads one value of node `n` from `input` and writes it as JSON.
    pub(super) fn binary(
        &mut self,
        n: usize,
        input: &mut Input<'_>,
        depth: usize,
    ) -> Result<(), Fault> {
        let nodes = self.nodes;
        match &nodes[n] {
            Node::Null => self.raw(b"null"),
            Node::Boolean => match input.byte()? {
                0 => self.raw(b"false"),
                1 => self.raw(b"true"),
                b => Err(bad(format!("a boolean byte of {b}"))),
            },
            Node::Int => self.int(input.int()?),
            Node::Long => self.int(input.long()?),
            Node::Float => {
                let b = input.take(4)?;
                let v = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                self.float(f64::from(v))
            }
            Node::Double => {
                let b = input.take(8)?;
                let v = f64::from_le_bytes(b.try_into().expect("8 bytes"));
                self.float(v)
            }
            Node::Bytes => {
                let len = input.len()?;
                let b = input.take(len)?;
                self.base64(b)
            }
            Node::Fixed(size) => self.base64(input.take(*size)?),
            Node::String | Node::UuidString => {
                let len = input.len()?;
                let b = input.take(len)?;
                self.string_bytes(b)
            }
            Node::UuidBytes(size) => {
                let len = match size {
                    Some(s) => *s,
                    None => input.len()?,
                };
                let b = input.take(len)?;
                let u = uuid_of(b)?;
                self.string(&u)
            }
            Node::Enum(symbols) => {
                let i = input.int()?;
                let s = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| bad(format!("enum index {i} of {} symbols", symbols.len())))?;
                self.string(s)
            }
            Node::Array(items) => self.binary_blocks(*items, input, depth, false),
            Node::Map(values) => self.binary_blocks(*values, input, depth, true),
            Node::Union(branches) => {
                let i = input.long()?;
                let b = usize::try_from(i)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| bad(format!("union branch {i} of {}", branches.len())))?
                    .1;
                self.binary(b, input, depth)
            }
            Node::Record(fields) => self.record(fields, depth, |w, f, depth| {
                // The commonest field types written here, without another turn through
                // this (large) function: a record's fields are most of what is read.
                match &nodes[f.node] {
                    Node::String => {
                        let len = input.len()?;
                        let b = input.take(len)?;
                        w.string_bytes(b)
                    }
                    Node::Long => w.int(input.long()?),
                    Node::Double => {
                        let b = input.take(8)?;
                        w.float(f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    }
                    _ => w.binary(f.node, input, depth),
                }
            }),
            node => self.binary_logical(node, input, depth),
        }
    }

    /// A record's fields as an object, each value written by `value`. At the top (depth 0:
    /// the message itself) where each member lands is noted, so that the envelope reads
    /// them without parsing the text again.
    pub(super) fn record(
        &mut self,
        fields: &[Field],
        depth: usize,
        mut value: impl FnMut(&mut Self, &Field, usize) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let top = depth == 0;
        // The outer member's value itself (a union's branch is written at the same depth).
        let outer_value = self.is_outer_value(depth);
        let mut spans = Vec::with_capacity(if top { fields.len() } else { 0 });
        let depth = self.descend(depth)?;
        self.raw(b"{")?;
        for (i, f) in fields.iter().enumerate() {
            self.key(&f.key, i == 0)?;
            let at = self.out.len();
            // Between the quotes, before `":` (when `plain`: else no span is kept).
            let key = at - 2 - f.name.len()..at - 2;
            if top {
                self.top_member(f.name.as_bytes());
            }
            value(self, f, depth)?;
            if top {
                self.top_member_written(&mut spans, key, at);
            } else if outer_value {
                self.outer_member_written(f.name.as_bytes(), at);
            }
        }
        if outer_value {
            self.outer_value_written();
        }
        if top && fields.iter().all(|f| f.plain) {
            self.members = Some(spans);
        }
        self.raw(b"}")
    }

    /// An array's or a map's blocks, each item (and key) checked as it is read.
    fn binary_blocks(
        &mut self,
        items: usize,
        input: &mut Input<'_>,
        depth: usize,
        keyed: bool,
    ) -> Result<(), Fault> {
        let depth = self.descend(depth)?;
        self.raw(if keyed { b"{" } else { b"[" })?;
        let mut first = true;
        loop {
            let count = input.block()?;
            if count == 0 {
                break;
            }
            for _ in 0..count {
                if !first {
                    self.raw(b",")?;
                }
                first = false;
                if keyed {
                    let len = input.len()?;
                    let key = input.take(len)?;
                    self.string_bytes(key)?;
                    self.raw(b":")?;
                }
                self.binary(items, input, depth)?;
            }
        }
        self.raw(if keyed { b"}" } else { b"]" })
    }

    /// A logical type's value.
    fn binary_logical(
        &mut self,
        node: &Node,
        input: &mut Input<'_>,
        depth: usize,
    ) -> Result<(), Fault> {
        match node {
            Node::Date => {
                let days = input.int()?;
                self.string(&date(i64::from(days))?)
            }
            Node::TimeMillis => {
                let ms = input.int()?;
                self.string(&time_of_day(i64::from(ms) * 1_000)?)
            }
            Node::TimeMicros => {
                let us = input.long()?;
                self.string(&time_of_day(us)?)
            }
            Node::Timestamp { unit, local } => {
                let (unit, local) = (*unit, *local);
                let v = input.long()?;
                self.string(&timestamp(v, unit, local)?)
            }
            Node::Decimal { scale, fixed } => {
                let scale = *scale;
                let len = match fixed {
                    Some(s) => *s,
                    None => input.len()?,
                };
                let b = input.take(len)?;
                self.string(&decimal(b, scale)?)
            }
            Node::Duration => {
                // Written as an object: one level of nesting, as the parse counts it.
                self.descend(depth)?;
                let b = input.take(12)?;
                self.raw(duration(b)?.as_bytes())
            }
            _ => unreachable!("every other node is read by `binary`"),
        }
    }
}
