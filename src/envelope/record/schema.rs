//! An Avro schema compiled into a flat list of nodes: named types resolved once, recursion
//! pointing back to the record it is in.

use super::read::Key;
use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub(super) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Vec<String>),
    Array(usize),
    Map(usize),
    /// Branches: (name in Avro JSON, node).
    Union(Vec<(String, usize)>),
    Record(Vec<Field>),
    Date,
    TimeMillis,
    TimeMicros,
    Timestamp {
        unit: i64,
        local: bool,
    },
    /// Scale; the unscaled value as `bytes` or as `fixed` of this size.
    Decimal {
        scale: u32,
        fixed: Option<usize>,
    },
    UuidString,
    UuidBytes(Option<usize>),
    Duration,
}

/// A record's field.
#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) name: String,
    /// The name as the JSON member key it is written as: written once per record read, so
    /// quoted once here.
    pub(super) key: Key,
    /// The key needs no escape: its text in the output is the name.
    pub(super) plain: bool,
    pub(super) node: usize,
}

impl Field {
    fn new(name: &str, node: usize) -> Field {
        let key = Key::new(name);
        Field {
            plain: key.is_plain(name),
            name: name.to_string(),
            key,
            node,
        }
    }
}

pub(super) struct Compiler<'a> {
    pub(super) nodes: Vec<Node>,
    /// Named types already compiled (or being compiled: recursion points back to them).
    pub(super) named: HashMap<String, usize>,
    pub(super) names: &'a HashMap<String, &'a Schema>,
}

impl Compiler<'_> {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    pub(super) fn compile(&mut self, schema: &Schema) -> Result<usize, String> {
        if let Some(leaf) = leaf(schema)? {
            return Ok(self.push(leaf));
        }
        Ok(match schema {
            Schema::Fixed(f) => {
                self.named(&f.name.fullname(None), |c| Ok(c.push(Node::Fixed(f.size))))?
            }
            Schema::Enum(e) => self.named(&e.name.fullname(None), |c| {
                Ok(c.push(Node::Enum(e.symbols.clone())))
            })?,
            Schema::Array(a) => {
                let at = self.push(Node::Null);
                let items = self.compile(&a.items)?;
                self.nodes[at] = Node::Array(items);
                at
            }
            Schema::Map(m) => {
                let at = self.push(Node::Null);
                let values = self.compile(&m.types)?;
                self.nodes[at] = Node::Map(values);
                at
            }
            Schema::Union(u) => {
                let at = self.push(Node::Null);
                let mut branches = Vec::new();
                for s in u.variants() {
                    branches.push((branch_name(s), self.compile(s)?));
                }
                self.nodes[at] = Node::Union(branches);
                at
            }
            Schema::Record(r) => {
                let name = r.name.fullname(None);
                if let Some(&at) = self.named.get(&name) {
                    return Ok(at);
                }
                let at = self.push(Node::Null);
                self.named.insert(name, at);
                let mut fields = Vec::new();
                for f in &r.fields {
                    let node = self.compile(&f.schema)?;
                    fields.push(Field::new(&f.name, node));
                }
                self.nodes[at] = Node::Record(fields);
                at
            }
            Schema::Ref { name } => {
                let full = name.fullname(None);
                if let Some(&at) = self.named.get(&full) {
                    return Ok(at);
                }
                let target = *self
                    .names
                    .get(&full)
                    .ok_or_else(|| format!("unknown named type `{full}`"))?;
                self.compile(target)?
            }
            _ => unreachable!("`leaf` compiles every other schema"),
        })
    }

    fn named(
        &mut self,
        name: &str,
        build: impl FnOnce(&mut Self) -> Result<usize, String>,
    ) -> Result<usize, String> {
        if let Some(&at) = self.named.get(name) {
            return Ok(at);
        }
        let at = build(self)?;
        self.named.insert(name.to_string(), at);
        Ok(at)
    }
}

/// The node of a schema that holds no other (a primitive or a logical type); `None` for
/// the others.
fn leaf(schema: &Schema) -> Result<Option<Node>, String> {
    Ok(Some(match schema {
        Schema::Null => Node::Null,
        Schema::Boolean => Node::Boolean,
        Schema::Int => Node::Int,
        Schema::Long => Node::Long,
        Schema::Float => Node::Float,
        Schema::Double => Node::Double,
        Schema::Bytes => Node::Bytes,
        Schema::String => Node::String,
        Schema::Date => Node::Date,
        Schema::TimeMillis => Node::TimeMillis,
        Schema::TimeMicros => Node::TimeMicros,
        Schema::TimestampMillis => Node::Timestamp {
            unit: 1_000_000,
            local: false,
        },
        Schema::TimestampMicros => Node::Timestamp {
            unit: 1_000,
            local: false,
        },
        Schema::TimestampNanos => Node::Timestamp {
            unit: 1,
            local: false,
        },
        Schema::LocalTimestampMillis => Node::Timestamp {
            unit: 1_000_000,
            local: true,
        },
        Schema::LocalTimestampMicros => Node::Timestamp {
            unit: 1_000,
            local: true,
        },
        Schema::LocalTimestampNanos => Node::Timestamp {
            unit: 1,
            local: true,
        },
        Schema::Uuid(UuidSchema::String) => Node::UuidString,
        Schema::Uuid(UuidSchema::Bytes) => Node::UuidBytes(None),
        Schema::Uuid(UuidSchema::Fixed(f)) => Node::UuidBytes(Some(f.size)),
        Schema::Decimal(d) => {
            let fixed = match &d.inner {
                InnerDecimalSchema::Fixed(f) => Some(f.size),
                InnerDecimalSchema::Bytes => None,
            };
            let scale = u32::try_from(d.scale).map_err(|_| "decimal scale too large")?;
            Node::Decimal { scale, fixed }
        }
        Schema::BigDecimal => {
            return Err("the big-decimal logical type is not supported".into());
        }
        Schema::Duration(_) => Node::Duration,
        _ => return Ok(None),
    }))
}

/// A union branch's name in Avro's JSON encoding: the type's name, a named type's full name.
fn branch_name(s: &Schema) -> String {
    match s {
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) | Schema::Duration(f) => f.name.fullname(None),
        Schema::Ref { name } => name.fullname(None),
        Schema::Decimal(d) => match &d.inner {
            InnerDecimalSchema::Fixed(f) => f.name.fullname(None),
            InnerDecimalSchema::Bytes => "bytes".into(),
        },
        Schema::Uuid(UuidSchema::Fixed(f)) => f.name.fullname(None),
        Schema::Uuid(UuidSchema::Bytes) => "bytes".into(),
        Schema::Uuid(UuidSchema::String) => "string".into(),
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes | Schema::BigDecimal => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
    }
}
