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

/// The members of one JSON object, keys unescaped, values as raw JSON text.
pub struct ObjectView<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> ObjectView<'a> {
    /// Views `text` as an object. Validates the whole text as JSON in the same pass.
    pub fn parse(text: &'a str) -> Result<ObjectView<'a>, ViewError> {
        match serde_json::from_str::<Members<'a>>(text) {
            Ok(Members(members)) => Ok(ObjectView { members }),
            Err(e) => Err(classify(text, e)),
        }
    }

    /// The raw value of `key`; with duplicate keys the last wins, as in most JSON readers.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// Follows a dotted path; `Ok(None)` when a member is absent or an intermediate value is
    /// `null`; an error when an intermediate value is not an object.
    pub fn lookup(&self, path: &[String]) -> Result<Option<&'a RawValue>, String> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(None);
        };
        let Some(mut value) = self.get(first) else {
            return Ok(None);
        };
        for (i, key) in rest.iter().enumerate() {
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
            // Already validated as part of the enclosing document, so this cannot fail.
            let inner = ObjectView::parse(value.get()).map_err(|_| "unreadable object")?;
            match inner.get(key) {
                Some(v) => value = v,
                None => return Ok(None),
            }
        }
        Ok(Some(value))
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
            return ViewError::NotAnObject(json_type(raw));
        }
    }
    ViewError::Malformed(e)
}

/// The JSON type of a raw value, from its first byte.
pub fn json_type(v: &RawValue) -> &'static str {
    match v.get().as_bytes().first() {
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
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                // Jump through the string with memchr: payload bytes are mostly string
                // contents, and a byte-at-a-time loop here cost several times a JSON parse.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &text[i..]) {
                        // Unterminated: not our call, the parser rejects it.
                        None => return false,
                        Some(j) if text[i + j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j + 1;
                            break;
                        }
                    }
                    if i >= text.len() {
                        return false;
                    }
                }
                continue;
            }
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

struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            members.push((k, v));
        }
        Ok(Members(members))
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
        assert_eq!(v.get("a").unwrap().get(), "1");
        assert_eq!(v.get("esc").unwrap().get(), "true");
        let path = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(v.lookup(&path("p.id")).unwrap().unwrap().get(), r#""x""#);
        assert_eq!(v.lookup(&path("p.n.k")).unwrap().unwrap().get(), "[1,2]");
        assert!(v.lookup(&path("p.missing")).unwrap().is_none());
        assert!(
            v.lookup(&path("a.b"))
                .unwrap_err()
                .contains("`a` is a number")
        );
    }

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
