//! Borrowed views into JSON text: an object's members as raw slices, without building a tree.
//! This is why decoding costs little more than validating the bytes once: the payload is never
//! parsed into values nor serialised again, only sliced.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Why text could not be viewed as a JSON object.
#[derive(Debug)]
pub enum ViewError {
    /// Valid JSON, but not an object; carries the JSON type name.
    NotAnObject(&'static str),
    /// Nested deeper than allowed.
    TooDeep,
    /// Not JSON at all.
    Malformed(serde_json::Error),
}

/// Members of one JSON object (all of them, or those a decoder asked for), keys unescaped,
/// values as raw JSON text (already validated by the parse that produced them).
pub struct ObjectView<'a> {
    members: Vec<Member<'a>>,
    /// One member of a member that is itself an object, read in the same parse (see
    /// [`ObjectView::parse_only`]): the outer member's index in `members`, the inner
    /// member's name, and its value (`None`: absent).
    inner: Option<(usize, &'a str, Option<&'a str>)>,
}

type Member<'a> = (Cow<'a, str>, &'a str);

impl<'a> ObjectView<'a> {
    /// Views `text` as an object, every member. Validates the whole text as JSON in the same
    /// pass.
    pub fn parse(text: &'a str) -> Result<ObjectView<'a>, ViewError> {
        parse_seed(
            text,
            MembersSeed {
                text,
                keys: None,
                inner: None,
            },
        )
        .map(|m| ObjectView {
            members: m.members,
            inner: None,
        })
    }

    /// [`parse`](Self::parse), keeping only the members named in `keys` (and `inner.0`), and
    /// also reading member `inner.1` of member `inner.0` when that is an object.
    ///
    /// A decoder reads a handful of known members: the others are skipped, not kept. The
    /// object id usually sits one level down (`payload.order_id`): reading it during the one
    /// parse costs next to nothing, where finding it afterwards meant walking the payload a
    /// second time. While that member is read inside, its own text is not captured; it is
    /// placed afterwards from where its key and the next key (or the closing brace) sit.
    ///
    /// Where it cannot be placed (the next key has escapes, so it is not a slice of `text`),
    /// or the read inside refuses what a plain skip accepts (a key that is a lone surrogate
    /// escape), the text is parsed again the plain way: rare inputs, the plain parse's answer.
    pub fn parse_only(
        text: &'a str,
        keys: &[String],
        inner: Option<(&str, &'a str)>,
    ) -> Result<ObjectView<'a>, ViewError> {
        let inner_key = inner.map_or("", |(_, key)| key);
        let seed = MembersSeed {
            text,
            keys: Some(keys),
            inner,
        };
        match parse_seed(text, seed) {
            Ok(Members {
                members,
                inner,
                placed: true,
            }) => Ok(ObjectView {
                members,
                inner: inner.map(|(at, value)| (at, inner_key, value)),
            }),
            Err(e) if inner_key.is_empty() => Err(e),
            _ => Self::parse(text),
        }
    }

    /// The view of `text`, one JSON object written by this program (a rendered record),
    /// from where its writer put its members: keys' texts without escapes, and values. No
    /// parse: the writer vouches for the text. `inner`, when the writer noted it: member
    /// `inner.1` of member `inner.0` and where it sits (`None`: that member is an object
    /// without it), as [`ObjectView::parse_only`] reads it. `None` when a span does not fit
    /// the text.
    pub fn from_spans(
        text: &'a str,
        spans: &[(std::ops::Range<usize>, std::ops::Range<usize>)],
        inner: Option<(&str, &'a str, Option<std::ops::Range<usize>>)>,
    ) -> Option<ObjectView<'a>> {
        let members = spans
            .iter()
            .map(|(key, value)| {
                Some((
                    Cow::Borrowed(text.get(key.clone())?),
                    text.get(value.clone())?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        let inner = match inner {
            Some((outer, key, at)) => {
                let value = match at {
                    Some(at) => Some(text.get(at)?),
                    None => None,
                };
                last(&members, outer).map(|(index, _)| (index, key, value))
            }
            None => None,
        };
        Some(ObjectView { members, inner })
    }

    /// The raw value of `key`; with duplicate keys the last wins, as in most JSON readers.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        last(&self.members, key).map(|(_, v)| v)
    }

    /// Follows a dotted path; `Ok(None)` when a member is absent or an intermediate value is
    /// `null`; an error when an intermediate value is not an object.
    pub fn lookup(&self, path: &[String]) -> Result<Option<&'a str>, String> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(None);
        };
        let Some((index, mut value)) = last(&self.members, first) else {
            return Ok(None);
        };
        let mut rest = rest.iter().enumerate().peekable();
        if let Some((at, inner_key, inner)) = self.inner
            && at == index
            && rest.next_if(|(_, key)| *key == inner_key).is_some()
        {
            match inner {
                Some(v) => value = v,
                None => return Ok(None),
            }
        }
        for (i, key) in rest {
            match json_type(value) {
                "null" => return Ok(None),
                "object" => {}
                other => {
                    return Err(format!(
                        "`{}` is {} {other}, not an object",
                        path[..=i].join("."),
                        article(other)
                    ));
                }
            }
            let found = match find_member(value, key) {
                Scan::Found(text) => Some(text),
                Scan::Absent => None,
                // A key with escapes (or text the scanner does not expect): parse for real.
                // Validated as part of the enclosing document, which skipped its keys: only
                // a key that is a lone surrogate escape can make this parse fail.
                Scan::NeedsParse => ObjectView::parse(value)
                    .map_err(|_| "unreadable object")?
                    .get(key),
            };
            match found {
                Some(v) => value = v,
                None => return Ok(None),
            }
        }
        Ok(Some(value))
    }
}

/// What [`find_member`] found.
#[derive(Debug, PartialEq)]
enum Scan<'a> {
    Found(&'a str),
    Absent,
    NeedsParse,
}

/// The raw text of member `key` of `object`, which is a JSON object already validated as part
/// of its enclosing document. Object ids usually sit one level down (`payload.order_id`), and
/// parsing the whole payload a second time just to read one member cost about as much as the
/// floor scan of the body; this skips values with memchr instead, and stops at the member
/// when nothing after it could be another of that name. Duplicate keys: the last one wins, as
/// in [`ObjectView::get`]. Keys with escapes, and anything unexpected, are left to the
/// parser (`NeedsParse`), so the answer is always the parser's answer.
fn find_member<'a>(object: &'a str, key: &str) -> Scan<'a> {
    let b = object.as_bytes();
    let mut found = Scan::Absent;
    let Some(mut i) = skip_ws(b, 0).filter(|&i| b[i] == b'{') else {
        return Scan::NeedsParse;
    };
    i += 1;
    loop {
        let Some(at) = skip_ws(b, i) else {
            return Scan::NeedsParse;
        };
        match b[at] {
            b'}' => return found,
            b',' => {
                i = at + 1;
                continue;
            }
            b'"' => {}
            _ => return Scan::NeedsParse,
        }
        let Some(key_end) = string_end(b, at) else {
            return Scan::NeedsParse;
        };
        let raw_key = &object[at + 1..key_end - 1];
        if raw_key.contains('\\') {
            return Scan::NeedsParse;
        }
        let Some(colon) = skip_ws(b, key_end).filter(|&c| b[c] == b':') else {
            return Scan::NeedsParse;
        };
        let Some(start) = skip_ws(b, colon + 1) else {
            return Scan::NeedsParse;
        };
        let Some(end) = value_end(b, start) else {
            return Scan::NeedsParse;
        };
        if raw_key == key {
            found = Scan::Found(&object[start..end]);
            // Only a later member of the same name could change the answer, and its key
            // would hold the name's text or an escape: without either in the rest, stop here
            // instead of walking the rest of the payload.
            let rest = &b[end..];
            if memchr::memchr(b'\\', rest).is_none()
                && memchr::memmem::find(rest, key.as_bytes()).is_none()
            {
                return found;
            }
        }
        i = end;
    }
}

/// The first non-whitespace index at or after `i`.
fn skip_ws(b: &[u8], i: usize) -> Option<usize> {
    (i..b.len()).find(|&j| !matches!(b[j], b' ' | b'\t' | b'\n' | b'\r'))
}

/// `b[start]` opens a string; the index just past its closing quote (`None`: unterminated).
/// Jumps through the string with memchr: payload bytes are mostly string contents, and a
/// byte-at-a-time loop here cost several times a JSON parse.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2;
    }
}

/// `b[start]` begins a value; the index just past it.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b[start] {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        // A number, true, false or null runs to the next delimiter.
        _ => Some(
            (start..b.len())
                .find(|&j| matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len()),
        ),
    }
}

fn classify(text: &str, e: serde_json::Error) -> ViewError {
    if e.to_string().starts_with("recursion limit exceeded") {
        return ViewError::TooDeep;
    }
    let first = text.trim_start().as_bytes().first().copied();
    if first != Some(b'{') && e.is_data() {
        // Deserializing an object from valid non-object JSON is a data error; anything
        // else (syntax, EOF) means the text is not JSON at all.
        if let Ok(raw) = serde_json::from_str::<&RawValue>(text) {
            return ViewError::NotAnObject(json_type(raw.get()));
        }
    }
    ViewError::Malformed(e)
}

/// The JSON type of a raw value, from its first byte.
pub fn json_type(v: &str) -> &'static str {
    match v.as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

pub fn article(type_name: &str) -> &'static str {
    if type_name.starts_with(['a', 'o']) {
        "an"
    } else {
        "a"
    }
}

/// At least as many as the JSON values in `text`: every value but the first follows a `[`,
/// a `{` or a `,` (those inside strings only raise the count). A vectorised byte count: the
/// schema check learns what a value tree of `text` would cost before building one.
pub fn values_at_most(text: &[u8]) -> usize {
    1 + memchr::memchr3_iter(b',', b'[', b'{', text).count()
}

/// How deeply `text` nests arrays and objects; stops counting once `limit` is passed.
/// A plain byte scan: far cheaper than the parse it protects.
pub fn depth_exceeds(text: &[u8], limit: usize) -> bool {
    // Each level opens with a bracket: text with no more brackets than the limit cannot nest
    // deeper. A vectorised count settles the common case without walking byte by byte.
    if memchr::memchr2_iter(b'{', b'[', text).count() <= limit {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => match string_end(text, i) {
                Some(end) => {
                    i = end;
                    continue;
                }
                // Unterminated: not our call, the parser rejects it.
                None => return false,
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// The last member named `key`, with its index.
fn last<'a>(members: &[Member<'a>], key: &str) -> Option<(usize, &'a str)> {
    members
        .iter()
        .rposition(|(k, _)| k == key)
        .map(|i| (i, members[i].1))
}

/// Parses `text` with `seed`, then checks that nothing but whitespace follows the object.
fn parse_seed<'a>(text: &'a str, seed: MembersSeed<'a, '_>) -> Result<Members<'a>, ViewError> {
    let mut de = serde_json::Deserializer::from_str(text);
    de::DeserializeSeed::deserialize(seed, &mut de)
        .and_then(|m| {
            de.end()?;
            Ok(m)
        })
        .map_err(|e| classify(text, e))
}

struct Members<'a> {
    members: Vec<Member<'a>>,
    /// The last outer member's index, and its inner member's value (`None`: absent); only
    /// when that outer member is an object.
    inner: Option<(usize, Option<&'a str>)>,
    /// The outer member read inside was placed in the text (see [`ObjectView::parse_only`]).
    placed: bool,
}

/// Parses an object's members as raw values: all of them (`keys: None`), or only `keys`;
/// `inner` names the member of a member to read too.
struct MembersSeed<'a, 's> {
    text: &'a str,
    keys: Option<&'s [String]>,
    inner: Option<(&'s str, &'s str)>,
}

impl<'de> de::DeserializeSeed<'de> for MembersSeed<'de, '_> {
    type Value = Members<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MembersSeed<'de, '_> {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let text = self.text;
        let b = text.as_bytes();
        let mut members: Vec<Member<'de>> =
            Vec::with_capacity(self.keys.map_or(8, |keys| keys.len() + 1));
        let mut inner = None;
        let mut placed = true;
        // The member read inside, whose end is not known yet: its index and where it starts.
        let mut open: Option<(usize, usize)> = None;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if let Some((index, start)) = open.take() {
                let end = key_offset(text, &k).and_then(|at| value_end_before_key(b, at));
                placed &= end.is_some_and(|end| place(&mut members[index], text, start, end));
            }
            if let Some((outer, key)) = self.inner
                && k == outer
            {
                let start = key_offset(text, &k).and_then(|at| value_start_after_key(b, at, &k));
                match start {
                    // Only an object is read inside: any other value is skipped as the plain
                    // parse skips it (`1e400` is valid JSON, but no f64).
                    Some(start) if b[start] == b'{' => {
                        let value = map.next_value_seed(InnerSeed { key })?;
                        inner = Some((members.len(), value));
                        open = Some((members.len(), start));
                        members.push((k, ""));
                    }
                    // Not an object (a later duplicate replaces an earlier object), or a key
                    // with escapes: a raw value, read inside by `lookup` if need be.
                    _ => {
                        let v: &'de RawValue = map.next_value()?;
                        inner = None;
                        members.push((k, v.get()));
                    }
                }
            } else if self.keys.is_none_or(|keys| keys.iter().any(|w| *w == *k)) {
                let v: &'de RawValue = map.next_value()?;
                members.push((k, v.get()));
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        if let Some((index, start)) = open {
            let end = value_end_before_close(b);
            placed &= end.is_some_and(|end| place(&mut members[index], text, start, end));
        }
        Ok(Members {
            members,
            inner,
            placed,
        })
    }
}

/// Sets `member`'s value to `text[start..end]`; false when that is not a non-empty slice of
/// `text` (no JSON value is empty).
fn place<'a>(member: &mut Member<'a>, text: &'a str, start: usize, end: usize) -> bool {
    match text.get(start..end) {
        Some(value) if !value.is_empty() => {
            member.1 = value;
            true
        }
        _ => false,
    }
}

/// Where `key`'s text starts in `text`; `None` when it is not a slice of `text`, as a key with
/// escapes is not (it was unescaped into memory of its own).
fn key_offset(text: &str, key: &str) -> Option<usize> {
    let at = (key.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    (at + key.len() <= text.len()).then_some(at)
}

/// Where the value of the member whose key text starts at `at` starts: past the key's
/// closing quote, the colon and any whitespace.
fn value_start_after_key(b: &[u8], at: usize, key: &str) -> Option<usize> {
    let quote = at + key.len();
    if b.get(quote) != Some(&b'"') {
        return None;
    }
    let colon = skip_ws(b, quote + 1).filter(|&c| b[c] == b':')?;
    skip_ws(b, colon + 1)
}

/// Where the previous member's value ends, given that the next key's text starts at `at`:
/// in valid JSON only whitespace and one comma lie between them.
fn value_end_before_key(b: &[u8], at: usize) -> Option<usize> {
    let quote = at.checked_sub(1).filter(|&q| b[q] == b'"')?;
    let comma = skip_ws_back(b, quote).filter(|&c| b[c] == b',')?;
    skip_ws_back(b, comma).map(|last| last + 1)
}

/// Where the last member's value ends: before the object's closing brace, which is the
/// last non-whitespace byte of the text.
fn value_end_before_close(b: &[u8]) -> Option<usize> {
    let close = skip_ws_back(b, b.len()).filter(|&c| b[c] == b'}')?;
    skip_ws_back(b, close).map(|last| last + 1)
}

/// The last non-whitespace index before `i`.
fn skip_ws_back(b: &[u8], i: usize) -> Option<usize> {
    b[..i]
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Reads one member of an object, the last of that name (`None`: absent); the others are
/// skipped.
struct InnerSeed<'s> {
    key: &'s str,
}

impl<'de> de::DeserializeSeed<'de> for InnerSeed<'_> {
    type Value = Option<&'de str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InnerSeed<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if k == self.key {
                value = Some(map.next_value::<&'de RawValue>()?.get());
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(value)
    }
}

/// A key that borrows from the input unless it had escapes to undo.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_members_and_follows_paths() {
        let text = r#"{"a": 1, "p": {"id": "x", "n": {"k": [1,2]}}, "e\u0073c": true}"#;
        let v = ObjectView::parse(text).unwrap();
        assert_eq!(v.get("a").unwrap(), "1");
        assert_eq!(v.get("esc").unwrap(), "true");
        let path = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(v.lookup(&path("p.id")).unwrap().unwrap(), r#""x""#);
        assert_eq!(v.lookup(&path("p.n.k")).unwrap().unwrap(), "[1,2]");
        assert!(v.lookup(&path("p.missing")).unwrap().is_none());
        assert!(
            v.lookup(&path("a.b"))
                .unwrap_err()
                .contains("`a` is a number")
        );
    }

    /// The inner member gathered during the parse gives the answers a plain parse gives,
    /// including where it cannot be placed and the view is parsed again.
    #[test]
    fn inner_members_agree_with_a_plain_parse() {
        let texts = [
            r#"{"p": {"id": "x", "n": {"id": 2}}, "q": 1}"#,
            r#"{ "p" :  {  "a": [1, {"id": 0}], "id" : -1.5e3 }  }"#,
            r#"{"p": {"id": 1, "id": "last wins"}}"#,
            r#"{"p": {"id": 1}, "p": {"id": "last p wins"}}"#,
            r#"{"p": {"id": 1}, "p": "a string now"}"#,
            r#"{"p": "x", "p": {"id": "object after a string"}}"#,
            r#"{"p": {}}"#,
            r#"{"p": {"i\u0064": "escaped first key"}}"#,
            r#"{"p": {"a": 1, "i\u0064": "escaped later key"}}"#,
            r#"{"\u0070": {"id": "escaped outer key"}}"#,
            r#"{"p": null}"#,
            r#"{"p": [{"id": 1}]}"#,
            r#"{"p": 7}"#,
            r#"{"p": true}"#,
            r#"{"q": {"id": 1}}"#,
            "{\"p\"\n:\t{\r\n\"id\"\n:\"tabs\"\n}\n}",
        ];
        let paths = ["p.id", "p.n", "p.n.id", "p.a", "p", "q"]
            .map(|p| p.split('.').map(String::from).collect::<Vec<_>>());
        let kept = ["p".to_string(), "q".to_string()];
        for text in texts {
            let plain = ObjectView::parse(text).unwrap();
            let gathered = ObjectView::parse_only(text, &kept, Some(("p", "id"))).unwrap();
            for path in &paths {
                assert_eq!(gathered.lookup(path), plain.lookup(path), "{text} {path:?}");
            }
        }
        let v = ObjectView::parse_only(texts[0], &kept, Some(("p", "id"))).unwrap();
        assert!(v.inner.is_some(), "the placeable case must not parse twice");
        let text = r#"{"p": {"id": "x"}, "q": 1, "r": 2}"#;
        let v = ObjectView::parse_only(text, &kept[1..], Some(("p", "id"))).unwrap();
        assert_eq!(v.get("p"), Some(r#"{"id": "x"}"#));
        assert_eq!(
            v.members.len(),
            2,
            "members not asked for are skipped, not kept"
        );
    }

    #[test]
    fn member_scan_agrees_with_the_parser() {
        let objects = [
            r#"{"id": "x", "n": 1}"#,
            r#" { "a" : { "id" : "inner" } , "id" : -1.5e3 } "#,
            r#"{"s": "has \"id\": \"fake\" and { [ brackets", "id": [1, {"id": 2}, "]"]}"#,
            r#"{"id": 1, "id": "last wins"}"#,
            r#"{"other": true, "x": null}"#,
            r#"{}"#,
            r#"{"i\u0064": "escaped key"}"#,
            r#"{"\\": 1, "id": false}"#,
            "{\"id\"\n:\t\"tabs\"\r\n}",
        ];
        for text in objects {
            let expected = ObjectView::parse(text).unwrap().get("id");
            let scanned = match find_member(text, "id") {
                Scan::Found(t) => Some(t),
                Scan::Absent => None,
                Scan::NeedsParse => {
                    assert!(text.contains('\\'), "{text}: unexpected fallback");
                    continue;
                }
            };
            assert_eq!(scanned, expected, "{text}");
        }
        assert_eq!(find_member(r#"{"i\u0064": 1}"#, "id"), Scan::NeedsParse);
    }

    proptest::proptest! {
        /// Objects built from awkward keys, values and whitespace: the scan finds what the
        /// parser finds, or defers to it.
        #[test]
        fn member_scan_matches_the_parser_on_generated_objects(
            members in generated_members()
        ) {
            let text = object_of(&members);
            let expected = ObjectView::parse(&text).unwrap().get("id");
            match find_member(&text, "id") {
                Scan::Found(t) => proptest::prop_assert_eq!(Some(t), expected, "{}", text),
                Scan::Absent => proptest::prop_assert_eq!(None, expected, "{}", text),
                Scan::NeedsParse => proptest::prop_assert!(text.contains('\\'), "{}", text),
            }
            // The same object one level down, gathered during the parse.
            let outer = format!("{{\"p\":{text}, \"z\": 0}}");
            let path = ["p".to_string(), "id".to_string()];
            let plain = ObjectView::parse(&outer).unwrap();
            let kept = ["p".to_string()];
            let gathered = ObjectView::parse_only(&outer, &kept, Some(("p", "id"))).unwrap();
            proptest::prop_assert_eq!(gathered.lookup(&path), plain.lookup(&path), "{}", outer);
            proptest::prop_assert_eq!(gathered.get("p"), Some(text.trim()), "{}", outer);
        }

        /// Whatever the keys, values and whitespace (inside and around the object), each kept
        /// member reads what the plain parse reads, the member read inside (`p`) is placed
        /// where the plain parse finds it, and the others are not kept.
        #[test]
        fn kept_members_read_what_the_plain_parse_reads(
            members in generated_members(),
            kept in proptest::sample::subsequence(KEYS.to_vec(), 0..4),
            around in 0usize..SPACES.len(),
        ) {
            let text = format!("{w}{}{w}", object_of(&members), w = SPACES[around]);
            let kept: Vec<String> =
                kept.iter().map(|k| serde_json::from_str(k).unwrap()).collect();
            let plain = ObjectView::parse(&text).unwrap();
            let only = ObjectView::parse_only(&text, &kept, Some(("p", "id"))).unwrap();
            for key in kept.iter().map(String::as_str).chain(["p"]) {
                proptest::prop_assert_eq!(only.get(key), plain.get(key), "{} {}", text, key);
            }
            let path = ["p".to_string(), "id".to_string()];
            proptest::prop_assert_eq!(only.lookup(&path), plain.lookup(&path), "{}", text);
            if !text.contains('\\') {
                proptest::prop_assert!(
                    only.members.iter().all(|(k, _)| k == "p" || kept.contains(&k.to_string())),
                    "{}", text
                );
            }
        }
    }

    /// Up to 8 members, each as indexes into `KEYS`, `VALUES` and `SPACES` (see [`object_of`]).
    fn generated_members() -> impl proptest::strategy::Strategy<Value = Vec<(usize, usize, usize)>>
    {
        proptest::collection::vec(
            (
                0usize..KEYS.len(),
                0usize..VALUES.len(),
                0usize..SPACES.len(),
            ),
            0..8,
        )
    }

    /// An object from generated members: indexes into `KEYS`, `VALUES` and `SPACES`.
    fn object_of(members: &[(usize, usize, usize)]) -> String {
        let members: Vec<String> = members
            .iter()
            .map(|&(k, v, w)| format!("{w}{}{w}:{w}{}{w}", KEYS[k], VALUES[v], w = SPACES[w]))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    const KEYS: [&str; 7] = [
        r#""id""#,
        r#""p""#,
        r#""idx""#,
        r#""i""#,
        r#""""#,
        r#""i\u0064""#,
        r#""\"id\"""#,
    ];
    const VALUES: [&str; 10] = [
        "1",
        "-0.5e-3",
        "true",
        "null",
        r#""id""#,
        r#""a \" } ] , b""#,
        "[]",
        r#"[{"id": [1, "]"]}, {}]"#,
        r#"{"id": {"id": "}"}}"#,
        r#""\\""#,
    ];
    const SPACES: [&str; 3] = ["", " ", "\n\t "];

    #[test]
    fn classifies_non_objects_and_garbage() {
        assert!(matches!(
            ObjectView::parse("[1,2]"),
            Err(ViewError::NotAnObject("array"))
        ));
        assert!(matches!(
            ObjectView::parse(" 42 "),
            Err(ViewError::NotAnObject("number"))
        ));
        assert!(matches!(
            ObjectView::parse("{\"a\": "),
            Err(ViewError::Malformed(_))
        ));
        assert!(matches!(
            ObjectView::parse("nope"),
            Err(ViewError::Malformed(_))
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        // serde_json skips raw values iteratively: no stack overflow, whatever the depth.
        // The depth limit itself is `depth_exceeds`'s job.
        let _ = ObjectView::parse(&deep);
        assert!(depth_exceeds(deep.as_bytes(), 64));
        assert!(!depth_exceeds(br#"{"a":"[[[[[[[[", "b":[[1]]}"#, 3));
        assert!(depth_exceeds(br#"{"b":[[[1]]]}"#, 3));
    }
}
