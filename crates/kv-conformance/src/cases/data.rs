//! py-key-value's data cases (`tests/shared/cases.py`): every JSON shape survives a round trip
//! through the typed API, plus the large-data cases.

use kv_core::KvStoreExt;
use serde_json::{Value, json};

use crate::{CaseResult, Fixture};

async fn round_trip(fx: Fixture, value: Value) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &value).await?;
    let back: Option<Value> = s.get("c", "k").await?;
    assert_eq!(back.as_ref(), Some(&value), "value changed in a round trip");
    // The batch path must agree with the single-key path.
    s.put_many("c", &[("k2", value.clone())]).await?;
    let back: Vec<Option<Value>> = s.get_many("c", &["k2"]).await?;
    assert_eq!(
        back,
        vec![Some(value)],
        "value changed in a batch round trip"
    );
    Ok(())
}

macro_rules! data_cases {
    ($($name:ident => $value:expr),* $(,)?) => {
        $(
            async fn $name(fx: Fixture) -> CaseResult {
                round_trip(fx, $value).await
            }
        )*
        pub(super) fn cases() -> Vec<crate::Case> {
            vec![$(case!("data", $name, Data)),*]
        }
    };
}

data_cases! {
    null_value => json!({"null_key": null}),
    null_list => json!({"null_list": [null, null, null]}),
    null_nested => json!({"nested": {"null_key": null, "inner": {"n": null}}}),
    null_as_key => json!({"null": "value"}),
    null_as_string => json!({"key": "null"}),
    bool_true => json!({"bool_true": true}),
    bool_false => json!({"bool_false": false}),
    bool_list => json!({"bools": [true, false, true]}),
    bool_nested => json!({"nested": {"t": true, "f": false}}),
    bool_as_key => json!({"true": "value"}),
    bool_as_string => json!({"key": "true"}),
    int_one => json!({"int": 1}),
    int_negative => json!({"int": -42}),
    int_large => json!({"int": 1_000_000_000_000_000_000_i64}),
    int_extremes => json!({"min": i64::MIN, "max": u64::MAX}),
    int_as_key => json!({"1": "value"}),
    int_as_string => json!({"key": "1"}),
    float_one => json!({"float": 1.0}),
    float_precise => json!({"float": 1.234_567_890_123_45e10}),
    float_small_and_negative => json!({"small": 1e-5, "neg": -0.5, "tiny": 5e-324}),
    float_as_key => json!({"1.0": "value"}),
    float_as_string => json!({"key": "1.0"}),
    string_plain => json!({"string": "hello world"}),
    string_1kib => json!({"string": "x".repeat(1024)}),
    string_unicode => json!({"unicode_key": "Hello 世界 🌍 émojis"}),
    string_control_chars => json!({"string": "Line1\nLine2\tTabbed\r\u{0}\u{7f}"}),
    string_escapes => json!({"string": "quote \" backslash \\ slash / "}),
    uuid_like_key => json!({"550e8400-e29b-41d4-a716-446655440000": "value"}),
    uuid_like_value => json!({"id": "550e8400-e29b-41d4-a716-446655440000"}),
    empty_object => json!({}),
    empty_containers => json!({"list": [], "object": {}, "string": ""}),
    mixed_array => json!({"mixed": [1, "x", null, true, 2.5, {"a": [1]}]}),
    deep_nesting => json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": [[[[1]]]]}}}}}}}),
    large_string_10k => json!({"large": "a".repeat(10_000)}),
    large_int => json!({"large": 1_000_000_000_000_000_000_i64}),
    large_float => json!({"large": 1.234_567_890_123_45e10}),
    large_list_1000 => json!({"large": (0..1000).collect::<Vec<i32>>()}),
    non_object_top_level => json!([1, 2, 3]),
    scalar_top_level => json!("just a string"),
}
