//! Our JSON written as Avro, binary or JSON-encoded, as a producer publishes it (`publish`,
//! the tests): the inverse of [`read`](super::read) and [`json`](super::json).

use super::read::Input;
use super::schema::Node;
use base64::Engine as _;

/// Writes our JSON as Avro (the inverse of [`Writer`]).
pub(super) struct Encoder<'a> {
    pub(super) nodes: &'a [Node],
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

impl Encoder<'_> {
    /// Whether `v` fits node `n` (to pick a union's branch).
    fn fits(&self, n: usize, v: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        matches!(
            (&self.nodes[n], v),
            (Node::Null, J::Null)
                | (Node::Boolean, J::Bool(_))
                | (Node::Int | Node::Long, J::Number(_))
                | (Node::Float | Node::Double, J::Number(_))
                | (
                    Node::String
                        | Node::Bytes
                        | Node::Fixed(_)
                        | Node::Enum(_)
                        | Node::UuidString
                        | Node::UuidBytes(_)
                        | Node::Date
                        | Node::TimeMillis
                        | Node::TimeMicros
                        | Node::Timestamp { .. }
                        | Node::Decimal { .. },
                    J::String(_)
                )
                | (Node::Array(_), J::Array(_))
                | (
                    Node::Map(_) | Node::Record(_) | Node::Duration,
                    J::Object(_)
                )
        ) || matches!(&self.nodes[n], Node::Union(b) if b.iter().any(|(_, x)| self.fits(*x, v)))
    }

    fn branch(&self, branches: &[(String, usize)], v: &serde_json::Value) -> Result<usize, String> {
        branches
            .iter()
            .position(|(_, b)| self.fits(*b, v))
            .ok_or_else(|| format!("no branch of the union takes {v}"))
    }

    pub(super) fn binary(
        &self,
        n: usize,
        v: &serde_json::Value,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        use serde_json::Value as J;
        match &self.nodes[n] {
            Node::Array(items) => {
                let a = v.as_array().ok_or_else(|| format!("{v} is not an array"))?;
                if !a.is_empty() {
                    zigzag(a.len() as i64, out);
                    for x in a {
                        self.binary(*items, x, out)?;
                    }
                }
                out.push(0);
                Ok(())
            }
            Node::Map(values) => {
                let m = v
                    .as_object()
                    .ok_or_else(|| format!("{v} is not an object"))?;
                if !m.is_empty() {
                    zigzag(m.len() as i64, out);
                    for (k, x) in m {
                        bytes(k.as_bytes(), out);
                        self.binary(*values, x, out)?;
                    }
                }
                out.push(0);
                Ok(())
            }
            Node::Union(branches) => {
                let i = self.branch(branches, v)?;
                zigzag(i as i64, out);
                self.binary(branches[i].1, v, out)
            }
            Node::Record(fields) => {
                let m = v
                    .as_object()
                    .ok_or_else(|| format!("{v} is not an object"))?;
                for f in fields {
                    let x = m.get(&f.name).unwrap_or(&J::Null);
                    self.binary(f.node, x, out)
                        .map_err(|e| format!("{}: {e}", f.name))?;
                }
                Ok(())
            }
            node => binary_leaf(node, v, out),
        }
    }

    /// Our JSON as Avro's JSON encoding: through binary and back is the one honest way to
    /// get every logical type right, so wrap only what differs: unions and bytes.
    pub(super) fn avro_json(
        &self,
        n: usize,
        v: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        let latin1 = |b: Vec<u8>| J::String(b.into_iter().map(char::from).collect());
        Ok(match &self.nodes[n] {
            Node::Union(branches) => {
                let i = self.branch(branches, v)?;
                let (name, b) = &branches[i];
                if matches!(self.nodes[*b], Node::Null) {
                    J::Null
                } else {
                    serde_json::json!({ name: self.avro_json(*b, v)? })
                }
            }
            Node::Record(fields) => {
                let m = v
                    .as_object()
                    .ok_or_else(|| format!("{v} is not an object"))?;
                let mut o = serde_json::Map::new();
                for f in fields {
                    o.insert(
                        f.name.clone(),
                        self.avro_json(f.node, m.get(&f.name).unwrap_or(&J::Null))?,
                    );
                }
                J::Object(o)
            }
            Node::Array(items) => J::Array(
                v.as_array()
                    .ok_or_else(|| format!("{v} is not an array"))?
                    .iter()
                    .map(|x| self.avro_json(*items, x))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(values) => J::Object(
                v.as_object()
                    .ok_or_else(|| format!("{v} is not an object"))?
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), self.avro_json(*values, x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Node::Bytes | Node::Fixed(_) => latin1(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().ok_or_else(|| format!("{v} is not a string"))?)
                    .map_err(|e| format!("not base64: {e}"))?,
            ),
            // Logical types: their Avro JSON is their underlying value, as binary holds it.
            Node::Date
            | Node::TimeMillis
            | Node::TimeMicros
            | Node::Timestamp { .. }
            | Node::Decimal { .. }
            | Node::UuidBytes(_)
            | Node::Duration => {
                let mut out = Vec::new();
                self.binary(n, v, &mut out)?;
                let mut input = Input { body: &out, at: 0 };
                match self.nodes[n] {
                    Node::Date | Node::TimeMillis => J::from(input.int().map_err(|_| "int")?),
                    Node::TimeMicros | Node::Timestamp { .. } => {
                        J::from(input.long().map_err(|_| "long")?)
                    }
                    Node::Decimal { fixed: None, .. } | Node::UuidBytes(None) => {
                        let len = input.len().map_err(|_| "len")?;
                        latin1(input.take(len).map_err(|_| "bytes")?.to_vec())
                    }
                    _ => latin1(out),
                }
            }
            _ => v.clone(),
        })
    }
}

fn int(v: &serde_json::Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("{v} is not an integer"))
}

fn text(v: &serde_json::Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{v} is not a string"))
}

fn b64(v: &serde_json::Value) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text(v)?)
        .map_err(|e| format!("not base64: {e}"))
}

/// Avro `bytes`: a length, then the bytes.
fn bytes(b: &[u8], out: &mut Vec<u8>) {
    zigzag(b.len() as i64, out);
    out.extend_from_slice(b);
}

/// A value that holds no other: a primitive or an enum (logical types: [`binary_logical`]).
fn binary_leaf(node: &Node, v: &serde_json::Value, out: &mut Vec<u8>) -> Result<(), String> {
    match node {
        Node::Null => Ok(()),
        Node::Boolean => {
            out.push(u8::from(
                v.as_bool().ok_or_else(|| format!("{v} is not a boolean"))?,
            ));
            Ok(())
        }
        Node::Int | Node::Long => {
            zigzag(int(v)?, out);
            Ok(())
        }
        Node::Float => {
            let f = v.as_f64().ok_or_else(|| format!("{v} is not a number"))?;
            out.extend_from_slice(&(f as f32).to_le_bytes());
            Ok(())
        }
        Node::Double => {
            let f = v.as_f64().ok_or_else(|| format!("{v} is not a number"))?;
            out.extend_from_slice(&f.to_le_bytes());
            Ok(())
        }
        Node::Bytes => {
            bytes(&b64(v)?, out);
            Ok(())
        }
        Node::Fixed(_) => {
            out.extend_from_slice(&b64(v)?);
            Ok(())
        }
        Node::String | Node::UuidString => {
            bytes(text(v)?.as_bytes(), out);
            Ok(())
        }
        Node::UuidBytes(size) => {
            let u = apache_avro::Uuid::parse_str(&text(v)?).map_err(|e| e.to_string())?;
            match size {
                Some(_) => out.extend_from_slice(u.as_bytes()),
                None => bytes(u.as_bytes(), out),
            }
            Ok(())
        }
        Node::Enum(symbols) => {
            let s = text(v)?;
            let i = symbols
                .iter()
                .position(|x| *x == s)
                .ok_or_else(|| format!("`{s}` is not a symbol of the enum"))?;
            zigzag(i as i64, out);
            Ok(())
        }
        node => binary_logical(node, v, out),
    }
}

/// A logical type's value, from the text our JSON writes it as.
fn binary_logical(node: &Node, v: &serde_json::Value, out: &mut Vec<u8>) -> Result<(), String> {
    use serde_json::Value as J;
    match node {
        Node::Date => {
            let d = time::Date::parse(
                &text(v)?,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|e| e.to_string())?;
            zigzag(i64::from(d.to_julian_day() - 2_440_588), out);
            Ok(())
        }
        Node::TimeMillis | Node::TimeMicros => {
            let t = time::Time::parse(
                &text(v)?,
                time::macros::format_description!("[hour]:[minute]:[second].[subsecond]"),
            )
            .map_err(|e| e.to_string())?;
            let us =
                (i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second()))
                    * 1_000_000
                    + i64::from(t.microsecond());
            let divisor = if matches!(node, Node::TimeMillis) {
                1_000
            } else {
                1
            };
            zigzag(us / divisor, out);
            Ok(())
        }
        Node::Timestamp { unit, local } => {
            let s = text(v)?;
            let s = if *local { format!("{s}Z") } else { s };
            let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| e.to_string())?;
            let units = t.unix_timestamp_nanos() / i128::from(*unit);
            zigzag(
                i64::try_from(units).map_err(|_| "timestamp out of range")?,
                out,
            );
            Ok(())
        }
        Node::Decimal { scale, fixed } => {
            let b = decimal_bytes(&text(v)?, *scale as usize, *fixed)?;
            match fixed {
                Some(_) => out.extend_from_slice(&b),
                None => bytes(&b, out),
            }
            Ok(())
        }
        Node::Duration => {
            for k in ["months", "days", "milliseconds"] {
                let x = v
                    .get(k)
                    .and_then(J::as_u64)
                    .ok_or_else(|| format!("duration needs {k}"))?;
                out.extend_from_slice(
                    &(u32::try_from(x).map_err(|_| "duration part too large")?).to_le_bytes(),
                );
            }
            Ok(())
        }
        _ => unreachable!("every other node is written by `binary` or `binary_leaf`"),
    }
}

/// A decimal's unscaled value, big-endian two's complement: `fixed` bytes (refused if it
/// does not fit), or the fewest.
fn decimal_bytes(s: &str, scale: usize, fixed: Option<usize>) -> Result<Vec<u8>, String> {
    let (int_part, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > scale {
        return Err(format!("{s} has more than {scale} decimals"));
    }
    let digits = format!("{int_part}{frac:0<scale$}");
    let unscaled: i128 = digits
        .parse()
        .map_err(|_| format!("{s} is not a decimal"))?;
    let be = unscaled.to_be_bytes();
    // The shortest two's-complement form, then sign-extended to a `fixed` size.
    let skip = be
        .windows(2)
        .take_while(|w| (w[0] == 0 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0))
        .count();
    let shortest = &be[skip..];
    match fixed {
        None => Ok(shortest.to_vec()),
        Some(size) if shortest.len() > size => Err(format!("{s} does not fit {size} bytes")),
        Some(size) => {
            let sign = if unscaled < 0 { 0xff } else { 0 };
            let mut out = vec![sign; size - shortest.len()];
            out.extend_from_slice(shortest);
            Ok(out)
        }
    }
}
