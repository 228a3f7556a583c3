//! Arbitrary JSON for the property tests of parsers of JSON from outside (Pebble's
//! replies, `config-get`, remote databags). Needs `property.rs` as `mod property`.

#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use crate::property::text_or;

/// Any scalar, strings drawn from `strings` or arbitrary text.
pub fn scalar(strings: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => prop_oneof![Just(0.0), Just(-0.0), Just(1e308), Just(-1e-308), any::<f64>()]
            .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        4 => text_or(strings).prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value up to a few levels deep, object keys mostly from `keys` (so typed
/// parsers get past their first field).
pub fn json(
    keys: &'static [&'static str],
    strings: &'static [&'static str],
) -> BoxedStrategy<Value> {
    scalar(strings)
        .prop_recursive(4, 48, 8, move |inner| {
            prop_oneof![
                1 => proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                3 => object(keys, inner),
            ]
        })
        .boxed()
}

/// An object with keys mostly from `keys` and values from `values`.
pub fn object(
    keys: &'static [&'static str],
    values: impl Strategy<Value = Value> + 'static,
) -> BoxedStrategy<Value> {
    proptest::collection::vec((text_or(keys), values), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
        .boxed()
}
