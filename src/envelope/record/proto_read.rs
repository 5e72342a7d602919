//! Protocol Buffer binary read straight into our JSON, by a compiled plan (`proto_plan`): the
//! JSON `prost-reflect` writes for the same message (proto field names, defaults written,
//! 64-bit integers as strings, enums by name, bytes base64, `Timestamp` and `Duration` as
//! strings, wrappers as their value), without building a dynamic message first.
//!
//! The wire format allows fields in any order and repeated: a field's last value wins, the
//! occurrences of a message field are merged (read as one), those of a repeated field (packed
//! or not) append, and the last member set of a oneof is the one it holds. Most encoders write
//! each field once, in field order: such a record is written in one pass as it is read. Any
//! other (or one that meets a fault on the way) is read again from the start through the scan:
//! each message scanned into its fields' occurrences (16 bytes for at least 2 bytes of body
//! each, on one stack shared by the nesting), then written in field order. Every length is
//! checked against the bytes that remain before it is used; output is capped and nesting
//! limited by the shared [`Writer`].

use super::proto_plan::{FieldPlan, MessagePlan, Plan, Scalar, Shape, Special};
use super::read::Writer;
use super::{Fault, bad};

/// The most the reader's own bookkeeping takes per body byte: the occurrence stack (16 bytes
/// per field of at least 2 bytes, up to three times that while it grows: 24) and a map's
/// entries (64 bytes per entry of at least 2 bytes: 32; a message value sent more than once
/// adds a pointer and length per value, each of at least 2 bytes), rounded up.
pub(super) const WORKING_BYTES_PER_BODY_BYTE: usize = 64;

/// One occurrence of a field in a message's encoding: its index in the plan's fields, where
/// its value lies (the varint's bytes, the fixed bytes, or the length-delimited contents) in
/// which part of the message, and its wire type.
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    /// The field's index, shifted left 3, and the wire type: 16 bytes in all.
    key: u32,
    part: u32,
    start: u32,
    end: u32,
}

impl Occurrence {
    fn field(&self) -> u32 {
        self.key >> 3
    }

    fn wire(&self) -> u8 {
        (self.key & 7) as u8
    }

    /// Where it came in the message's encoding.
    fn position(&self) -> (u32, u32) {
        (self.part, self.start)
    }
}

pub(super) struct Reader<'p, 'w> {
    pub(super) plan: &'p Plan,
    pub(super) w: Writer<'w>,
    stack: Vec<Occurrence>,
    /// Messages open (the record's own is 1).
    nesting: usize,
    /// Messages are written in one pass (see [`Reader::record`]).
    streaming: bool,
}

#[inline(always)]
fn varint(b: &[u8], at: &mut usize) -> Result<u64, Fault> {
    // Most varints are one byte (tags, short lengths, small numbers).
    if let Some(&byte) = b.get(*at)
        && byte & 0x80 == 0
    {
        *at += 1;
        return Ok(u64::from(byte));
    }
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b
            .get(*at)
            .ok_or_else(|| bad("the body ends inside a varint"))?;
        *at += 1;
        // The tenth byte holds the 64th bit only.
        if shift == 63 && byte > 1 {
            return Err(bad("a varint beyond 64 bits"));
        }
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(raw);
        }
    }
    Err(bad("a varint longer than 10 bytes"))
}

/// A field's tag at `at`: its number (1 to 2^29 - 1) and wire type.
#[inline(always)]
fn tag(b: &[u8], at: &mut usize) -> Result<(u64, u8), Fault> {
    let tag = varint(b, at)?;
    let (number, wire) = (tag >> 3, (tag & 7) as u8);
    if number == 0 || number > u64::from(u32::MAX >> 3) {
        return Err(bad(format!("field number {number}")));
    }
    Ok((number, wire))
}

/// The field at `at` in a message's encoding: its number, wire type, and where its value
/// lies; `at` is moved past it.
#[inline(always)]
fn next_field(b: &[u8], at: &mut usize) -> Result<(u64, u8, usize, usize), Fault> {
    let (number, wire) = tag(b, at)?;
    if wire == 4 {
        return Err(bad("an end-group tag outside a group"));
    }
    let (start, end) = skip(b, at, wire, number)?;
    Ok((number, wire, start, end))
}

/// Past `n` bytes at `at`, checked against what remains.
#[inline(always)]
fn take(b: &[u8], at: &mut usize, n: u64) -> Result<(), Fault> {
    let left = (b.len() - *at) as u64;
    if n > left {
        return Err(bad(format!("a length of {n} bytes with {left} left")));
    }
    *at += n as usize;
    Ok(())
}

/// Past one field's value of wire type `wire` at `at`: where its value lies. Inlined: a
/// result returned through memory cost a store-forwarding stall per field (measured).
#[inline(always)]
fn skip(b: &[u8], at: &mut usize, wire: u8, number: u64) -> Result<(usize, usize), Fault> {
    let start = *at;
    match wire {
        0 => {
            varint(b, at)?;
        }
        1 => take(b, at, 8)?,
        5 => take(b, at, 4)?,
        2 => {
            let n = varint(b, at)?;
            let from = *at;
            take(b, at, n)?;
            return Ok((from, *at));
        }
        3 => skip_group(b, at, number, 0)?,
        w => return Err(bad(format!("wire type {w}"))),
    }
    Ok((start, *at))
}

/// Past a group (of an unknown field: a known one is never a group) to its end tag.
#[cold]
fn skip_group(b: &[u8], at: &mut usize, number: u64, depth: usize) -> Result<(), Fault> {
    // As deep as prost's decoder goes.
    if depth >= RECURSION_LIMIT {
        return Err(bad("groups nested too deep"));
    }
    loop {
        let (n, w) = tag(b, at)?;
        match w {
            4 if n == number => return Ok(()),
            4 => return Err(bad("a group closed by another field's end tag")),
            3 => skip_group(b, at, n, depth + 1)?,
            _ => {
                skip(b, at, w, n)?;
            }
        }
    }
}

/// The field at `at` in message `plan`'s encoding, when it is one the plan knows: its index
/// and wire type, `at` moved past its tag. An unknown one is skipped (`None`). The field
/// `expected` next (the open array's, or the next in order) is checked first against the
/// one-byte tag encoders write for it: then no tag is decoded or looked up, and what follows
/// does not wait on the body's bytes.
#[inline(always)]
fn known_field(
    plan: &MessagePlan,
    b: &[u8],
    at: &mut usize,
    expected: u32,
) -> Result<Option<(u32, u8)>, Fault> {
    if let Some(f) = plan.fields.get(expected as usize)
        && b.get(*at).is_some_and(|&byte| u16::from(byte) == f.tag)
    {
        *at += 1;
        return Ok(Some((expected, (f.tag & 7) as u8)));
    }
    let (number, wire) = tag(b, at)?;
    if wire == 4 {
        return Err(bad("an end-group tag outside a group"));
    }
    let known = plan.field(number as u32);
    if known.is_none() {
        skip(b, at, wire, number)?;
    }
    Ok(known.map(|i| (i, wire)))
}

/// How deep messages (and groups) may nest, as prost's decoder has it.
const RECURSION_LIMIT: usize = 100;

impl<'p, 'w> Reader<'p, 'w> {
    pub(super) fn new(plan: &'p Plan, w: Writer<'w>) -> Self {
        Reader {
            plan,
            w,
            stack: Vec::new(),
            nesting: 0,
            streaming: false,
        }
    }

    pub(super) fn into_writer(self) -> Writer<'w> {
        self.w
    }

    /// The occurrences of message `m`'s known fields in `parts` (its encodings, merged), on
    /// the stack from `base`, ordered by field and then as they came.
    fn scan(&mut self, m: u32, parts: &[&[u8]]) -> Result<(), Fault> {
        let plan: &'p Plan = self.plan;
        let plan = &plan.messages[m as usize];
        let base = self.stack.len();
        for (p, part) in parts.iter().enumerate() {
            let mut at = 0;
            while at < part.len() {
                let (number, wire, start, end) = next_field(part, &mut at)?;
                if let Some(field) = plan.field(number as u32) {
                    self.stack.push(Occurrence {
                        key: field << 3 | u32::from(wire),
                        part: u32::try_from(p).map_err(|_| Fault::TooLarge)?,
                        start: u32::try_from(start).map_err(|_| Fault::TooLarge)?,
                        end: u32::try_from(end).map_err(|_| Fault::TooLarge)?,
                    });
                }
            }
        }
        // Already in field order as most encoders write it: then only checked.
        let order = |o: &Occurrence| (o.field(), o.position());
        if !self.stack[base..].is_sorted_by_key(order) {
            self.stack[base..].sort_unstable_by_key(order);
        }
        Ok(())
    }

    /// Writes the record encoded in `body`: in one pass ([`stream`](Self::stream)) when
    /// it is encoded as most encoders write, else (or when that pass meets a fault, which
    /// a later value may yet override) again through the scan, whose verdict is the one
    /// kept. So a record costs at most two reads.
    pub(super) fn record(&mut self, body: &[u8]) -> Result<(), Fault> {
        let start = self.w.out.len();
        self.streaming = true;
        if self.message(0, &[body], 0).is_ok() {
            return Ok(());
        }
        self.w.rewind(start);
        self.stack.clear();
        self.nesting = 0;
        self.streaming = false;
        self.message(0, &[body], 0)
    }

    /// Writes message `m`, encoded in `parts` (one, or several to merge), at `depth`.
    fn message(&mut self, m: u32, parts: &[&[u8]], depth: usize) -> Result<(), Fault> {
        if self.nesting > RECURSION_LIMIT {
            return Err(bad("messages nested deeper than 100"));
        }
        self.nesting += 1;
        let special = self.plan.messages[m as usize].special;
        let base = self.stack.len();
        let written = match (special, parts) {
            (Special::Timestamp | Special::Duration, _) => self.time(special, parts, depth),
            (Special::None, [only]) if self.streaming => self.stream(m, only, depth),
            _ => self.scan(m, parts).and_then(|()| match special {
                Special::Wrapper => self.wrapper(m, parts, base, depth),
                _ => self.fields(m, parts, base, depth),
            }),
        };
        self.stack.truncate(base);
        self.nesting -= 1;
        written
    }

    /// What a decoder checks of values it then discards (a oneof member another one cleared,
    /// a singular field's earlier values, a replaced map entry): their wire type, and that a
    /// string is UTF-8. A discarded message is checked for its wire type only.
    fn check(
        &self,
        kind: Scalar,
        parts: &[&[u8]],
        run: std::ops::Range<usize>,
    ) -> Result<(), Fault> {
        for o in &self.stack[run] {
            check_value(kind, o.wire(), Self::bytes_of(parts, *o))?;
        }
        Ok(())
    }

    /// The range of the stack holding field `field`'s occurrences, from `from`.
    fn run(&self, from: usize, field: u32) -> std::ops::Range<usize> {
        let end = self.stack[from..]
            .iter()
            .position(|o| o.field() != field)
            .map_or(self.stack.len(), |n| from + n);
        from..end
    }

    /// Of each real oneof: the member set last, and where another member was last set (the
    /// winner's values before that were cleared by it, as a decoder clears them).
    fn oneof_winners(&self, m: u32, base: usize) -> Vec<Option<Winner>> {
        let plan = &self.plan.messages[m as usize];
        let mut winners: Vec<Option<Winner>> = vec![None; plan.oneofs];
        let members = || {
            self.stack[base..].iter().filter_map(|o| {
                plan.fields[o.field() as usize]
                    .oneof
                    .map(|k| (k as usize, o))
            })
        };
        for (k, o) in members() {
            let slot = &mut winners[k];
            if slot.is_none_or(|w| o.position() > w.last) {
                *slot = Some(Winner {
                    field: o.field(),
                    last: o.position(),
                    cleared_until: None,
                });
            }
        }
        for (k, o) in members() {
            if let Some(w) = &mut winners[k]
                && o.field() != w.field
                && w.cleared_until.is_none_or(|c| o.position() > c)
            {
                w.cleared_until = Some(o.position());
            }
        }
        winners
    }

    fn fields(&mut self, m: u32, parts: &[&[u8]], base: usize, depth: usize) -> Result<(), Fault> {
        let plan: &'p Plan = self.plan;
        let plan = &plan.messages[m as usize];
        let winners = if plan.oneofs > 0 {
            self.oneof_winners(m, base)
        } else {
            Vec::new()
        };
        let mut members = Members::new(depth, &self.w);
        let depth = self.w.descend(depth)?;
        self.w.raw(b"{")?;
        let mut next = base;
        for (i, f) in plan.fields.iter().enumerate() {
            let i = i as u32;
            let mut run = self.run(next, i);
            next = run.end;
            if let Some(k) = f.oneof {
                let winner = winners[k as usize];
                if winner.map(|w| w.field) != Some(i) {
                    self.check(f.kind, parts, run)?;
                    continue;
                }
                if let Some(cut) = winner.and_then(|w| w.cleared_until) {
                    let kept = run.start
                        + self.stack[run.clone()]
                            .iter()
                            .take_while(|o| o.position() < cut)
                            .count();
                    self.check(f.kind, parts, run.start..kept)?;
                    run.start = kept;
                }
            }
            self.member(f, parts, run, depth, &mut members)?;
        }
        members.finish(plan, &mut self.w);
        self.w.raw(b"}")
    }

    /// Writes message `m` from its one encoding `b` in one pass, each field as it comes: for
    /// an encoding in field order, none sent twice but a repeated one (its values one after
    /// the other), at most one member of each oneof and no map entries, as most encoders
    /// write it. Anything else fails here and the record is read again through the scan
    /// ([`record`](Self::record)). The same writers as the scan's, given the same values:
    /// the same text.
    fn stream(&mut self, m: u32, b: &[u8], depth: usize) -> Result<(), Fault> {
        let plan: &'p Plan = self.plan;
        let plan = &plan.messages[m as usize];
        if plan.oneofs > 64 {
            return Err(bad("more oneofs than the one-pass reader tracks"));
        }
        let mut members = Members::new(depth, &self.w);
        let depth = self.w.descend(depth)?;
        self.w.raw(b"{")?;
        // The next field to write, the repeated field whose array is open (and where its
        // value starts), the oneofs a member was written of.
        let (mut next, mut open, mut oneofs) = (0_u32, None, 0_u64);
        let mut at = 0;
        while at < b.len() {
            let expected = open.map_or(next, |(p, _)| p);
            let Some((i, wire)) = known_field(plan, b, &mut at, expected)? else {
                continue;
            };
            // A known field is never a group: its number only matters to skip one.
            let number = 0;
            let f = &plan.fields[i as usize];
            if let Some((p, value_at)) = open {
                if p == i {
                    let (start, end) = skip(b, &mut at, wire, number)?;
                    // Its depth was checked when it was opened.
                    self.elements(f.kind, wire, &b[start..end], depth + 1)?;
                    continue;
                }
                self.w.raw(b"]")?;
                members.written(&plan.fields[p as usize], value_at, &mut self.w);
                open = None;
            }
            if i < next {
                return Err(bad("a field out of order or sent twice"));
            }
            for absent in next..i {
                self.member(
                    &plan.fields[absent as usize],
                    &[],
                    0..0,
                    depth,
                    &mut members,
                )?;
            }
            next = i + 1;
            if let Some(k) = f.oneof {
                if oneofs & 1 << k != 0 {
                    return Err(bad("two members of a oneof"));
                }
                oneofs |= 1 << k;
            }
            let value_at = members.key(f, &mut self.w)?;
            match f.shape {
                Shape::Single { .. } => {
                    self.value_at(f.kind, wire, b, &mut at, depth)?;
                    members.written(f, value_at, &mut self.w);
                }
                Shape::Repeated => {
                    let (start, end) = skip(b, &mut at, wire, number)?;
                    let items = self.w.descend(depth)?;
                    self.w.raw(b"[")?;
                    self.elements(f.kind, wire, &b[start..end], items)?;
                    open = Some((i, value_at));
                }
                Shape::Map { .. } => return Err(bad("a map, read through the scan")),
            }
        }
        if let Some((p, value_at)) = open {
            self.w.raw(b"]")?;
            members.written(&plan.fields[p as usize], value_at, &mut self.w);
        }
        for absent in next as usize..plan.fields.len() {
            self.member(&plan.fields[absent], &[], 0..0, depth, &mut members)?;
        }
        members.finish(plan, &mut self.w);
        self.w.raw(b"}")
    }

    /// The value at `at` of a singular field of type `kind`, sent with wire type `wire`, read
    /// and written in one step (one dispatch on the type where reading and then writing it
    /// took two: a field's type changes from one field to the next, so each dispatch is a
    /// branch mispredicted as often as not).
    #[inline(always)]
    fn value_at(
        &mut self,
        kind: Scalar,
        wire: u8,
        b: &[u8],
        at: &mut usize,
        depth: usize,
    ) -> Result<(), Fault> {
        if wire != kind.wire() {
            return Err(bad(format!("wire type {wire} for {kind:?}")));
        }
        match kind {
            Scalar::String | Scalar::Message(_) => {
                let n = varint(b, at)?;
                let start = *at;
                take(b, at, n)?;
                match kind {
                    Scalar::Message(m) => self.message(m, &[&b[start..*at]], depth),
                    _ => self.w.string_bytes(&b[start..*at]),
                }
            }
            Scalar::Double => {
                let start = *at;
                take(b, at, 8)?;
                self.w.float(f64::from_le_bytes(fixed(&b[start..*at])?))
            }
            Scalar::Int64 => self.w.quoted_int(varint(b, at)? as i64),
            Scalar::Int32 => self.w.int(varint(b, at)? as i64 as i32),
            _ => {
                let (start, end) = skip(b, at, wire, 0)?;
                self.value(kind, &b[start..end], depth)
            }
        }
    }

    /// One field of a message with its values in `run` (none: absent), as a member of the
    /// object being written: left out when absent and it has presence.
    fn member(
        &mut self,
        f: &FieldPlan,
        parts: &[&[u8]],
        run: std::ops::Range<usize>,
        depth: usize,
        members: &mut Members,
    ) -> Result<(), Fault> {
        if run.is_empty() && matches!(f.shape, Shape::Single { presence: true }) {
            return Ok(());
        }
        let at = members.key(f, &mut self.w)?;
        match f.shape {
            Shape::Single { .. } => self.single(f.kind, parts, run, depth)?,
            Shape::Repeated => self.repeated(f.kind, parts, run, depth)?,
            Shape::Map { key, value } => self.map(key, value, parts, run, depth)?,
        }
        members.written(f, at, &mut self.w);
        Ok(())
    }

    fn bytes_of<'b>(parts: &[&'b [u8]], o: Occurrence) -> &'b [u8] {
        &parts[o.part as usize][o.start as usize..o.end as usize]
    }

    /// A singular field: its last value, the merge of all its occurrences for a message, or
    /// its default when absent.
    fn single(
        &mut self,
        kind: Scalar,
        parts: &[&[u8]],
        run: std::ops::Range<usize>,
        depth: usize,
    ) -> Result<(), Fault> {
        if let Scalar::Message(m) = kind {
            if let Some(o) = self.stack[run.clone()].iter().find(|o| o.wire() != 2) {
                return Err(bad(format!("wire type {} for a message", o.wire())));
            }
            if run.len() == 1 {
                let only = Self::bytes_of(parts, self.stack[run.start]);
                return self.message(m, &[only], depth);
            }
            // Occurring more than once: the occurrences are merged, read as one.
            let merged: Vec<&[u8]> = self.stack[run]
                .iter()
                .map(|o| Self::bytes_of(parts, *o))
                .collect();
            return self.message(m, &merged, depth);
        }
        match run.clone().last() {
            None => self.default(kind),
            Some(last) => {
                // Earlier values are checked (a decoder reads them), then replaced.
                if last > run.start {
                    self.check(kind, parts, run.start..last)?;
                }
                let o = self.stack[last];
                if o.wire() != kind.wire() {
                    return Err(bad(format!("wire type {} for {kind:?}", o.wire())));
                }
                self.value(kind, Self::bytes_of(parts, o), depth)
            }
        }
    }

    fn repeated(
        &mut self,
        kind: Scalar,
        parts: &[&[u8]],
        run: std::ops::Range<usize>,
        depth: usize,
    ) -> Result<(), Fault> {
        let depth = self.w.descend(depth)?;
        self.w.raw(b"[")?;
        for i in run {
            let o = self.stack[i];
            self.elements(kind, o.wire(), Self::bytes_of(parts, o), depth)?;
        }
        self.w.raw(b"]")
    }

    /// The elements of a repeated field in one of its occurrences (one value, or packed
    /// ones), appended to the array open in the output at `depth`.
    fn elements(&mut self, kind: Scalar, wire: u8, b: &[u8], depth: usize) -> Result<(), Fault> {
        let packed = wire == 2 && kind.wire() != 2;
        if !packed {
            if wire != kind.wire() {
                return Err(bad(format!("wire type {wire} for {kind:?}")));
            }
            self.comma()?;
            // Most repeated fields are of messages: read here, without a turn through `value`.
            return match kind {
                Scalar::Message(m) => self.message(m, &[b], depth),
                _ => self.value(kind, b, depth),
            };
        }
        let mut at = 0;
        while at < b.len() {
            let start = at;
            match kind.wire() {
                0 => {
                    varint(b, &mut at)?;
                }
                1 => take(b, &mut at, 8)?,
                _ => take(b, &mut at, 4)?,
            }
            self.comma()?;
            self.value(kind, &b[start..at], depth)?;
        }
        Ok(())
    }

    /// The comma before an array's element but its first: no JSON value ends in `[`, so
    /// the output ends in one exactly when the array is still empty.
    fn comma(&mut self) -> Result<(), Fault> {
        if self.w.out.last() == Some(&b'[') {
            return Ok(());
        }
        self.w.raw(b",")
    }

    /// A map: its entries as an object, the last of each key kept (as a decoder keeps it).
    fn map(
        &mut self,
        key: Scalar,
        value: Scalar,
        parts: &[&[u8]],
        run: std::ops::Range<usize>,
        depth: usize,
    ) -> Result<(), Fault> {
        // Each entry: its key, its value's encodings, its position; sorted by key and then
        // position, the last of each key is the one kept. Sized once: 64 bytes per entry of
        // at least 2 body bytes.
        let mut entries: Vec<Entry<'_>> = Vec::with_capacity(run.len());
        for (n, i) in run.enumerate() {
            let o = self.stack[i];
            if o.wire() != 2 {
                return Err(bad(format!("wire type {} for a map entry", o.wire())));
            }
            let b = Self::bytes_of(parts, o);
            let (mut k, mut v) = (MapKey::of(key, None)?, EntryValue::Absent);
            let mut at = 0;
            while at < b.len() {
                let (number, wire, start, end) = next_field(b, &mut at)?;
                let field = &b[start..end];
                match number {
                    1 if wire == key.wire() => k = MapKey::of(key, Some(field))?,
                    1 => return Err(bad(format!("wire type {wire} for a map key"))),
                    2 => {
                        // Every value is checked; a message's values are merged, as a decoder
                        // merges them; otherwise the last is kept.
                        check_value(value, wire, field)?;
                        v = match (v, value) {
                            (EntryValue::One(first), Scalar::Message(_)) => {
                                EntryValue::Merged(vec![first, field])
                            }
                            (EntryValue::Merged(mut all), Scalar::Message(_)) => {
                                all.push(field);
                                EntryValue::Merged(all)
                            }
                            _ => EntryValue::One(field),
                        };
                    }
                    _ => {}
                }
            }
            entries.push((k, v, n as u32));
        }
        entries.sort_unstable_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
        let depth = self.w.descend(depth)?;
        self.w.raw(b"{")?;
        let mut first = true;
        for (i, (k, v, _)) in entries.iter().enumerate() {
            if entries.get(i + 1).is_some_and(|next| next.0 == *k) {
                continue;
            }
            if !first {
                self.w.raw(b",")?;
            }
            first = false;
            self.map_key(k)?;
            self.w.raw(b":")?;
            // A map entry is a message of its own: one level of nesting to a decoder.
            self.nesting += 1;
            let written = match (v, value) {
                (EntryValue::Absent, _) => self.entry_default(value, depth),
                (EntryValue::One(b), Scalar::Message(m)) => self.message(m, &[*b], depth),
                (EntryValue::Merged(all), Scalar::Message(m)) => self.message(m, all, depth),
                (EntryValue::One(b), _) => self.value(value, b, depth),
                // Only a message's values are merged.
                (EntryValue::Merged(_), _) => Err(bad("merged values of a scalar")),
            };
            self.nesting -= 1;
            written?;
        }
        self.w.raw(b"}")
    }

    /// A map's key as a JSON member name: integers and booleans as strings.
    fn map_key(&mut self, k: &MapKey<'_>) -> Result<(), Fault> {
        match k {
            MapKey::Text(t) => self.w.string_bytes(t),
            MapKey::Signed(n) => self.w.quoted_int(*n),
            MapKey::Unsigned(n) => self.w.quoted_int(*n),
            MapKey::Bool(b) => self.w.raw(if *b { b"\"true\"" } else { b"\"false\"" }),
        }
    }

    fn entry_default(&mut self, value: Scalar, depth: usize) -> Result<(), Fault> {
        match value {
            Scalar::Message(m) => self.message(m, &[], depth),
            _ => self.default(value),
        }
    }

    /// One value of a non-message type, from its bytes (a varint's, fixed, or contents).
    fn value(&mut self, kind: Scalar, b: &[u8], depth: usize) -> Result<(), Fault> {
        match kind {
            Scalar::String => self.w.string_bytes(b),
            Scalar::Bytes => self.w.base64(b),
            Scalar::Message(m) => self.message(m, &[b], depth),
            Scalar::Double => self.w.float(f64::from_le_bytes(fixed(b)?)),
            Scalar::Float => {
                let f = f32::from_le_bytes(fixed(b)?);
                if f.is_finite() {
                    self.w.number(f)
                } else {
                    self.w.float(f64::from(f))
                }
            }
            Scalar::Enum(e) => {
                let n = varint(b, &mut 0)? as i64 as i32;
                let plan: &'p Plan = self.plan;
                let plan = &plan.enums[e as usize];
                if plan.null {
                    return self.w.raw(b"null");
                }
                match plan.names.get(&n) {
                    Some(name) => self.w.raw(name),
                    None => self.w.int(n),
                }
            }
            Scalar::Bool => self.w.raw(if varint(b, &mut 0)? != 0 {
                b"true"
            } else {
                b"false"
            }),
            _ => self.integer(kind, b),
        }
    }

    /// An integer: 64-bit ones as strings, as the JSON mapping writes them.
    fn integer(&mut self, kind: Scalar, b: &[u8]) -> Result<(), Fault> {
        let v = || varint(b, &mut 0);
        match kind {
            Scalar::Int32 => self.w.int(v()? as i64 as i32),
            Scalar::Uint32 => self.w.int(v()? as u32),
            Scalar::Sint32 => {
                let r = v()? as u32;
                self.w.int((r >> 1) as i32 ^ -((r & 1) as i32))
            }
            Scalar::Fixed32 => self.w.int(u32::from_le_bytes(fixed(b)?)),
            Scalar::Sfixed32 => self.w.int(i32::from_le_bytes(fixed(b)?)),
            Scalar::Int64 => self.w.quoted_int(v()? as i64),
            Scalar::Uint64 => self.w.quoted_int(v()?),
            Scalar::Sint64 => {
                let r = v()?;
                self.w.quoted_int((r >> 1) as i64 ^ -((r & 1) as i64))
            }
            Scalar::Fixed64 => self.w.quoted_int(u64::from_le_bytes(fixed(b)?)),
            Scalar::Sfixed64 => self.w.quoted_int(i64::from_le_bytes(fixed(b)?)),
            other => Err(bad(format!("{other:?} is not an integer"))),
        }
    }

    /// What an absent field without presence holds.
    fn default(&mut self, kind: Scalar) -> Result<(), Fault> {
        match kind {
            Scalar::Double | Scalar::Float => self.w.raw(b"0.0"),
            Scalar::Int64
            | Scalar::Uint64
            | Scalar::Sint64
            | Scalar::Fixed64
            | Scalar::Sfixed64 => self.w.raw(b"\"0\""),
            Scalar::Bool => self.w.raw(b"false"),
            Scalar::String | Scalar::Bytes => self.w.raw(b"\"\""),
            Scalar::Enum(e) => {
                let plan: &'p Plan = self.plan;
                let plan = &plan.enums[e as usize];
                if plan.null {
                    return self.w.raw(b"null");
                }
                match plan.names.get(&plan.default) {
                    Some(name) => self.w.raw(name),
                    None => self.w.int(plan.default),
                }
            }
            // Message fields have presence: never written as a default.
            Scalar::Message(_) => Err(bad("a message has no default here")),
            _ => self.w.raw(b"0"),
        }
    }

    /// `google.protobuf.*Value`: field 1, written bare.
    fn wrapper(&mut self, m: u32, parts: &[&[u8]], base: usize, depth: usize) -> Result<(), Fault> {
        let plan = &self.plan.messages[m as usize];
        let kind = plan.fields.first().map_or(Scalar::Int32, |f| f.kind);
        let run = self.run(base, 0);
        // A `DoubleValue` or `FloatValue` that is not finite is written `null`, as the
        // reference printer writes a bare non-finite number.
        if let (Scalar::Double | Scalar::Float, Some(last)) = (kind, run.clone().last()) {
            let o = self.stack[last];
            let b = Self::bytes_of(parts, o);
            let finite = match (kind, o.wire()) {
                (Scalar::Double, 1) => f64::from_le_bytes(fixed(b)?).is_finite(),
                (Scalar::Float, 5) => f32::from_le_bytes(fixed(b)?).is_finite(),
                _ => true, // a wrong wire type: refused by `single`
            };
            if !finite {
                self.check(kind, parts, run)?;
                return self.w.raw(b"null");
            }
        }
        self.single(kind, parts, run, depth)
    }

    /// `Timestamp` (RFC 3339 in UTC) and `Duration` (`1.5s`): seconds (field 1) and nanos
    /// (field 2), in the ranges the JSON mapping allows. A `Timestamp` at `depth` 1 may be the
    /// event time: noted for the envelope (normalised ones, which are nearly all).
    fn time(&mut self, special: Special, parts: &[&[u8]], depth: usize) -> Result<(), Fault> {
        // Read as they come, whatever the order: every value is checked (a decoder reads
        // them all) and the last of each kept.
        let (mut seconds, mut nanos) = (0_i64, 0_i32);
        for part in parts {
            let mut at = 0;
            while at < part.len() {
                let (number, wire, start, end) = next_field(part, &mut at)?;
                if number > 2 {
                    continue;
                }
                if wire != 0 {
                    return Err(bad(format!("wire type {wire} for seconds or nanos")));
                }
                let v = varint(&part[start..end], &mut 0)? as i64;
                if number == 1 {
                    seconds = v;
                } else {
                    nanos = v as i32;
                }
            }
        }
        let mut text = Short::default();
        match special {
            Special::Timestamp => timestamp(seconds, nanos, &mut text)?,
            _ => duration(seconds, nanos, &mut text)?,
        }
        // Digits, `-`, `:`, `.`, `T`, `Z`, `s`: nothing to escape.
        self.w.raw(b"\"")?;
        self.w.raw(text.as_bytes())?;
        self.w.raw(b"\"")?;
        if special == Special::Timestamp && (0..1_000_000_000).contains(&nanos) {
            self.w.timestamp_written(depth, seconds, nanos);
        }
        Ok(())
    }
}

/// What a decoder refuses in one value of `kind` sent with wire type `wire`.
fn check_value(kind: Scalar, wire: u8, b: &[u8]) -> Result<(), Fault> {
    if wire != kind.wire() {
        return Err(bad(format!("wire type {wire} for {kind:?}")));
    }
    if kind == Scalar::String {
        std::str::from_utf8(b).map_err(|_| bad("a string that is not UTF-8"))?;
    }
    Ok(())
}

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], Fault> {
    b.try_into()
        .map_err(|_| bad("a fixed-width value of the wrong size"))
}

/// The members of a message's object as they are written: whether one was yet, and for the
/// record's own object, where each name and value lies (handed to the writer for envelope
/// lookups); in the object of the member the envelope reads one level down (the payload),
/// where that member lies.
struct Members {
    first: bool,
    top: bool,
    outer: bool,
    spans: Vec<super::MemberSpan>,
}

impl Members {
    /// For a message written at `depth` (the record's own at 0).
    fn new(depth: usize, w: &Writer<'_>) -> Self {
        Members {
            first: true,
            top: depth == 0,
            outer: w.is_outer_value(depth),
            spans: Vec::new(),
        }
    }

    /// Writes field `f`'s key (with the comma before it but for the first member): where
    /// its value starts.
    #[inline(always)]
    fn key(&mut self, f: &FieldPlan, w: &mut Writer<'_>) -> Result<usize, Fault> {
        w.key(&f.key, self.first)?;
        self.first = false;
        if self.top {
            w.top_member(f.name());
        }
        Ok(w.out.len())
    }

    /// Field `f`'s value was written from `at`: noted for the record's own object, and for
    /// the member the envelope reads one level down.
    #[inline(always)]
    fn written(&mut self, f: &FieldPlan, at: usize, w: &mut Writer<'_>) {
        if self.top {
            w.top_member_written(&mut self.spans, at - 2 - f.name().len()..at - 2, at);
        } else if self.outer {
            w.outer_member_written(f.name(), at);
        }
    }

    /// The record's members noted, when each name was written as it is (no escapes).
    #[inline]
    fn finish(self, plan: &MessagePlan, w: &mut Writer<'_>) {
        if self.outer {
            w.outer_value_written();
        }
        if self.top && plan.plain_keys {
            w.members = Some(self.spans);
        }
    }
}

/// The member a oneof holds: its field, where it was last set, and where another member was
/// last set before that.
#[derive(Debug, Clone, Copy)]
struct Winner {
    field: u32,
    last: (u32, u32),
    cleared_until: Option<(u32, u32)>,
}

/// A map entry as read: its key, its value, its position.
type Entry<'b> = (MapKey<'b>, EntryValue<'b>, u32);

/// A map entry's value: absent (the type's default), its one encoding, or a message's
/// encodings to merge.
#[derive(Debug)]
enum EntryValue<'b> {
    Absent,
    One(&'b [u8]),
    Merged(Vec<&'b [u8]>),
}

/// A map's key, decoded (its JSON text is a string whatever its type).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MapKey<'b> {
    Text(&'b [u8]),
    Signed(i64),
    Unsigned(u64),
    Bool(bool),
}

impl<'b> MapKey<'b> {
    /// The key of type `kind` encoded in `b`, or the type's default when absent.
    fn of(kind: Scalar, b: Option<&'b [u8]>) -> Result<MapKey<'b>, Fault> {
        let Some(b) = b else {
            return Ok(match kind {
                Scalar::String => MapKey::Text(b""),
                Scalar::Bool => MapKey::Bool(false),
                Scalar::Uint32 | Scalar::Uint64 | Scalar::Fixed32 | Scalar::Fixed64 => {
                    MapKey::Unsigned(0)
                }
                _ => MapKey::Signed(0),
            });
        };
        let v = || varint(b, &mut 0);
        Ok(match kind {
            Scalar::String => {
                std::str::from_utf8(b).map_err(|_| bad("a map key that is not UTF-8"))?;
                MapKey::Text(b)
            }
            Scalar::Bool => MapKey::Bool(v()? != 0),
            Scalar::Int32 => MapKey::Signed(i64::from(v()? as i64 as i32)),
            Scalar::Int64 => MapKey::Signed(v()? as i64),
            Scalar::Uint32 => MapKey::Unsigned(u64::from(v()? as u32)),
            Scalar::Uint64 => MapKey::Unsigned(v()?),
            Scalar::Sint32 => {
                let r = v()? as u32;
                MapKey::Signed(i64::from((r >> 1) as i32 ^ -((r & 1) as i32)))
            }
            Scalar::Sint64 => {
                let r = v()?;
                MapKey::Signed((r >> 1) as i64 ^ -((r & 1) as i64))
            }
            Scalar::Fixed32 => MapKey::Unsigned(u64::from(u32::from_le_bytes(fixed(b)?))),
            Scalar::Fixed64 => MapKey::Unsigned(u64::from_le_bytes(fixed(b)?)),
            Scalar::Sfixed32 => MapKey::Signed(i64::from(i32::from_le_bytes(fixed(b)?))),
            Scalar::Sfixed64 => MapKey::Signed(i64::from_le_bytes(fixed(b)?)),
            other => return Err(bad(format!("{other:?} as a map key"))),
        })
    }
}

/// A short text written without a heap allocation (a timestamp, a duration).
struct Short {
    buf: [u8; 40],
    len: usize,
}

impl Default for Short {
    fn default() -> Self {
        Short {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl Short {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends one byte (the callers write at most 30 of the 40).
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// Appends `v`'s last `n` decimal digits, zero-padded.
    fn digits(&mut self, mut v: u32, n: usize) {
        for at in (self.len..self.len + n).rev() {
            self.buf[at] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += n;
    }
}

impl std::fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let to = self.len + s.len();
        self.buf
            .get_mut(self.len..to)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = to;
        Ok(())
    }
}

fn timestamp(seconds: i64, nanos: i32, out: &mut Short) -> Result<(), Fault> {
    use std::fmt::Write as _;
    // The reference printer's range check (seconds only), then `prost-types`' text, which
    // normalises nanos outside 0..1e9 first.
    if !(-62_135_596_800..=253_402_300_799).contains(&seconds) {
        return Err(bad("a Timestamp out of range"));
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return write!(out, "{}", prost_types::Timestamp { seconds, nanos })
            .map_err(|_| bad("a Timestamp out of range"));
    }
    // Normalised already (most are): the same text written directly, the calendar from the
    // `time` crate. Through `Display` it took a twentieth of a record's decode (measured).
    let t = time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| bad("a Timestamp out of range"))?;
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second) = t.to_hms();
    // In range, the year has four digits.
    out.digits(year.unsigned_abs(), 4);
    out.push(b'-');
    out.digits(u32::from(u8::from(month)), 2);
    out.push(b'-');
    out.digits(u32::from(day), 2);
    out.push(b'T');
    out.digits(u32::from(hour), 2);
    out.push(b':');
    out.digits(u32::from(minute), 2);
    out.push(b':');
    out.digits(u32::from(second), 2);
    // As many fraction digits as the nanos need, in threes: none, millis, micros or nanos.
    let nanos = nanos.unsigned_abs();
    if nanos != 0 {
        out.push(b'.');
        if nanos.is_multiple_of(1_000_000) {
            out.digits(nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            out.digits(nanos / 1_000, 6);
        } else {
            out.digits(nanos, 9);
        }
    }
    out.push(b'Z');
    Ok(())
}

fn duration(seconds: i64, nanos: i32, out: &mut Short) -> Result<(), Fault> {
    use std::fmt::Write as _;
    // The reference printer's range check, then `prost-types`' text, which normalises mixed
    // signs first.
    if seconds.unsigned_abs() > 315_576_000_000 || nanos.unsigned_abs() > 999_999_999 {
        return Err(bad("a Duration out of range"));
    }
    write!(out, "{}", prost_types::Duration { seconds, nanos })
        .map_err(|_| bad("a Duration out of range"))
}
