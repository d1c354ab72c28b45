//! Avro binary records → [`Doc`], by a reader compiled once per writer schema.
//!
//! The schema text is parsed by `apache-avro` (names, namespaces, references, logical types); the
//! reading is this module's own: a flat table of types walked over the bytes, text borrowed from
//! the record, field names from the table. `apache-avro`'s generic reader builds a `Value` with an
//! owned `String` for every field name and every text of every record, only for it to be walked
//! and freed again; `scripts/bench formats` measures both.
//!
//! Every length, count and index is checked against what remains of the record before anything
//! is allocated, nesting is bounded, and every problem is a [`AvroError`] naming where in the
//! record it is: a hostile record fails, it never panics or exhausts memory.

use std::borrow::Cow;
use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::plan::document::Doc;
use crate::plan::extract::{MemberName, Projection};

/// How deep records, arrays and maps may nest in one record (as for JSON records).
pub const MAX_DEPTH: usize = crate::plan::extract::MAX_DEPTH;

/// Items of a zero-width type (`null`, an empty record) one block may claim: past this, a count
/// is not backed by bytes and only a hostile record would send it.
const MAX_EMPTY_ITEMS: u64 = 65_536;

/// What is read below a value: `None` everything, else what the mapping reads.
pub type Below<'a> = Option<Projection<'a>>;

/// A writer schema, compiled for reading.
#[derive(Debug)]
pub struct AvroReader {
    types: Vec<Ty>,
    root: usize,
    /// Record fields' defaults, by the record's type index (for writing a field the mapped
    /// record leaves out).
    defaults: HashMap<usize, Vec<Option<Doc<'static>>>>,
}

#[derive(Debug)]
enum Ty {
    Null,
    Bool,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    Fixed(usize),
    Enum(Vec<String>),
    Array(usize),
    Map(usize),
    Union(Vec<usize>),
    /// Fields by name (prepared for the mapping's lookups) and type.
    Record(Vec<(MemberName, usize)>),
    /// Unscaled two's-complement bytes (`fixed`: of this size) and the scale.
    Decimal {
        scale: usize,
        fixed: Option<usize>,
    },
    /// `big-decimal`: bytes holding the unscaled bytes and then the scale as a long.
    BigDecimal,
    Uuid(UuidForm),
    Date,
    TimeMillis,
    TimeMicros,
    /// Since the epoch in 10^-digits seconds; `utc`: written with `Z` (`local-…` is not).
    Timestamp {
        digits: u8,
        utc: bool,
    },
    Duration,
    /// A named type defined elsewhere, compiled at this index.
    Ref(usize),
}

#[derive(Debug)]
enum UuidForm {
    Text,
    /// `bytes`: a length, which must be 16, then the bytes.
    Bytes,
    /// `fixed` of 16.
    Fixed16,
}

/// A schema that cannot be read with (a reference to an unknown name, an unsupported form).
#[derive(Debug, thiserror::Error)]
pub enum AvroSchemaError {
    #[error("not an Avro schema: {0}")]
    Parse(#[from] apache_avro::Error),
    #[error("the schema refers to `{0}`, which neither it nor its references define")]
    UnknownName(String),
}

/// Why a record does not read with its writer schema. It never quotes a value of the record (a
/// field may be `sensitive`): only where, and what kind of thing is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (byte {offset} of the Avro body{})", if path.is_empty() { String::new() } else { format!(", in `{path}`") })]
pub struct AvroError {
    pub message: String,
    /// Where the problem was found, from the start of the Avro body.
    pub offset: usize,
    /// The field being read, as a path (`order.items[2].sku`).
    pub path: String,
}

impl AvroReader {
    /// Compiles a writer schema; `references` are the texts of the schemas it names types from
    /// (a registry's references), in dependency order.
    pub fn new(schema: &str, references: &[String]) -> Result<Self, AvroSchemaError> {
        let (root, named) = if references.is_empty() {
            (Schema::parse_str(schema)?, Vec::new())
        } else {
            Schema::parse_str_with_list(schema, references)?
        };
        let mut compiler = Compiler::default();
        for schema in &named {
            compiler.register(schema);
        }
        compiler.register(&root);
        let root_index = compiler.compile(&root)?;
        Ok(AvroReader { types: compiler.types, root: root_index, defaults: compiler.defaults })
    }

    /// Reads one record body (the Avro binary datum, without any framing). The whole body must
    /// be one value of the schema.
    pub fn read<'a>(&'a self, bytes: &'a [u8]) -> Result<Doc<'a>, AvroError> {
        self.read_projected(bytes, None)
    }

    /// Reads one record body for a mapping: only the values at the points of `projection` that
    /// the mapping reads whole are built, each pushed onto `captured` with its point, in record
    /// order (what [`crate::plan::Plan::apply_captured`] maps); everything else is stepped over,
    /// checked as strictly as when it is read. No tree of the record is built.
    pub fn read_captures<'a, 'p>(
        &'a self,
        bytes: &'a [u8],
        projection: Projection<'p>,
        captured: &mut Vec<(Projection<'p>, Doc<'a>)>,
    ) -> Result<(), AvroError> {
        if !matches!(self.types[self.resolve(self.root)], Ty::Record(_)) {
            return Err(AvroError {
                message: "the schema's top level is not a record; a mapping reads records".into(),
                offset: 0,
                path: String::new(),
            });
        }
        let read = |track: bool, captured: &mut Vec<(Projection<'p>, Doc<'a>)>| {
            let mut reading = Reading { bytes, pos: 0, path: Vec::new(), track };
            reading.visit(self, self.root, projection, 0, captured)?;
            reading.finished()
        };
        // A record that fails is read again, keeping the path, to say where the problem is.
        read(false, captured).map_err(|first| read(true, &mut Vec::new()).err().unwrap_or(first))
    }

    /// The type a reference names.
    fn resolve(&self, mut ty: usize) -> usize {
        for _ in 0..MAX_DEPTH {
            match self.types[ty] {
                Ty::Ref(target) => ty = target,
                _ => break,
            }
        }
        ty
    }

    /// [`read`](Self::read), building only what `projection` says a mapping reads (`None`:
    /// everything); the rest is stepped over, checked as strictly but not built.
    pub fn read_projected<'a>(&'a self, bytes: &'a [u8], projection: Below<'a>) -> Result<Doc<'a>, AvroError> {
        let read = |track: bool| {
            let mut reading = Reading { bytes, pos: 0, path: Vec::new(), track };
            let doc = reading.value(self, self.root, 0, projection)?;
            reading.finished().map(|()| doc)
        };
        read(false).map_err(|first| read(true).err().unwrap_or(first))
    }
}

/// Every named type `schema` defines (itself included), by full name: what a reference can name.
pub fn named_types<'s>(schema: &'s Schema, into: &mut HashMap<String, &'s Schema>) {
    if let Some(name) = schema.name().filter(|_| !matches!(schema, Schema::Ref { .. })) {
        into.insert(name.to_string(), schema);
    }
    match schema {
        Schema::Record(r) => r.fields.iter().for_each(|f| named_types(&f.schema, into)),
        Schema::Array(a) => named_types(&a.items, into),
        Schema::Map(m) => named_types(&m.types, into),
        Schema::Union(u) => u.variants().iter().for_each(|v| named_types(v, into)),
        _ => {}
    }
}

#[derive(Default)]
struct Compiler<'s> {
    types: Vec<Ty>,
    /// Named types by full name: their definition, and their index once compiled.
    definitions: HashMap<String, &'s Schema>,
    compiled: HashMap<String, usize>,
    defaults: HashMap<usize, Vec<Option<Doc<'static>>>>,
}

impl<'s> Compiler<'s> {
    /// Records every named type defined in `schema`, so references to it can be compiled.
    fn register(&mut self, schema: &'s Schema) {
        named_types(schema, &mut self.definitions);
    }

    fn push(&mut self, ty: Ty) -> usize {
        self.types.push(ty);
        self.types.len() - 1
    }

    fn compile(&mut self, schema: &'s Schema) -> Result<usize, AvroSchemaError> {
        // Named types get their index before their contents, so a record can contain itself.
        if let Some(name) = schema.name().map(ToString::to_string)
            && !matches!(schema, Schema::Ref { .. })
        {
            if let Some(&index) = self.compiled.get(&name) {
                return Ok(index);
            }
            let index = self.push(Ty::Null);
            self.compiled.insert(name, index);
            let ty = self.compile_shape(schema)?;
            self.types[index] = ty;
            if let Schema::Record(r) = schema {
                self.defaults.insert(index, r.fields.iter().map(|f| f.default.as_ref().map(owned_doc)).collect());
            }
            return Ok(index);
        }
        let ty = self.compile_shape(schema)?;
        Ok(self.push(ty))
    }

    fn compile_shape(&mut self, schema: &'s Schema) -> Result<Ty, AvroSchemaError> {
        Ok(match schema {
            Schema::Null => Ty::Null,
            Schema::Boolean => Ty::Bool,
            Schema::Int => Ty::Int,
            Schema::Long => Ty::Long,
            Schema::Float => Ty::Float,
            Schema::Double => Ty::Double,
            Schema::Bytes => Ty::Bytes,
            Schema::String => Ty::Str,
            Schema::Fixed(f) => Ty::Fixed(f.size),
            Schema::Enum(e) => Ty::Enum(e.symbols.clone()),
            Schema::Array(a) => Ty::Array(self.compile(&a.items)?),
            Schema::Map(m) => Ty::Map(self.compile(&m.types)?),
            Schema::Union(u) => Ty::Union(u.variants().iter().map(|v| self.compile(v)).collect::<Result<_, _>>()?),
            Schema::Record(r) => Ty::Record(
                r.fields
                    .iter()
                    .map(|f| Ok::<_, AvroSchemaError>((MemberName::new(&f.name), self.compile(&f.schema)?)))
                    .collect::<Result<_, _>>()?,
            ),
            Schema::Decimal(d) => Ty::Decimal {
                scale: d.scale,
                fixed: match &d.inner {
                    InnerDecimalSchema::Bytes => None,
                    InnerDecimalSchema::Fixed(f) => Some(f.size),
                },
            },
            Schema::BigDecimal => Ty::BigDecimal,
            Schema::Uuid(UuidSchema::String) => Ty::Uuid(UuidForm::Text),
            Schema::Uuid(UuidSchema::Bytes) => Ty::Uuid(UuidForm::Bytes),
            Schema::Uuid(UuidSchema::Fixed(_)) => Ty::Uuid(UuidForm::Fixed16),
            Schema::Date => Ty::Date,
            Schema::TimeMillis => Ty::TimeMillis,
            Schema::TimeMicros => Ty::TimeMicros,
            Schema::TimestampMillis => Ty::Timestamp { digits: 3, utc: true },
            Schema::TimestampMicros => Ty::Timestamp { digits: 6, utc: true },
            Schema::TimestampNanos => Ty::Timestamp { digits: 9, utc: true },
            Schema::LocalTimestampMillis => Ty::Timestamp { digits: 3, utc: false },
            Schema::LocalTimestampMicros => Ty::Timestamp { digits: 6, utc: false },
            Schema::LocalTimestampNanos => Ty::Timestamp { digits: 9, utc: false },
            Schema::Duration(_) => Ty::Duration,
            Schema::Ref { name } => {
                let full = name.to_string();
                let index = match self.compiled.get(&full) {
                    Some(&index) => index,
                    None => {
                        let definition =
                            *self.definitions.get(&full).ok_or_else(|| AvroSchemaError::UnknownName(full.clone()))?;
                        self.compile(definition)?
                    }
                };
                Ty::Ref(index)
            }
        })
    }
}

/// One record being read.
struct Reading<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The fields and indexes being read, for messages: kept only when a record that failed is
    /// read again to say where (keeping it for every record cost a fifth of the read).
    path: Vec<PathPart<'a>>,
    track: bool,
}

enum PathPart<'a> {
    Field(&'a str),
    Index(u64),
    Key(Cow<'a, str>),
}

impl<'a> Reading<'a> {
    /// The whole body was the value.
    fn finished(&self) -> Result<(), AvroError> {
        if self.pos == self.bytes.len() {
            return Ok(());
        }
        Err(self.error(format!(
            "{} bytes left after the record: the body is longer than its schema says",
            self.bytes.len() - self.pos
        )))
    }

    #[inline(always)]
    fn enter(&mut self, part: PathPart<'a>) {
        if self.track {
            self.path.push(part);
        }
    }

    #[inline(always)]
    fn leave(&mut self) {
        if self.track {
            self.path.pop();
        }
    }

    fn error(&self, message: String) -> AvroError {
        use super::record_path::{Step, text};
        let path = text(self.path.iter().map(|part| match part {
            PathPart::Field(name) => Step::Field(name),
            PathPart::Index(i) => Step::Index(*i),
            PathPart::Key(k) => Step::Key(k),
        }));
        AvroError { message, offset: self.pos, path }
    }

    fn truncated(&self, what: &str) -> AvroError {
        self.error(format!("the record ends in the middle of {what}: it is truncated or not this schema's"))
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], AvroError> {
        if self.bytes.len() - self.pos < len {
            return Err(self.truncated(what));
        }
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }

    /// A zig-zag varint of at most 64 bits.
    fn long(&mut self) -> Result<i64, AvroError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.pos) else { return Err(self.truncated("a number")) };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(self.error("a number longer than 64 bits".into()));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(self.error("a number longer than 64 bits".into()))
    }

    fn int(&mut self) -> Result<i32, AvroError> {
        let value = self.long()?;
        i32::try_from(value).map_err(|_| self.error("an int out of range (more than 32 bits)".into()))
    }

    /// A length or count: not negative, and no more than the bytes left (each byte, at least,
    /// is one byte of the record).
    fn length(&mut self, what: &str) -> Result<usize, AvroError> {
        let at = self.pos;
        let value = self.long()?;
        if value < 0 {
            self.pos = at;
            return Err(self.error(format!("negative length {value} of {what}")));
        }
        let left = self.bytes.len() - self.pos;
        if value as u64 > left as u64 {
            self.pos = at;
            return Err(self.error(format!("{what} of {value} bytes, but only {left} bytes are left")));
        }
        Ok(value as usize)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], AvroError> {
        let len = self.length(what)?;
        self.take(len, what)
    }

    fn text(&mut self) -> Result<&'a str, AvroError> {
        let at = self.pos;
        let bytes = self.bytes("a string")?;
        // Most text is ASCII: simdutf8's check of a valid string is several times std's.
        match simdutf8::basic::from_utf8(bytes) {
            Ok(text) => Ok(text),
            Err(_) => {
                let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
                self.pos = at;
                Err(self.error(format!("a string that is not UTF-8 (byte {valid} of it)")))
            }
        }
    }

    fn float(&mut self, width: usize) -> Result<f64, AvroError> {
        let at = self.pos;
        let raw = self.take(width, "a floating-point number")?;
        let value = if width == 4 {
            f64::from(f32::from_le_bytes(raw.try_into().expect("4 bytes")))
        } else {
            f64::from_le_bytes(raw.try_into().expect("8 bytes"))
        };
        if !value.is_finite() {
            self.pos = at;
            return Err(
                self.error("a number that is not finite (NaN or infinite); a mapped record cannot hold it".into())
            );
        }
        Ok(value)
    }

    /// The items of an array or the entries of a map: blocks of a count (negative: followed by
    /// the block's size in bytes), ending with a count of 0.
    fn blocks(
        &mut self,
        reader: &'a AvroReader,
        item: usize,
        what: &str,
        mut each: impl FnMut(&mut Self, u64) -> Result<(), AvroError>,
    ) -> Result<(), AvroError> {
        let mut index: u64 = 0;
        loop {
            let at = self.pos;
            let mut count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count =
                    count.checked_neg().ok_or_else(|| self.error(format!("a block count of {what} out of range")))?;
                self.long()?; // the block's size in bytes: not needed to read it
            }
            let count = count as u64;
            let left = (self.bytes.len() - self.pos) as u64;
            if count > left && (count > MAX_EMPTY_ITEMS || reader.has_width(item)) {
                self.pos = at;
                return Err(self.error(format!("{what} claims {count} items, but only {left} bytes are left")));
            }
            for _ in 0..count {
                each(self, index)?;
                index += 1;
            }
        }
    }

    fn value(
        &mut self,
        reader: &'a AvroReader,
        ty: usize,
        depth: usize,
        below: Below<'a>,
    ) -> Result<Doc<'a>, AvroError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("the record nests deeper than {MAX_DEPTH} levels")));
        }
        // A value read whole is built whole.
        let below = below.filter(|p| !p.whole());
        Ok(match &reader.types[ty] {
            Ty::Null => Doc::Null,
            Ty::Bool => Doc::Bool(self.boolean()?),
            Ty::Int => Doc::Int(i64::from(self.int()?)),
            Ty::Long => Doc::Int(self.long()?),
            Ty::Float => Doc::Float(self.float(4)?),
            Ty::Double => Doc::Float(self.float(8)?),
            Ty::Str => Doc::Str(Cow::Borrowed(self.text()?)),
            Ty::Bytes => Doc::Str(Cow::Owned(BASE64.encode(self.bytes("bytes")?))),
            Ty::Fixed(size) => Doc::Str(Cow::Owned(BASE64.encode(self.take(*size, "a fixed")?))),
            Ty::Enum(symbols) => Doc::Str(Cow::Borrowed(self.symbol(symbols)?)),
            Ty::Array(item) => self.array(reader, *item, depth, below)?,
            Ty::Map(value) => self.map(reader, *value, depth, below)?,
            Ty::Union(branches) => {
                let branch = self.branch(branches)?;
                self.value(reader, branch, depth + 1, below)?
            }
            Ty::Record(fields) => self.record(reader, fields, depth, below)?,
            Ty::Ref(index) => self.value(reader, *index, depth + 1, below)?,
            logical => self.logical(logical)?,
        })
    }

    fn boolean(&mut self) -> Result<bool, AvroError> {
        match self.take(1, "a boolean")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => {
                self.pos -= 1;
                Err(self.error(format!("a boolean byte must be 0 or 1, not {other}")))
            }
        }
    }

    fn symbol<'s>(&mut self, symbols: &'s [String]) -> Result<&'s str, AvroError> {
        let at = self.pos;
        let index = self.long()?;
        match usize::try_from(index).ok().and_then(|i| symbols.get(i)) {
            Some(symbol) => Ok(symbol),
            None => {
                self.pos = at;
                Err(self.error(format!("enum index {index}, but the enum has {} symbols", symbols.len())))
            }
        }
    }

    /// An array. Items nothing reads are stepped over and kept as `null`, so the ones read keep
    /// their indexes.
    fn array(
        &mut self,
        reader: &'a AvroReader,
        item: usize,
        depth: usize,
        below: Below<'a>,
    ) -> Result<Doc<'a>, AvroError> {
        let mut items = Vec::new();
        self.blocks(reader, item, "an array", |r, index| {
            r.enter(PathPart::Index(index));
            let read = match below {
                None => Some(None),
                Some(p) => usize::try_from(index).ok().and_then(|i| p.element(i)).map(Some),
            };
            match read {
                Some(sub) => items.push(r.value(reader, item, depth + 1, sub)?),
                None => {
                    r.skip(reader, item, depth + 1)?;
                    items.push(Doc::Null);
                }
            }
            r.leave();
            Ok(())
        })?;
        Ok(Doc::List(items))
    }

    fn map(
        &mut self,
        reader: &'a AvroReader,
        value: usize,
        depth: usize,
        below: Below<'a>,
    ) -> Result<Doc<'a>, AvroError> {
        let mut entries = Vec::new();
        self.blocks(reader, value, "a map", |r, _| {
            let key = r.text()?;
            r.enter(PathPart::Key(Cow::Borrowed(key)));
            match below.map(|p| p.member(key)) {
                None => entries.push((Cow::Borrowed(key), r.value(reader, value, depth + 1, None)?)),
                Some(Some(sub)) => entries.push((Cow::Borrowed(key), r.value(reader, value, depth + 1, Some(sub))?)),
                Some(None) => r.skip(reader, value, depth + 1)?,
            }
            r.leave();
            Ok(())
        })?;
        Ok(Doc::Object(entries))
    }

    fn record(
        &mut self,
        reader: &'a AvroReader,
        fields: &'a [(MemberName, usize)],
        depth: usize,
        below: Below<'a>,
    ) -> Result<Doc<'a>, AvroError> {
        let mut members = Vec::with_capacity(if below.is_some() { 4 } else { fields.len() });
        for (name, field) in fields {
            self.enter(PathPart::Field(name.as_str()));
            let sub = match below {
                None => Some(None),
                Some(p) => p.member_named(name).map(Some),
            };
            match sub {
                None => self.skip(reader, *field, depth + 1)?,
                Some(sub) => {
                    // A union that chose `null` leaves the field out, as a JSON record leaves
                    // out what it does not have: `required:` and defaults then mean the same.
                    if let Ty::Union(branches) = &reader.types[*field] {
                        let branch = self.branch(branches)?;
                        if !matches!(reader.types[branch], Ty::Null) {
                            members.push((Cow::Borrowed(name.as_str()), self.value(reader, branch, depth + 1, sub)?));
                        }
                    } else {
                        members.push((Cow::Borrowed(name.as_str()), self.value(reader, *field, depth + 1, sub)?));
                    }
                }
            }
            self.leave();
        }
        Ok(Doc::Object(members))
    }

    /// A value at a point of the mapping's projection: built and captured where the mapping
    /// reads it whole, followed where it reads below it, stepped over elsewhere.
    fn visit<'p>(
        &mut self,
        reader: &'a AvroReader,
        ty: usize,
        point: Projection<'p>,
        depth: usize,
        captured: &mut Vec<(Projection<'p>, Doc<'a>)>,
    ) -> Result<(), AvroError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("the record nests deeper than {MAX_DEPTH} levels")));
        }
        if point.whole() {
            let value = self.value(reader, ty, depth, None)?;
            captured.push((point, value));
            return Ok(());
        }
        match &reader.types[ty] {
            Ty::Record(fields) => {
                for (name, field) in fields {
                    self.enter(PathPart::Field(name.as_str()));
                    match point.member_named(name) {
                        Some(below) => self.visit(reader, *field, below, depth + 1, captured)?,
                        None => self.skip(reader, *field, depth + 1)?,
                    }
                    self.leave();
                }
            }
            Ty::Union(branches) => {
                let branch = self.branch(branches)?;
                self.visit(reader, branch, point, depth + 1, captured)?;
            }
            Ty::Ref(index) => self.visit(reader, *index, point, depth + 1, captured)?,
            Ty::Array(item) => self.blocks(reader, *item, "an array", |r, index| {
                r.enter(PathPart::Index(index));
                match usize::try_from(index).ok().and_then(|i| point.element(i)) {
                    Some(below) => r.visit(reader, *item, below, depth + 1, captured)?,
                    None => r.skip(reader, *item, depth + 1)?,
                }
                r.leave();
                Ok(())
            })?,
            Ty::Map(value) => self.blocks(reader, *value, "a map", |r, _| {
                let key = r.text()?;
                r.enter(PathPart::Key(Cow::Borrowed(key)));
                match point.member(key) {
                    Some(below) => r.visit(reader, *value, below, depth + 1, captured)?,
                    None => r.skip(reader, *value, depth + 1)?,
                }
                r.leave();
                Ok(())
            })?,
            // The mapping reads below a value that has nothing below it: nothing is found there.
            _ => self.skip(reader, ty, depth)?,
        }
        Ok(())
    }

    /// Steps over a value nothing reads: its lengths, counts, indexes and text are checked, as
    /// when it is read, but nothing is built.
    fn skip(&mut self, reader: &'a AvroReader, ty: usize, depth: usize) -> Result<(), AvroError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("the record nests deeper than {MAX_DEPTH} levels")));
        }
        match &reader.types[ty] {
            Ty::Null => {}
            Ty::Bool => {
                self.boolean()?;
            }
            Ty::Int | Ty::Date | Ty::TimeMillis => {
                self.int()?;
            }
            Ty::Long | Ty::TimeMicros | Ty::Timestamp { .. } => {
                self.long()?;
            }
            Ty::Enum(symbols) => {
                self.symbol(symbols)?;
            }
            Ty::Float => {
                self.take(4, "a floating-point number")?;
            }
            Ty::Double => {
                self.take(8, "a floating-point number")?;
            }
            // Text is checked even when nothing reads it, as a JSON record's is: a record with
            // broken text is broken for every reader of the topic.
            Ty::Str => {
                self.text()?;
            }
            Ty::Bytes | Ty::Decimal { fixed: None, .. } => {
                self.bytes("bytes")?;
            }
            Ty::BigDecimal => {
                self.big_decimal()?;
            }
            Ty::Fixed(size) | Ty::Decimal { fixed: Some(size), .. } => {
                self.take(*size, "a fixed")?;
            }
            Ty::Uuid(form) => {
                self.uuid(form)?;
            }
            Ty::Duration => {
                self.take(12, "a duration")?;
            }
            Ty::Array(item) => self.blocks(reader, *item, "an array", |r, _| r.skip(reader, *item, depth + 1))?,
            Ty::Map(value) => self.blocks(reader, *value, "a map", |r, _| {
                r.text()?;
                r.skip(reader, *value, depth + 1)
            })?,
            Ty::Union(branches) => {
                let branch = self.branch(branches)?;
                self.skip(reader, branch, depth + 1)?;
            }
            Ty::Record(fields) => {
                for (_, field) in fields {
                    self.skip(reader, *field, depth + 1)?;
                }
            }
            Ty::Ref(index) => self.skip(reader, *index, depth + 1)?,
        }
        Ok(())
    }

    /// A value of a logical type: what its underlying bytes or number mean.
    fn logical(&mut self, ty: &'a Ty) -> Result<Doc<'a>, AvroError> {
        Ok(match ty {
            Ty::Decimal { scale, fixed } => {
                let unscaled = match fixed {
                    Some(size) => self.take(*size, "a decimal")?,
                    None => self.bytes("a decimal")?,
                };
                Doc::Decimal(self.decimal_text(unscaled, *scale)?)
            }
            Ty::BigDecimal => Doc::Decimal(self.big_decimal()?),
            Ty::Uuid(form) => self.uuid(form)?,
            Ty::Date => {
                let days = self.int()?;
                let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(i64::from(days))))
                    .ok_or_else(|| self.error("a date out of range".into()))?;
                Doc::Str(Cow::Owned(date.format("%Y-%m-%d").to_string()))
            }
            Ty::TimeMillis => {
                let millis = self.int()?;
                Doc::Str(Cow::Owned(self.time_text(i64::from(millis) * 1_000_000, 3)?))
            }
            Ty::TimeMicros => {
                let micros = self.long()?;
                let nanos = micros.checked_mul(1_000).ok_or_else(|| self.error("time-micros out of range".into()))?;
                Doc::Str(Cow::Owned(self.time_text(nanos, 6)?))
            }
            Ty::Timestamp { digits, utc } => {
                let count = self.long()?;
                Doc::Str(Cow::Owned(self.timestamp_text(count, *digits, *utc)?))
            }
            Ty::Duration => {
                let raw = self.take(12, "a duration")?;
                let part =
                    |i: usize| Doc::Int(i64::from(u32::from_le_bytes(raw[i..i + 4].try_into().expect("4 bytes"))));
                Doc::Object(vec![
                    (Cow::Borrowed("months"), part(0)),
                    (Cow::Borrowed("days"), part(4)),
                    (Cow::Borrowed("millis"), part(8)),
                ])
            }
            // `value` reads every other type itself.
            other => return Err(self.error(format!("{other:?} read as a logical type"))),
        })
    }

    /// `big-decimal`: `bytes` holding the unscaled value (as `bytes`) and then the scale (a
    /// `long`), as the Avro specification and its Java and Rust libraries write it.
    fn big_decimal(&mut self) -> Result<String, AvroError> {
        let at = self.pos;
        let outer = self.bytes("a big-decimal")?;
        let mut inner = Reading { bytes: outer, pos: 0, path: Vec::new(), track: false };
        let parsed = inner.bytes("a big-decimal's digits").and_then(|unscaled| {
            let scale = inner.long()?;
            let scale = usize::try_from(scale).map_err(|_| inner.error("a negative big-decimal scale".into()))?;
            if inner.pos != outer.len() {
                return Err(inner.error("bytes left after a big-decimal's scale".into()));
            }
            inner.decimal_text(unscaled, scale)
        });
        parsed.map_err(|e| {
            self.pos = at;
            self.error(e.message)
        })
    }

    fn uuid(&mut self, form: &UuidForm) -> Result<Doc<'a>, AvroError> {
        Ok(match form {
            UuidForm::Text => Doc::Str(Cow::Borrowed(self.text()?)),
            UuidForm::Fixed16 => Doc::Str(Cow::Owned(uuid_text(self.take(16, "a uuid")?))),
            UuidForm::Bytes => {
                let at = self.pos;
                let raw = self.bytes("a uuid")?;
                if raw.len() != 16 {
                    self.pos = at;
                    return Err(self.error(format!("a uuid of {} bytes; a uuid is 16", raw.len())));
                }
                Doc::Str(Cow::Owned(uuid_text(raw)))
            }
        })
    }

    fn branch(&mut self, branches: &[usize]) -> Result<usize, AvroError> {
        let at = self.pos;
        let index = self.long()?;
        usize::try_from(index).ok().and_then(|i| branches.get(i).copied()).ok_or_else(|| {
            self.pos = at;
            self.error(format!("union branch {index}, but the union has {} branches", branches.len()))
        })
    }

    /// The decimal text of a two's-complement big-endian unscaled value and its scale.
    fn decimal_text(&self, unscaled: &[u8], scale: usize) -> Result<String, AvroError> {
        if unscaled.len() > 16 {
            return Err(self.error(format!(
                "a decimal of {} bytes; decimals of up to 16 bytes (38 digits) are read",
                unscaled.len()
            )));
        }
        if unscaled.is_empty() {
            return Err(self.error("a decimal with no bytes".into()));
        }
        let negative = unscaled[0] & 0x80 != 0;
        let mut word = [if negative { 0xff } else { 0 }; 16];
        word[16 - unscaled.len()..].copy_from_slice(unscaled);
        let value = i128::from_be_bytes(word);
        Ok(scaled_text(value, scale))
    }

    fn time_text(&self, nanos: i64, digits: u8) -> Result<String, AvroError> {
        let time = u32::try_from(nanos / 1_000_000_000)
            .ok()
            .and_then(|secs| {
                chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, (nanos % 1_000_000_000) as u32)
            })
            .filter(|_| nanos >= 0)
            .ok_or_else(|| self.error("a time of day out of range".into()))?;
        Ok(time.format(if digits == 3 { "%H:%M:%S%.3f" } else { "%H:%M:%S%.6f" }).to_string())
    }

    fn timestamp_text(&self, count: i64, digits: u8, utc: bool) -> Result<String, AvroError> {
        let per_second = 10i64.pow(u32::from(digits));
        let (secs, fraction) = (count.div_euclid(per_second), count.rem_euclid(per_second));
        let nanos = (fraction * 10i64.pow(9 - u32::from(digits))) as u32;
        let at = chrono::DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| self.error("a timestamp out of range".into()))?;
        let format = match digits {
            3 => "%Y-%m-%dT%H:%M:%S%.3f",
            6 => "%Y-%m-%dT%H:%M:%S%.6f",
            _ => "%Y-%m-%dT%H:%M:%S%.9f",
        };
        let mut text = at.naive_utc().format(format).to_string();
        if utc {
            text.push('Z');
        }
        Ok(text)
    }
}

impl AvroReader {
    /// Whether every value of the type takes at least one byte.
    fn has_width(&self, ty: usize) -> bool {
        fn width(reader: &AvroReader, ty: usize, seen: &mut Vec<usize>) -> bool {
            if seen.contains(&ty) {
                return true; // a type containing itself is not empty
            }
            seen.push(ty);
            match &reader.types[ty] {
                Ty::Null => false,
                Ty::Fixed(size) => *size > 0,
                Ty::Decimal { fixed: Some(size), .. } => *size > 0,
                Ty::Record(fields) => fields.iter().any(|(_, f)| width(reader, *f, seen)),
                Ty::Ref(index) => width(reader, *index, seen),
                _ => true,
            }
        }
        width(self, ty, &mut Vec::new())
    }
}

/// `value / 10^scale` in decimal, exactly.
pub(crate) fn scaled_text(value: i128, scale: usize) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut text = String::with_capacity(digits.len() + scale + 3);
    if value < 0 {
        text.push('-');
    }
    if scale == 0 {
        text.push_str(&digits);
    } else if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        text.push_str(whole);
        text.push('.');
        text.push_str(fraction);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', scale - digits.len()));
        text.push_str(&digits);
    }
    text
}

fn uuid_text(raw: &[u8]) -> String {
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Why a mapped record cannot be written with the writer schema. Like [`AvroError`], it names
/// where and what kind of value, never the value (a field may be `sensitive`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("`{path}`: ") })]
pub struct AvroEncodeError {
    pub message: String,
    /// The output field, as a path (`customer.address.zip`).
    pub path: String,
}

impl AvroReader {
    /// Writes a mapped record (the output, as JSON) as an Avro body of this schema: the inverse
    /// of the reader's table. Decimal text (or a JSON number) becomes the schema's unscaled
    /// bytes at its scale; RFC 3339 text a timestamp; `YYYY-MM-DD` a date; base64 text bytes; a
    /// member the record leaves out the field's default, or `null` in a union that has it.
    pub fn write(&self, value: &Doc<'_>, out: &mut Vec<u8>) -> Result<(), AvroEncodeError> {
        let mut writing = Writing { reader: self, path: Vec::new() };
        writing.value(self.root, Some(value), out, 0).map_err(|message| {
            let mut path = String::new();
            // Pushed innermost first, on the way out.
            for part in writing.path.iter().rev() {
                if !path.is_empty() && !part.starts_with('[') {
                    path.push('.');
                }
                path.push_str(part);
            }
            AvroEncodeError { message, path }
        })
    }
}

/// One mapped record being written; `path` is where, once something failed.
struct Writing<'a> {
    reader: &'a AvroReader,
    path: Vec<String>,
}

fn json_kind(value: Option<&Doc<'_>>) -> &'static str {
    match value {
        None => "missing",
        Some(Doc::Str(_)) => "text",
        Some(other) => other.kind(),
    }
}

/// A JSON value as a tree of owned parts (a schema's default).
fn owned_doc(value: &serde_json::Value) -> Doc<'static> {
    use serde_json::Value;
    match value {
        Value::Null => Doc::Null,
        Value::Bool(b) => Doc::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Doc::Int(i),
            (None, Some(f)) if n.is_f64() => Doc::Float(f),
            _ => Doc::Decimal(n.to_string()),
        },
        Value::String(s) => Doc::Str(Cow::Owned(s.clone())),
        Value::Array(items) => Doc::List(items.iter().map(owned_doc).collect()),
        Value::Object(members) => {
            Doc::Object(members.iter().map(|(k, v)| (Cow::Owned(k.clone()), owned_doc(v))).collect())
        }
    }
}

impl Writing<'_> {
    fn value(&mut self, ty: usize, value: Option<&Doc<'_>>, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let reader = self.reader;
        let wrong = |expected: &str| format!("the schema has {expected} here, the record {}", json_kind(value));
        match (&reader.types[ty], value) {
            (Ty::Ref(target), _) => self.value(*target, value, out, depth),
            (Ty::Null, None | Some(Doc::Null)) => Ok(()),
            (Ty::Bool, Some(Doc::Bool(b))) => {
                out.push(u8::from(*b));
                Ok(())
            }
            (Ty::Int, Some(Doc::Int(n))) => {
                let n = i32::try_from(*n).map_err(|_| wrong("an int (32 bits)"))?;
                write_long(out, i64::from(n));
                Ok(())
            }
            (Ty::Long, Some(Doc::Int(n))) => {
                write_long(out, *n);
                Ok(())
            }
            (Ty::Float, Some(Doc::Int(_) | Doc::Float(_))) => {
                out.extend_from_slice(&(number_of(value) as f32).to_le_bytes());
                Ok(())
            }
            (Ty::Double, Some(Doc::Int(_) | Doc::Float(_))) => {
                out.extend_from_slice(&number_of(value).to_le_bytes());
                Ok(())
            }
            (Ty::Str | Ty::Uuid(UuidForm::Text), Some(Doc::Str(text))) => {
                write_bytes(out, text.as_bytes());
                Ok(())
            }
            (Ty::Bytes, Some(Doc::Str(text))) => {
                let raw = BASE64
                    .decode(text.as_bytes())
                    .map_err(|_| "the schema has bytes here: base64 text, which this is not".to_string())?;
                write_bytes(out, &raw);
                Ok(())
            }
            (Ty::Fixed(size), Some(Doc::Str(text))) => {
                let raw = BASE64
                    .decode(text.as_bytes())
                    .map_err(|_| format!("the schema has {size} fixed bytes here: base64 text, which this is not"))?;
                if raw.len() != *size {
                    return Err(format!("the schema has {size} fixed bytes here, the record {}", raw.len()));
                }
                out.extend_from_slice(&raw);
                Ok(())
            }
            (Ty::Enum(symbols), Some(Doc::Str(text))) => {
                let index = symbols
                    .iter()
                    .position(|s| s == text)
                    .ok_or_else(|| format!("not a symbol of the enum (symbols: {})", symbols.join(", ")))?;
                write_long(out, index as i64);
                Ok(())
            }
            (Ty::Array(_), Some(Doc::List(_))) | (Ty::Map(_), Some(Doc::Object(_))) => {
                self.collection(ty, value, out, depth)
            }
            (Ty::Union(branches), _) => self.union(branches, value, out, depth),
            (Ty::Record(fields), Some(Doc::Object(members))) => self.record(ty, fields, members, out, depth),
            (
                Ty::Decimal { .. }
                | Ty::Uuid(UuidForm::Bytes | UuidForm::Fixed16)
                | Ty::Date
                | Ty::TimeMillis
                | Ty::TimeMicros
                | Ty::Timestamp { .. }
                | Ty::Duration,
                Some(_),
            ) => self.logical(ty, value, out),
            (Ty::BigDecimal, _) => Err("the schema has a big-decimal here, which is not written".into()),
            (other, _) => Err(wrong(expected_name(other))),
        }
    }

    /// An array's items or a map's entries: one block of them, then the end.
    fn collection(
        &mut self,
        ty: usize,
        value: Option<&Doc<'_>>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        match (&self.reader.types[ty], value) {
            (Ty::Array(item), Some(Doc::List(items))) => {
                if !items.is_empty() {
                    write_long(out, items.len() as i64);
                    for (i, value) in items.iter().enumerate() {
                        if let Err(e) = self.value(*item, Some(value), out, depth + 1) {
                            self.path.push(format!("[{i}]"));
                            return Err(e);
                        }
                    }
                }
                out.push(0);
                Ok(())
            }
            (Ty::Map(item), Some(Doc::Object(members))) => {
                if !members.is_empty() {
                    write_long(out, members.len() as i64);
                    for (key, value) in members {
                        write_bytes(out, key.as_bytes());
                        if let Err(e) = self.value(*item, Some(value), out, depth + 1) {
                            self.path.push(key.to_string());
                            return Err(e);
                        }
                    }
                }
                out.push(0);
                Ok(())
            }
            (other, _) => Err(format!("the schema has {} here", expected_name(other))),
        }
    }

    /// A value of a logical type (decimal, uuid as bytes, date, time, timestamp, duration), from
    /// the form the reader gives it.
    fn logical(&mut self, ty: usize, value: Option<&Doc<'_>>, out: &mut Vec<u8>) -> Result<(), String> {
        let reader = self.reader;
        let wrong = |expected: &str| format!("the schema has {expected} here, the record {}", json_kind(value));
        match (&reader.types[ty], value) {
            (Ty::Decimal { scale, fixed }, Some(Doc::Str(_) | Doc::Decimal(_) | Doc::Int(_) | Doc::Float(_))) => {
                let text = match value {
                    Some(Doc::Str(text)) => text.to_string(),
                    Some(Doc::Decimal(text)) => text.clone(),
                    Some(Doc::Int(n)) => n.to_string(),
                    Some(Doc::Float(f)) => f.to_string(),
                    _ => unreachable!("matched a number or text"),
                };
                let unscaled = unscaled_of(&text, *scale)?;
                let raw = twos_complement(unscaled, *fixed).ok_or_else(|| {
                    format!("the decimal does not fit the schema's {} fixed bytes", fixed.unwrap_or(16))
                })?;
                match fixed {
                    Some(_) => out.extend_from_slice(&raw),
                    None => write_bytes(out, &raw),
                }
                Ok(())
            }
            (Ty::Uuid(form @ (UuidForm::Bytes | UuidForm::Fixed16)), Some(Doc::Str(text))) => {
                let raw =
                    uuid_bytes(text).ok_or_else(|| "the schema has a uuid here; this is not uuid text".to_string())?;
                if matches!(form, UuidForm::Bytes) {
                    write_long(out, 16);
                }
                out.extend_from_slice(&raw);
                Ok(())
            }
            (Ty::Date, Some(Doc::Str(text))) => {
                let date =
                    date_of(text).ok_or_else(|| "the schema has a date here; this is not YYYY-MM-DD".to_string())?;
                let days = date.signed_duration_since(chrono::NaiveDate::default()).num_days();
                write_long(out, days);
                Ok(())
            }
            (Ty::TimeMillis | Ty::TimeMicros, Some(Doc::Str(text))) => {
                let time = chrono::NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                    .map_err(|_| "the schema has a time of day here; this is not HH:MM:SS".to_string())?;
                let micros = time.signed_duration_since(chrono::NaiveTime::MIN).num_microseconds().unwrap_or(0);
                let is_millis = matches!(reader.types[ty], Ty::TimeMillis);
                write_long(out, if is_millis { micros / 1000 } else { micros });
                Ok(())
            }
            (Ty::Timestamp { .. }, Some(Doc::Int(n))) => {
                // A count since the epoch in the schema's unit, as an expression may compute.
                write_long(out, *n);
                Ok(())
            }
            (Ty::Timestamp { digits, utc }, Some(Doc::Str(text))) => {
                let at = if *utc {
                    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.naive_utc())
                } else {
                    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                }
                .map_err(|_| "the schema has a timestamp here; this is not RFC 3339 date-time text".to_string())?;
                let since = at.signed_duration_since(chrono::NaiveDateTime::default());
                let count = match digits {
                    3 => Some(since.num_milliseconds()),
                    6 => since.num_microseconds(),
                    _ => since.num_nanoseconds(),
                }
                .ok_or_else(|| "a timestamp out of the schema's range".to_string())?;
                write_long(out, count);
                Ok(())
            }
            (Ty::Duration, Some(Doc::Object(parts))) => {
                for part in ["months", "days", "millis"] {
                    let n = match parts.iter().find(|(k, _)| k == part) {
                        Some((_, Doc::Int(n))) => u32::try_from(*n).ok(),
                        _ => None,
                    };
                    let n = n.ok_or_else(|| format!("a duration's `{part}` is a whole number of 32 bits"))?;
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Ok(())
            }
            (other, _) => Err(wrong(expected_name(other))),
        }
    }

    /// The branch a value takes: `null` (or missing) the null branch; another value the first
    /// branch it fits.
    fn union(
        &mut self,
        branches: &[usize],
        value: Option<&Doc<'_>>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        let reader = self.reader;
        let is_null = |b: &usize| matches!(reader.types[reader.resolve(*b)], Ty::Null);
        if matches!(value, None | Some(Doc::Null)) {
            let index = branches
                .iter()
                .position(is_null)
                .ok_or_else(|| format!("the record has it {}, and the schema's union has no null", json_kind(value)))?;
            write_long(out, index as i64);
            return Ok(());
        }
        // `["null", T]`, the usual union: the one other branch, written in place.
        let mut others = branches.iter().enumerate().filter(|(_, b)| !is_null(b));
        if let (Some((index, branch)), None) = (others.next(), others.next()) {
            write_long(out, index as i64);
            return self.value(*branch, value, out, depth + 1);
        }
        let mut scratch = Vec::new();
        for (index, branch) in branches.iter().enumerate().filter(|(_, b)| !is_null(b)) {
            scratch.clear();
            let depth_path = self.path.len();
            if self.value(*branch, value, &mut scratch, depth + 1).is_ok() {
                write_long(out, index as i64);
                out.extend_from_slice(&scratch);
                return Ok(());
            }
            self.path.truncate(depth_path);
        }
        Err(format!("the record has {} here, which fits no branch of the schema's union", json_kind(value)))
    }

    fn record(
        &mut self,
        ty: usize,
        fields: &[(MemberName, usize)],
        members: &[(Cow<'_, str>, Doc<'_>)],
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        let defaults = self.reader.defaults.get(&ty);
        // Mapped members usually come in the schema's order: each is looked for where the last
        // one was found first.
        let mut next = 0;
        for (i, (name, field)) in fields.iter().enumerate() {
            let at = match members.get(next) {
                Some((n, _)) if n == name.as_str() => Some(next),
                _ => members.iter().position(|(n, _)| n == name.as_str()),
            };
            if let Some(at) = at {
                next = at + 1;
            }
            let given = at.map(|at| &members[at].1);
            let member = given.filter(|v| !matches!(v, Doc::Null));
            let default = defaults.and_then(|d| d.get(i)).and_then(Option::as_ref);
            let written = match (member, default) {
                (None, Some(default)) if !self.takes_null(*field) => self.default(*field, default, out),
                _ => self.value(*field, given, out, depth + 1).map_err(|e| {
                    if member.is_none() {
                        format!("the record leaves it out, and the schema has no default for it ({e})")
                    } else {
                        e
                    }
                }),
            };
            if let Err(e) = written {
                // The path is kept on the way out of a failure only: nothing is allocated for a
                // record that writes.
                self.path.push(name.as_str().to_string());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether `null` is a value of the type (itself, or a branch of its union).
    fn takes_null(&self, ty: usize) -> bool {
        match &self.reader.types[self.reader.resolve(ty)] {
            Ty::Null => true,
            Ty::Union(branches) => {
                branches.iter().any(|b| matches!(self.reader.types[self.reader.resolve(*b)], Ty::Null))
            }
            _ => false,
        }
    }

    /// A field's default, as the schema writes it: a union's is of its first branch; bytes and
    /// fixed are text of code points 0–255.
    fn default(&mut self, ty: usize, default: &Doc<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let reader = self.reader;
        match (&reader.types[reader.resolve(ty)], default) {
            (Ty::Union(branches), _) => {
                write_long(out, 0);
                self.default(branches[0], default, out)
            }
            (Ty::Bytes | Ty::Fixed(_), Doc::Str(text)) => {
                let raw: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
                if matches!(reader.types[reader.resolve(ty)], Ty::Bytes) {
                    write_long(out, raw.len() as i64);
                }
                out.extend_from_slice(&raw);
                Ok(())
            }
            _ => self.value(ty, Some(default), out, 0),
        }
    }
}

/// `YYYY-MM-DD`, read by hand: chrono's format-driven parser costs more than the rest of a
/// record's fields together.
fn date_of(text: &str) -> Option<chrono::NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    chrono::NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)
}

/// An integer or a float as a float.
fn number_of(value: Option<&Doc<'_>>) -> f64 {
    match value {
        Some(Doc::Int(n)) => *n as f64,
        Some(Doc::Float(f)) => *f,
        _ => f64::NAN,
    }
}

fn expected_name(ty: &Ty) -> &'static str {
    match ty {
        Ty::Null => "null",
        Ty::Bool => "a boolean",
        Ty::Int | Ty::Long => "a whole number",
        Ty::Float | Ty::Double => "a number",
        Ty::Str | Ty::Uuid(_) => "text",
        Ty::Bytes | Ty::Fixed(_) => "bytes (base64 text)",
        Ty::Enum(_) => "an enum symbol",
        Ty::Array(_) => "an array",
        Ty::Map(_) | Ty::Record(_) | Ty::Duration => "an object",
        Ty::Decimal { .. } | Ty::BigDecimal => "a decimal (text or a number)",
        Ty::Date => "a date",
        Ty::TimeMillis | Ty::TimeMicros => "a time of day",
        Ty::Timestamp { .. } => "a timestamp",
        Ty::Union(_) | Ty::Ref(_) => "a value",
    }
}

fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut z = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Decimal text (`-12.5`, `1e3`) as an unscaled integer at `scale`; more fraction digits than the
/// scale are refused unless they are zeros (nothing is rounded on the way out).
pub(crate) fn unscaled_of(text: &str, scale: usize) -> Result<i128, String> {
    let bad = || "the schema has a decimal here; this is not decimal text".to_string();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // The digits, and the power of ten they are to be divided by.
    let all: String = format!("{whole}{fraction}");
    let places = fraction.len() as i64 - i64::from(exponent);
    let shift = scale as i64 - places;
    let mut digits = all.trim_start_matches('0').to_string();
    // An unscaled value has at most 39 digits: past that, a number is too large before any zero
    // is written (an exponent could otherwise ask for billions of them).
    if !digits.is_empty() && digits.len() as i64 + shift > 39 {
        return Err("a decimal too large for 128 bits".into());
    }
    if shift >= 0 {
        digits.extend(std::iter::repeat_n('0', shift as usize));
    } else {
        let cut = (-shift) as usize;
        let keep = digits.len().saturating_sub(cut);
        if digits[keep..].bytes().any(|b| b != b'0') {
            return Err(format!(
                "the value has more decimal places than the schema's scale of {scale}; round it first"
            ));
        }
        digits.truncate(keep);
    }
    if digits.is_empty() {
        return Ok(0);
    }
    let magnitude: i128 = digits.parse().map_err(|_| "a decimal too large for 128 bits".to_string())?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Big-endian two's complement: the fewest bytes (`fixed: None`), or exactly `size`.
pub(crate) fn twos_complement(value: i128, fixed: Option<usize>) -> Option<Vec<u8>> {
    let full = value.to_be_bytes();
    let fill = if value < 0 { 0xff } else { 0 };
    let mut start = 0;
    while start < 15 && full[start] == fill && (full[start + 1] & 0x80 == fill & 0x80) {
        start += 1;
    }
    let minimal = &full[start..];
    match fixed {
        None => Some(minimal.to_vec()),
        Some(size) if size >= minimal.len() => {
            let mut out = vec![fill; size - minimal.len()];
            out.extend_from_slice(minimal);
            Some(out)
        }
        Some(_) => None,
    }
}

fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, byte) in raw.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_text() {
        assert_eq!(scaled_text(123450, 2), "1234.50");
        assert_eq!(scaled_text(-5, 2), "-0.05");
        assert_eq!(scaled_text(7, 0), "7");
        assert_eq!(scaled_text(i128::MIN, 3), "-170141183460469231731687303715884105.728");
    }

    fn zigzag(n: i64) -> Vec<u8> {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    #[test]
    fn hostile_counts_and_lengths_fail_without_allocating() {
        let reader = AvroReader::new(r#"{"type":"array","items":"null"}"#, &[]).unwrap();
        let huge = zigzag(1 << 40);
        assert!(reader.read(&huge).unwrap_err().message.contains("claims"));
        let reader = AvroReader::new(r#""string""#, &[]).unwrap();
        let e = reader.read(&zigzag(-3)).unwrap_err();
        assert!(e.message.contains("negative length -3"), "{e}");
        let e = reader.read(&zigzag(1 << 40)).unwrap_err();
        assert!(e.message.contains("bytes are left"), "{e}");
        let mut bad = zigzag(2);
        bad.extend([0xff, 0xfe]);
        assert!(reader.read(&bad).unwrap_err().message.contains("not UTF-8"));
        // Ten continuation bytes: longer than 64 bits.
        assert!(reader.read(&[0xff; 11]).unwrap_err().message.contains("64 bits"));
    }

    #[test]
    fn uuid_on_bytes_and_big_decimal_read_as_the_specification_writes_them() {
        let schema = r#"{"type":"record","name":"R","fields":[
            {"name":"id","type":{"type":"bytes","logicalType":"uuid"}},
            {"name":"amount","type":{"type":"bytes","logicalType":"big-decimal"}},
            {"name":"n","type":"int"}]}"#;
        let reader = AvroReader::new(schema, &[]).unwrap();
        let mut body = zigzag(16);
        body.extend((0u8..16).collect::<Vec<_>>());
        // -12345 scaled by 2: its two's-complement bytes, then the scale, inside one `bytes`.
        let mut inner = zigzag(2);
        inner.extend((-12345i16).to_be_bytes());
        inner.extend(zigzag(2));
        body.extend(zigzag(inner.len() as i64));
        body.extend(inner);
        body.extend(zigzag(7));
        let doc = reader.read(&body).unwrap();
        assert_eq!(doc.get("id"), Some(&Doc::Str("00010203-0405-0607-0809-0a0b0c0d0e0f".into())));
        assert_eq!(doc.get("amount"), Some(&Doc::Decimal("-123.45".into())));
        assert_eq!(doc.get("n"), Some(&Doc::Int(7)));
        // A uuid of another length is refused, never misread.
        let mut short = zigzag(15);
        short.extend([0u8; 15]);
        assert!(reader.read(&short).unwrap_err().message.contains("a uuid of 15 bytes"));
    }

    #[test]
    fn messages_never_quote_the_records_values() {
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"document","type":"int"}]}"#;
        let reader = AvroReader::new(schema, &[]).unwrap();
        let e = reader.read(&zigzag(52_998_224_725)).unwrap_err();
        assert!(e.to_string().contains("an int out of range") && e.to_string().contains("document"), "{e}");
        assert!(!e.to_string().contains("52998224725"), "{e}");
    }

    #[test]
    fn recursion_is_bounded() {
        let schema = r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#;
        let reader = AvroReader::new(schema, &[]).unwrap();
        let mut body = vec![2u8; 10_000]; // branch 1 (Node), ten thousand times
        body.push(0); // then null
        let e = reader.read(&body).unwrap_err();
        assert!(e.message.contains("deeper than"), "{e}");
        let shallow = [2u8, 2, 0];
        assert_eq!(
            reader.read(&shallow).unwrap(),
            Doc::Object(vec![("next".into(), Doc::Object(vec![("next".into(), Doc::Object(vec![]))]))])
        );
    }

    #[test]
    fn unknown_references_are_named() {
        let schema = r#"{"type":"record","name":"Order","fields":[{"name":"total","type":"com.example.Money"}]}"#;
        let e = AvroReader::new(schema, &[]).unwrap_err();
        assert!(e.to_string().contains("Money"), "{e}");
        let money =
            r#"{"type":"record","name":"Money","namespace":"com.example","fields":[{"name":"cents","type":"long"}]}"#;
        let reader = AvroReader::new(schema, &[money.to_string()]).unwrap();
        assert_eq!(
            reader.read(&zigzag(-250)).unwrap(),
            Doc::Object(vec![("total".into(), Doc::Object(vec![("cents".into(), Doc::Int(-250))]))])
        );
    }
}
