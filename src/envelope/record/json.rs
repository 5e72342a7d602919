//! Avro's JSON encoding (what Pub/Sub checks on a JSON topic) rewritten as our JSON: unions
//! unwrapped, bytes as base64, logical types as for binary.

use super::read::Writer;
use super::schema::Node;
use super::values::{date, decimal, duration, latin1, time_of_day, timestamp, uuid_of};
use super::{Fault, bad};

impl Writer<'_> {
    /// Writes `v`, a value of node `n` in Avro's JSON encoding, in our JSON.
    pub(super) fn json(
        &mut self,
        n: usize,
        v: &serde_json::Value,
        depth: usize,
    ) -> Result<(), Fault> {
        use serde_json::Value as J;
        let nodes = self.nodes;
        match (&nodes[n], v) {
            (Node::Array(items), J::Array(a)) => {
                let (items, depth) = (*items, self.descend(depth)?);
                self.raw(b"[")?;
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.raw(b",")?;
                    }
                    self.json(items, x, depth)?;
                }
                self.raw(b"]")
            }
            (Node::Map(values), J::Object(m)) => {
                let (values, depth) = (*values, self.descend(depth)?);
                self.raw(b"{")?;
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        self.raw(b",")?;
                    }
                    self.string(k)?;
                    self.raw(b":")?;
                    self.json(values, x, depth)?;
                }
                self.raw(b"}")
            }
            (Node::Union(branches), J::Null) => {
                if branches.iter().any(|(name, _)| name == "null") {
                    self.raw(b"null")
                } else {
                    Err(bad("null for a union without a null branch"))
                }
            }
            (Node::Union(branches), J::Object(m)) if m.len() == 1 => {
                let (name, x) = m.iter().next().expect("one member");
                let b = branches
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| bad(format!("`{name}` is not a branch of the union")))?
                    .1;
                self.json(b, x, depth)
            }
            (Node::Record(fields), J::Object(m)) => self.record(fields, depth, |w, f, depth| {
                let x = m
                    .get(&f.name)
                    .ok_or_else(|| bad(format!("field `{}` is missing", f.name)))?;
                w.json(f.node, x, depth)
            }),
            (node, v) => {
                if matches!(node, Node::Duration) {
                    // Written as an object: one level of nesting, as the parse counts it.
                    self.descend(depth)?;
                }
                self.json_leaf(node, v)
            }
        }
    }

    /// A value that holds no other: a primitive, an enum, a logical type.
    fn json_leaf(&mut self, node: &Node, v: &serde_json::Value) -> Result<(), Fault> {
        use serde_json::Value as J;
        match (node, v) {
            (Node::Null, J::Null) => self.raw(b"null"),
            (Node::Boolean, J::Bool(b)) => self.raw(if *b { b"true" } else { b"false" }),
            (Node::Int, J::Number(x)) if x.as_i64().is_some_and(|v| i32::try_from(v).is_ok()) => {
                self.number(x)
            }
            (Node::Long, J::Number(x)) if x.is_i64() => self.number(x),
            (Node::Float | Node::Double, J::Number(x)) => self.number(x),
            (Node::Float | Node::Double, J::String(s))
                if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") =>
            {
                self.string(s)
            }
            (Node::Bytes | Node::Fixed(_), J::String(s)) => {
                let b = latin1(s)?;
                if let Node::Fixed(size) = *node
                    && b.len() != size
                {
                    return Err(bad(format!("fixed of {size} bytes holds {}", b.len())));
                }
                self.base64(&b)
            }
            (Node::String | Node::UuidString, J::String(s)) => self.string(s),
            (Node::UuidBytes(_), J::String(s)) => {
                let u = uuid_of(&latin1(s)?)?;
                self.string(&u)
            }
            (Node::Enum(symbols), J::String(s)) => {
                if !symbols.contains(s) {
                    return Err(bad(format!("`{s}` is not a symbol of the enum")));
                }
                self.string(s)
            }
            (Node::Date, J::Number(x)) => {
                let d = x
                    .as_i64()
                    .ok_or_else(|| bad("a date that is not an integer"))?;
                self.string(&date(d)?)
            }
            (Node::TimeMillis, J::Number(x)) => {
                let ms = x
                    .as_i64()
                    .ok_or_else(|| bad("a time that is not an integer"))?;
                let us = ms
                    .checked_mul(1_000)
                    .ok_or_else(|| bad("a time of day out of range"))?;
                self.string(&time_of_day(us)?)
            }
            (Node::TimeMicros, J::Number(x)) => {
                let us = x
                    .as_i64()
                    .ok_or_else(|| bad("a time that is not an integer"))?;
                self.string(&time_of_day(us)?)
            }
            (Node::Timestamp { unit, local }, J::Number(x)) => {
                let (unit, local) = (*unit, *local);
                let t = x
                    .as_i64()
                    .ok_or_else(|| bad("a timestamp that is not an integer"))?;
                self.string(&timestamp(t, unit, local)?)
            }
            (Node::Decimal { scale, .. }, J::String(s)) => {
                let scale = *scale;
                self.string(&decimal(&latin1(s)?, scale)?)
            }
            (Node::Duration, J::String(s)) => self.raw(duration(&latin1(s)?)?.as_bytes()),
            (node, v) => Err(bad(format!(
                "expected {}, found {}",
                node_name(node),
                kind(v)
            ))),
        }
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}

fn node_name(n: &Node) -> &'static str {
    match n {
        Node::Null => "null",
        Node::Boolean => "a boolean",
        Node::Int | Node::Long => "an integer",
        Node::Float | Node::Double => "a number",
        Node::Bytes | Node::Fixed(_) | Node::UuidBytes(_) | Node::Decimal { .. } => {
            "a string of bytes"
        }
        Node::String | Node::UuidString | Node::Enum(_) => "a string",
        Node::Array(_) => "an array",
        Node::Map(_) | Node::Record(_) | Node::Duration => "an object",
        Node::Union(_) => "null or a one-member object naming a branch",
        Node::Date | Node::TimeMillis | Node::TimeMicros | Node::Timestamp { .. } => "an integer",
    }
}
