//! A Protocol Buffer message type compiled for reading its binary encoding straight into JSON
//! (`proto_read`): every message and enum it reaches, with each field's JSON key quoted once,
//! its type, cardinality and presence.
//!
//! Types the reader does not write itself (`Any`, which needs a type registry; `Struct`,
//! `Value`, `ListValue`, `FieldMask`; proto2 groups; messages with extensions) leave the plan
//! out: such a schema is read through `prost-reflect`'s dynamic message instead.

use super::read::Key;
use prost_reflect::{Kind, MessageDescriptor};
use std::collections::HashMap;

/// Every message and enum one message type reaches.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) messages: Vec<MessagePlan>,
    pub(super) enums: Vec<EnumPlan>,
}

#[derive(Debug)]
pub(super) struct MessagePlan {
    pub(super) special: Special,
    pub(super) fields: Vec<FieldPlan>,
    /// Field number → index in `fields`: directly for numbers up to `DENSE_NUMBERS` (most),
    /// hashed beyond.
    dense: Vec<u32>,
    sparse: HashMap<u32, u32>,
    /// How many real (not synthetic) oneofs the message has.
    pub(super) oneofs: usize,
    /// Every key is written as its name is, without an escape: where each member of the
    /// record's own object lies can be handed to the envelope.
    pub(super) plain_keys: bool,
}

impl MessagePlan {
    /// The index in `fields` of field `number`. Inlined (once per field read), the rare
    /// large numbers out of line.
    #[inline]
    pub(super) fn field(&self, number: u32) -> Option<u32> {
        match self.dense.get(number as usize) {
            Some(&i) => (i != u32::MAX).then_some(i),
            None => self.sparse_field(number),
        }
    }

    #[cold]
    fn sparse_field(&self, number: u32) -> Option<u32> {
        self.sparse.get(&number).copied()
    }
}

/// Well-known types proto3's JSON mapping writes as something other than an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    Timestamp,
    Duration,
    /// `google.protobuf.*Value`: the wrapped value itself.
    Wrapper,
}

#[derive(Debug)]
pub(super) struct FieldPlan {
    /// `,"name":`, as the Avro reader keeps its keys.
    pub(super) key: Key,
    pub(super) kind: Scalar,
    pub(super) shape: Shape,
    /// The real oneof this field is a member of.
    pub(super) oneof: Option<u32>,
    /// The one-byte tag encoders write for this field (field numbers 1 to 15, with the wire
    /// type of a single value, or of a packed array for a repeated number), or `NO_TAG`: the
    /// reader checks the next field it expects against it before decoding a tag.
    pub(super) tag: u16,
}

/// No one-byte tag (a byte read is never equal to it).
const NO_TAG: u16 = u16::MAX;

impl FieldPlan {
    /// The name as written between the key's quotes (a proto field name needs no escape).
    pub(super) fn name(&self) -> &[u8] {
        let key = self.key.text();
        &key[2..key.len() - 2]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    Enum(u32),
    Message(u32),
}

impl Scalar {
    /// The wire type a single value of this type has.
    pub(super) fn wire(self) -> u8 {
        match self {
            Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => 1,
            Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => 5,
            Scalar::String | Scalar::Bytes | Scalar::Message(_) => 2,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// `presence`: absent, the field is left out (message fields, oneof members, `optional`,
    /// proto2); otherwise its default is written.
    Single {
        presence: bool,
    },
    Repeated,
    Map {
        key: Scalar,
        value: Scalar,
    },
}

#[derive(Debug)]
pub(super) struct EnumPlan {
    /// `google.protobuf.NullValue`: written as `null`.
    pub(super) null: bool,
    pub(super) default: i32,
    /// Each number's name, quoted (the first name of an aliased number).
    pub(super) names: HashMap<i32, Box<[u8]>>,
}

/// Field numbers looked up in a table rather than hashed.
const DENSE_NUMBERS: u32 = 1024;

const WRAPPERS: [&str; 9] = [
    "DoubleValue",
    "FloatValue",
    "Int64Value",
    "UInt64Value",
    "Int32Value",
    "UInt32Value",
    "BoolValue",
    "StringValue",
    "BytesValue",
];

/// The plan of `root` (index 0), or `None` when it reaches a type only the dynamic message
/// reads.
pub(super) fn compile(root: &MessageDescriptor) -> Option<Plan> {
    let mut c = Compiler {
        plan: Plan {
            messages: Vec::new(),
            enums: Vec::new(),
        },
        messages: HashMap::new(),
        enums: HashMap::new(),
    };
    c.message(root)?;
    Some(c.plan)
}

struct Compiler {
    plan: Plan,
    messages: HashMap<String, u32>,
    enums: HashMap<String, u32>,
}

impl Compiler {
    fn message(&mut self, m: &MessageDescriptor) -> Option<u32> {
        if let Some(&at) = self.messages.get(m.full_name()) {
            return Some(at);
        }
        let special = match m.full_name().strip_prefix("google.protobuf.") {
            Some("Timestamp") => Special::Timestamp,
            Some("Duration") => Special::Duration,
            Some(w) if WRAPPERS.contains(&w) => Special::Wrapper,
            Some("Any" | "Struct" | "Value" | "ListValue" | "FieldMask") => return None,
            _ => Special::None,
        };
        if m.extensions().next().is_some() {
            return None;
        }
        let at = u32::try_from(self.plan.messages.len()).ok()?;
        self.messages.insert(m.full_name().to_string(), at);
        self.plan.messages.push(MessagePlan {
            special,
            fields: Vec::new(),
            dense: Vec::new(),
            sparse: HashMap::new(),
            oneofs: 0,
            plain_keys: true,
        });
        let real_oneofs: Vec<String> = m
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .map(|o| o.name().to_string())
            .collect();
        let mut fields = Vec::new();
        let mut plain_keys = true;
        let (mut dense, mut sparse) = (Vec::new(), HashMap::new());
        for f in m.fields() {
            if f.is_group() {
                return None;
            }
            let (shape, kind) = self.shape(&f)?;
            let oneof = f
                .containing_oneof()
                .filter(|o| !o.is_synthetic())
                .and_then(|o| real_oneofs.iter().position(|n| n == o.name()))
                .and_then(|i| u32::try_from(i).ok());
            let key = Key::new(f.name());
            plain_keys &= key.is_plain(f.name());
            let i = u32::try_from(fields.len()).ok()?;
            if f.number() <= DENSE_NUMBERS {
                let n = f.number() as usize;
                if dense.len() <= n {
                    dense.resize(n + 1, u32::MAX);
                }
                dense[n] = i;
            } else {
                sparse.insert(f.number(), i);
            }
            let wire = match shape {
                Shape::Single { .. } => Some(kind.wire()),
                // Each message or string is length-delimited, and proto3 packs repeated
                // numbers by default (as most encoders write them).
                Shape::Repeated => Some(2),
                Shape::Map { .. } => None,
            };
            let tag = match wire {
                Some(wire) if f.number() < 16 => (f.number() << 3) as u16 | u16::from(wire),
                _ => NO_TAG,
            };
            fields.push(FieldPlan {
                tag,
                key,
                kind,
                shape,
                oneof,
            });
        }
        let plan = &mut self.plan.messages[at as usize];
        plan.fields = fields;
        plan.dense = dense;
        plan.sparse = sparse;
        plan.oneofs = real_oneofs.len();
        plan.plain_keys = plain_keys;
        Some(at)
    }

    /// A field's cardinality, and the type of its values (of a map: its values').
    fn shape(&mut self, f: &prost_reflect::FieldDescriptor) -> Option<(Shape, Scalar)> {
        if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                return None;
            };
            let key = self.scalar(&entry.map_entry_key_field().kind())?;
            let value = self.scalar(&entry.map_entry_value_field().kind())?;
            return Some((Shape::Map { key, value }, value));
        }
        let shape = if f.is_list() {
            Shape::Repeated
        } else {
            Shape::Single {
                presence: f.supports_presence(),
            }
        };
        Some((shape, self.scalar(&f.kind())?))
    }

    fn scalar(&mut self, kind: &Kind) -> Option<Scalar> {
        Some(match kind {
            Kind::Double => Scalar::Double,
            Kind::Float => Scalar::Float,
            Kind::Int32 => Scalar::Int32,
            Kind::Int64 => Scalar::Int64,
            Kind::Uint32 => Scalar::Uint32,
            Kind::Uint64 => Scalar::Uint64,
            Kind::Sint32 => Scalar::Sint32,
            Kind::Sint64 => Scalar::Sint64,
            Kind::Fixed32 => Scalar::Fixed32,
            Kind::Fixed64 => Scalar::Fixed64,
            Kind::Sfixed32 => Scalar::Sfixed32,
            Kind::Sfixed64 => Scalar::Sfixed64,
            Kind::Bool => Scalar::Bool,
            Kind::String => Scalar::String,
            Kind::Bytes => Scalar::Bytes,
            Kind::Message(m) => Scalar::Message(self.message(m)?),
            Kind::Enum(e) => {
                if let Some(&at) = self.enums.get(e.full_name()) {
                    return Some(Scalar::Enum(at));
                }
                let at = u32::try_from(self.plan.enums.len()).ok()?;
                // Each number's name as the reference printer finds it (`get_value`: with
                // aliases, not necessarily the first declared).
                let mut names = HashMap::new();
                for v in e.values() {
                    let number = v.number();
                    let name = e.get_value(number).unwrap_or(v);
                    names.insert(
                        number,
                        serde_json::to_vec(name.name())
                            .ok()
                            .map(Vec::into_boxed_slice),
                    );
                }
                self.enums.insert(e.full_name().to_string(), at);
                self.plan.enums.push(EnumPlan {
                    null: e.full_name() == "google.protobuf.NullValue",
                    default: e.default_value().number(),
                    names: names
                        .into_iter()
                        .map(|(n, v)| v.map(|v| (n, v)))
                        .collect::<Option<_>>()?,
                });
                Scalar::Enum(at)
            }
        })
    }
}
