//! Values as written in configuration files (`10GiB`, `100Gbit/s`, `15min`), for serde: the
//! simulator's scenarios and the node's TOML accept exactly the same forms.

use super::{BitRate, Duration, UnitError, parse_duration, parse_rate, parse_size};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A byte size: an integer or a string with a unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

/// A rate: a string with a unit (`10Gbit/s`); bits and bytes are too easy to confuse to allow
/// a bare number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate(pub BitRate);

/// A span of time: a string with a unit (`20ms`, `1h`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

// Written in forms that read back exactly (bytes, bits per second, nanoseconds), for tools
// that generate configuration files.
impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}
impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}bit/s", self.0.0))
    }
}
impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ns", self.0.0))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, e.g. 4096, \"500MB\" or \"10GiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v).map(Size).map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes a string through a `FromStr` whose error says what was expected.
fn from_str_de<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr> Visitor<'_> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, std::marker::PhantomData))
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d, "a rate with a unit, e.g. \"10Gbit/s\"")
    }
}
impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_rate(s).map(Rate)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_de(d, "a duration with a unit, e.g. \"20ms\" or \"1h\"")
    }
}
impl FromStr for Span {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Span)
    }
}

/// A value read with its `FromStr` (tiers, policy names), kept with the text it came from: new
/// core policies and strategies are accepted from scenario files as soon as the core parses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed<T>(pub T, pub String);

impl<T: FromStr> Parsed<T>
where
    T::Err: fmt::Display,
{
    /// Parses a built-in default (which must be valid).
    pub fn known(text: &str) -> Self {
        match text.parse() {
            Ok(v) => Parsed(v, text.to_string()),
            Err(e) => panic!("built-in default `{text}` does not parse: {e}"),
        }
    }
}

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: String = from_str_de(d, "a name")?;
        let value = text.parse().map_err(de::Error::custom)?;
        Ok(Parsed(value, text))
    }
}
