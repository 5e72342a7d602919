//! The gate on a Protocol Buffer topic schema: the usual breaking rules, message by message
//! from the topic's message down (by full name), and enum by enum. Breaking: a field's number
//! reused for another name, type or cardinality; a field removed without reserving its number
//! (a later revision could reuse it); a reserved number or name used again; an enum value
//! removed without reserving it, renamed, or using a reserved number or name. A field renamed is breaking too: names are on the wire in JSON
//! encoding, and they are the keys of the payload the data product reads. Compatible: fields
//! and enum values added, a removal that reserves the number.

use super::diff::{ChangeKind, Changes};
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use std::collections::HashSet;

/// What a field is on the wire and in the payload: kind (a message's or enum's full name)
/// and cardinality.
fn shape(f: &FieldDescriptor) -> String {
    let kind = match f.kind() {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        k => format!("{k:?}").to_lowercase(),
    };
    let cardinality = if f.is_map() {
        "map"
    } else if f.is_list() {
        "repeated"
    } else if f.supports_presence() {
        "optional"
    } else {
        "singular"
    };
    format!("{cardinality} {kind}")
}

struct Walk<'a, 'c> {
    c: &'a mut Changes<'c>,
    seen: HashSet<String>,
    file: &'a str,
}

impl Walk<'_, '_> {
    fn breaking(&mut self, what: String) {
        self.c.add(
            ChangeKind::TopicSchemaIncompatible,
            "topic_schema.file",
            format!("{}: {what}", self.file),
        );
    }

    fn compatible(&mut self, what: String) {
        self.c.add(
            ChangeKind::TopicSchemaRevised,
            "topic_schema.file",
            format!("{}: {what}", self.file),
        );
    }

    fn message(&mut self, old: &MessageDescriptor, new: &MessageDescriptor) {
        if !self.seen.insert(old.full_name().to_string()) {
            return;
        }
        let name = old.full_name().to_string();
        let reserved = |m: &MessageDescriptor, n: u32| m.reserved_ranges().any(|r| r.contains(&n));
        for of in old.fields() {
            let n = of.number();
            match new.get_field(n) {
                Some(nf) if nf.name() != of.name() => self.breaking(format!(
                    "{name}: field {n} renamed from `{}` to `{}`",
                    of.name(),
                    nf.name()
                )),
                Some(nf) if shape(&nf) != shape(&of) => self.breaking(format!(
                    "{name}.{}: field {n} was {}, is {}",
                    of.name(),
                    shape(&of),
                    shape(&nf)
                )),
                Some(nf) => self.nested(&of, &nf),
                None if reserved(new, n) => self.compatible(format!(
                    "{name}.{}: field {n} removed, its number reserved",
                    of.name()
                )),
                None => self.breaking(format!(
                    "{name}.{}: field {n} removed without `reserved {n};`: a later revision could reuse the number",
                    of.name()
                )),
            }
        }
        for nf in new.fields().filter(|f| old.get_field(f.number()).is_none()) {
            let n = nf.number();
            if reserved(old, n) || old.reserved_names().any(|r| r == nf.name()) {
                self.breaking(format!(
                    "{name}.{}: field {n} uses a number or name the old schema reserved",
                    nf.name()
                ));
            } else {
                self.compatible(format!("{name}.{}: field {n} added", nf.name()));
            }
        }
    }

    /// The message or enum types of a field kept: compared in turn.
    fn nested(&mut self, of: &FieldDescriptor, nf: &FieldDescriptor) {
        match (of.kind(), nf.kind()) {
            (Kind::Message(a), Kind::Message(b)) => self.message(&a, &b),
            (Kind::Enum(a), Kind::Enum(b)) => self.enumeration(&a, &b),
            _ => {}
        }
    }

    fn enumeration(&mut self, old: &EnumDescriptor, new: &EnumDescriptor) {
        if !self.seen.insert(old.full_name().to_string()) {
            return;
        }
        let name = old.full_name().to_string();
        for ov in old.values() {
            let kept = new.values().find(|v| v.number() == ov.number());
            let reserved = new.reserved_ranges().any(|r| r.contains(&ov.number()));
            match kept {
                Some(nv) if nv.name() != ov.name() => self.breaking(format!(
                    "{name}: value {} renamed {} (names are what JSON and the payload carry)",
                    ov.number(),
                    format_args!("from {} to {}", ov.name(), nv.name())
                )),
                Some(_) => {}
                None if reserved => {}
                None => self.breaking(format!(
                    "{name}: value {} ({}) removed without reserving it",
                    ov.name(),
                    ov.number()
                )),
            }
        }
        for nv in new
            .values()
            .filter(|v| !old.values().any(|o| o.number() == v.number()))
        {
            let was_reserved = old.reserved_ranges().any(|r| r.contains(&nv.number()))
                || old.reserved_names().any(|r| r == nv.name());
            if was_reserved {
                self.breaking(format!(
                    "{name}: value {} ({}) uses a number or name the old schema reserved",
                    nv.name(),
                    nv.number()
                ));
            } else {
                self.compatible(format!(
                    "{name}: value {} ({}) added",
                    nv.name(),
                    nv.number()
                ));
            }
        }
    }
}

/// Every change from the `old` to the `new` topic message.
pub(super) fn diff(old: &MessageDescriptor, new: &MessageDescriptor, file: &str, c: &mut Changes) {
    Walk {
        c,
        seen: HashSet::new(),
        file,
    }
    .message(old, new);
}
