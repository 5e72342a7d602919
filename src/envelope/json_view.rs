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

/// The members of one JSON object, keys unescaped, values as raw JSON text (already
/// validated by the parse that produced them).
pub struct ObjectView<'a> {
    members: Vec<Member<'a>>,
    /// One member of a member that is itself an object, read in the same parse (see
    /// [`ObjectView::parse_with_inner`]): the outer member's index in `members`, the inner
    /// member's name, and its value (`None`: absent).
    inner: Option<(usize, &'a str, Option<&'a str>)>,
}

type Member<'a> = (Cow<'a, str>, &'a str);

impl<'a> ObjectView<'a> {
    /// Views `text` as an object. Validates the whole text as JSON in the same pass.
    pub fn parse(text: &'a str) -> Result<ObjectView<'a>, ViewError> {
        Self::parse_with_inner(text, None)
    }

    /// [`parse`](Self::parse), also reading member `inner.1` of member `inner.0` when that
    /// is an object: the object id usually sits one level down (`payload.order_id`), and
    /// reading it during the one parse costs next to nothing, where finding it afterwards
    /// meant walking the payload a second time. When the outer member cannot be placed in
    /// `text` (an escaped first key, an empty object, not an object at all) the view is
    /// parsed again without it: rare inputs, same answer.
    pub fn parse_with_inner(
        text: &'a str,
        inner: Option<(&str, &'a str)>,
    ) -> Result<ObjectView<'a>, ViewError> {
        let inner_key = inner.map_or("", |(_, key)| key);
        let seed = MembersSeed { text, inner };
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = de::DeserializeSeed::deserialize(seed, &mut de).and_then(|m| {
            de.end()?;
            Ok(m)
        });
        match parsed {
            Ok(Members {
                members,
                inner,
                redo: false,
            }) => Ok(ObjectView {
                members,
                inner: inner.map(|(at, value)| (at, inner_key, value)),
            }),
            Ok(_) => Self::parse_with_inner(text, None),
            Err(e) => Err(classify(text, e)),
        }
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
                // Already validated as part of the enclosing document, so this cannot fail.
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

struct Members<'a> {
    members: Vec<Member<'a>>,
    /// The last outer member's index, and its inner member's value.
    inner: Option<(usize, Option<&'a str>)>,
    /// An outer member could not be placed in the text: parse again without reading inside.
    redo: bool,
}

/// Parses an object's members; `inner` names the member of a member to read too.
struct MembersSeed<'a, 's> {
    text: &'a str,
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
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        let mut inner = None;
        let mut redo = false;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if let Some((outer, key)) = self.inner
                && k == outer
            {
                let read = map.next_value_seed(InnerSeed { key })?;
                let span = read.as_ref().and_then(|r| r.span(self.text));
                inner = Some((members.len(), read.and_then(|r| r.value)));
                redo |= span.is_none();
                // A placeholder where the object could not be placed: never seen, as the
                // text is then parsed again.
                members.push((k, span.unwrap_or("null")));
                continue;
            }
            let v: &'de RawValue = map.next_value()?;
            members.push((k, v.get()));
        }
        Ok(Members {
            members,
            inner,
            redo,
        })
    }
}

/// Reads one member of an object; any other value is consumed and reported as `None`.
struct InnerSeed<'s> {
    key: &'s str,
}

/// What [`InnerSeed`] read of an object.
struct InnerRead<'a> {
    /// The first key, when it was borrowed from the text (no escapes).
    first_key: Option<&'a str>,
    /// The last member's value.
    last_value: Option<&'a str>,
    /// The wanted member's value, the last one of that name.
    value: Option<&'a str>,
}

impl<'a> InnerRead<'a> {
    /// The object's text, from where its first key and last value sit in `text` (both
    /// borrowed from it). `None` when it cannot be placed: an escaped first key (not
    /// borrowed) or no members at all.
    fn span(&self, text: &'a str) -> Option<&'a str> {
        let offset = |s: &str| (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize);
        let (first_key, last_value) = (self.first_key?, self.last_value?);
        let b = text.as_bytes();
        // Back from the first key's opening quote over whitespace to the brace.
        let key_quote = offset(first_key)?.checked_sub(1)?;
        let start = b[..key_quote]
            .iter()
            .rposition(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))?;
        let end = skip_ws(b, offset(last_value)? + last_value.len())?;
        (b[key_quote] == b'"' && b[start] == b'{' && b[end] == b'}').then(|| &text[start..=end])
    }
}

impl<'de> de::DeserializeSeed<'de> for InnerSeed<'_> {
    type Value = Option<InnerRead<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InnerSeed<'_> {
    type Value = Option<InnerRead<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut read = InnerRead {
            first_key: None,
            last_value: None,
            value: None,
        };
        let mut first = true;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if std::mem::take(&mut first)
                && let Cow::Borrowed(k) = k
            {
                read.first_key = Some(k);
            }
            let v = map.next_value::<&'de RawValue>()?.get();
            if k == self.key {
                read.value = Some(v);
            }
            read.last_value = Some(v);
        }
        Ok(Some(read))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
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
        for text in texts {
            let plain = ObjectView::parse(text).unwrap();
            let gathered = ObjectView::parse_with_inner(text, Some(("p", "id"))).unwrap();
            for path in &paths {
                assert_eq!(gathered.lookup(path), plain.lookup(path), "{text} {path:?}");
            }
        }
        let v = ObjectView::parse_with_inner(texts[0], Some(("p", "id"))).unwrap();
        assert!(v.inner.is_some(), "the placeable case must not parse twice");
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
            members in proptest::collection::vec(
                (0usize..KEYS.len(), 0usize..VALUES.len(), 0usize..SPACES.len()),
                0..8,
            )
        ) {
            let text = format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|&(k, v, w)| format!("{w}{}{w}:{w}{}{w}", KEYS[k], VALUES[v], w = SPACES[w]))
                    .collect::<Vec<_>>()
                    .join(",")
            );
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
            let gathered = ObjectView::parse_with_inner(&outer, Some(("p", "id"))).unwrap();
            proptest::prop_assert_eq!(gathered.lookup(&path), plain.lookup(&path), "{}", outer);
            proptest::prop_assert_eq!(gathered.get("p"), Some(text.trim()), "{}", outer);
        }
    }

    const KEYS: [&str; 6] = [
        r#""id""#,
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
