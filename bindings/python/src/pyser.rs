//! Records to Python objects through serde, with each dict key made once.
//!
//! The renderers hand over typed records (`serde::Serialize`); this builds
//! the dicts, lists and scalars straight from them, as `pythonize` does, with
//! one difference that matters for a feed: every record of a batch has the
//! same dozen keys, and `pythonize` made a new `str` for each key of each
//! record (allocate, hash on insert, free). Here keys come from a small
//! per-thread cache of strings, whose hashes Python keeps. Profiled on 200k
//! native records: key strings and their hashing were about a tenth of the
//! time. Which fields a record has stays the renderer's business.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use pyo3::IntoPyObjectExt;
use serde::ser::{self, Serialize};

/// Most keys the cache holds per thread (record keys are a fixed set; map
/// keys taken from data, such as attribute names, could be many).
const MAX_KEYS: usize = 1024;
/// Longer keys are not cached.
const MAX_KEY_LEN: usize = 64;

thread_local! {
    static KEYS: RefCell<HashMap<String, Py<PyString>>> = RefCell::new(HashMap::new());
}

/// A dict key: from the cache, or made (and cached while there is room).
fn key<'py>(py: Python<'py>, k: &str) -> Bound<'py, PyString> {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(s) = keys.get(k) {
            return s.bind(py).clone();
        }
        let s = PyString::new(py, k);
        if k.len() <= MAX_KEY_LEN && keys.len() < MAX_KEYS {
            keys.insert(k.to_string(), s.clone().unbind());
        }
        s
    })
}

/// A conversion error, carrying the Python exception.
#[derive(Debug)]
pub(crate) struct Error(pub PyErr);

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(PyValueError::new_err(msg.to_string()))
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error(e)
    }
}

type Result<T> = std::result::Result<T, Error>;

/// `value` as a Python object.
pub(crate) fn to_python<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> Result<Bound<'py, PyAny>> {
    value.serialize(Ser { py })
}

#[derive(Clone, Copy)]
struct Ser<'py> {
    py: Python<'py>,
}

impl<'py> Ser<'py> {
    fn any<T: IntoPyObject<'py>>(self, v: T) -> Result<Bound<'py, PyAny>> {
        v.into_bound_py_any(self.py).map_err(Error)
    }
}

/// A list being built.
pub(crate) struct Seq<'py> {
    py: Python<'py>,
    items: Vec<Bound<'py, PyAny>>,
    /// For a tuple variant: `{variant: [items]}`.
    variant: Option<&'static str>,
}

/// A dict being built.
pub(crate) struct Map<'py> {
    py: Python<'py>,
    dict: Bound<'py, PyDict>,
    next_key: Option<Bound<'py, PyAny>>,
    /// The last string key, copied (reused for every key of the dict).
    buf: String,
    /// For a struct variant: `{variant: {fields}}`.
    variant: Option<&'static str>,
}

fn wrap<'py>(
    py: Python<'py>,
    variant: Option<&'static str>,
    inner: Bound<'py, PyAny>,
) -> Result<Bound<'py, PyAny>> {
    match variant {
        None => Ok(inner),
        Some(v) => {
            let d = PyDict::new(py);
            d.set_item(key(py, v), inner)?;
            Ok(d.into_any())
        }
    }
}

impl<'py> ser::Serializer for Ser<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    type SerializeSeq = Seq<'py>;
    type SerializeTuple = Seq<'py>;
    type SerializeTupleStruct = Seq<'py>;
    type SerializeTupleVariant = Seq<'py>;
    type SerializeMap = Map<'py>;
    type SerializeStruct = Map<'py>;
    type SerializeStructVariant = Map<'py>;

    fn serialize_bool(self, v: bool) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_i8(self, v: i8) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_f64(self, v: f64) -> Result<Self::Ok> {
        self.any(v)
    }
    fn serialize_char(self, v: char) -> Result<Self::Ok> {
        self.any(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<Self::Ok> {
        Ok(PyString::new(self.py, v).into_any())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Self::Ok> {
        Ok(PyBytes::new(self.py, v).into_any())
    }
    fn serialize_none(self) -> Result<Self::Ok> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Self::Ok> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Self::Ok> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Self::Ok> {
        Ok(key(self.py, variant).into_any())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Self::Ok> {
        let inner = value.serialize(self)?;
        wrap(self.py, Some(variant), inner)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'py>> {
        Ok(Seq {
            py: self.py,
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'py>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq<'py>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq<'py>> {
        let mut s = self.serialize_seq(Some(len))?;
        s.variant = Some(variant);
        Ok(s)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map<'py>> {
        Ok(Map {
            py: self.py,
            dict: PyDict::new(self.py),
            next_key: None,
            buf: String::new(),
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Map<'py>> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Map<'py>> {
        let mut m = self.serialize_map(Some(len))?;
        m.variant = Some(variant);
        Ok(m)
    }
}

impl<'py> Seq<'py> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items.push(value.serialize(Ser { py: self.py })?);
        Ok(())
    }

    fn done(self) -> Result<Bound<'py, PyAny>> {
        let list = PyList::new(self.py, self.items)?;
        wrap(self.py, self.variant, list.into_any())
    }
}

/// The four list-like compound serializers all push onto a `Seq`.
macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl<'py> ser::$trait for Seq<'py> {
            type Ok = Bound<'py, PyAny>;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }
            fn end(self) -> Result<Self::Ok> {
                self.done()
            }
        }
    };
}

seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

impl<'py> Map<'py> {
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<()> {
        let v = value.serialize(Ser { py: self.py })?;
        self.dict.set_item(key(self.py, name), v)?;
        Ok(())
    }

    fn done(self) -> Result<Bound<'py, PyAny>> {
        wrap(self.py, self.variant, self.dict.into_any())
    }
}

impl<'py> ser::SerializeMap for Map<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<()> {
        // String keys (all of a record's) come from the cache, without a
        // Python string made first; other keys the long way.
        let mut name = KeyName(std::mem::take(&mut self.buf));
        let cached = k.serialize(&mut name).is_ok();
        self.buf = name.0;
        self.next_key = Some(if cached {
            key(self.py, &self.buf).into_any()
        } else {
            k.serialize(Ser { py: self.py })?
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let k = self
            .next_key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value without its key"))?;
        let v = value.serialize(Ser { py: self.py })?;
        self.dict.set_item(k, v)?;
        Ok(())
    }
    fn end(self) -> Result<Self::Ok> {
        self.done()
    }
}

/// Structs and struct variants both fill a `Map` by field name.
macro_rules! struct_impl {
    ($trait:ident) => {
        impl<'py> ser::$trait for Map<'py> {
            type Ok = Bound<'py, PyAny>;
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<()> {
                self.field(name, value)
            }
            fn end(self) -> Result<Self::Ok> {
                self.done()
            }
        }
    };
}

struct_impl!(SerializeStruct);
struct_impl!(SerializeStructVariant);

/// Copies a map key that is a string into a reused buffer; anything else
/// is declined (and serialized the long way).
struct KeyName(String);

#[derive(Debug)]
struct NotAStr;

impl Display for NotAStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a string key")
    }
}

impl std::error::Error for NotAStr {}

impl ser::Error for NotAStr {
    fn custom<T: Display>(_msg: T) -> Self {
        NotAStr
    }
}

/// Scalar methods of `KeyName` that decline.
macro_rules! decline {
    ($($name:ident($ty:ty)),* $(,)?) => {
        $(fn $name(self, _: $ty) -> std::result::Result<(), NotAStr> {
            Err(NotAStr)
        })*
    };
}

impl ser::Serializer for &mut KeyName {
    type Ok = ();
    type Error = NotAStr;
    type SerializeSeq = ser::Impossible<(), NotAStr>;
    type SerializeTuple = ser::Impossible<(), NotAStr>;
    type SerializeTupleStruct = ser::Impossible<(), NotAStr>;
    type SerializeTupleVariant = ser::Impossible<(), NotAStr>;
    type SerializeMap = ser::Impossible<(), NotAStr>;
    type SerializeStruct = ser::Impossible<(), NotAStr>;
    type SerializeStructVariant = ser::Impossible<(), NotAStr>;

    fn serialize_str(self, v: &str) -> std::result::Result<(), NotAStr> {
        self.0.clear();
        self.0.push_str(v);
        Ok(())
    }
    decline!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
    );
    fn serialize_none(self) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_unit(self) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_unit_struct(self, _: &'static str) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> std::result::Result<(), NotAStr> {
        Err(NotAStr)
    }
    fn serialize_seq(self, _: Option<usize>) -> std::result::Result<Self::SerializeSeq, NotAStr> {
        Err(NotAStr)
    }
    fn serialize_tuple(self, _: usize) -> std::result::Result<Self::SerializeTuple, NotAStr> {
        Err(NotAStr)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleStruct, NotAStr> {
        Err(NotAStr)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeTupleVariant, NotAStr> {
        Err(NotAStr)
    }
    fn serialize_map(self, _: Option<usize>) -> std::result::Result<Self::SerializeMap, NotAStr> {
        Err(NotAStr)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStruct, NotAStr> {
        Err(NotAStr)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<Self::SerializeStructVariant, NotAStr> {
        Err(NotAStr)
    }
}
