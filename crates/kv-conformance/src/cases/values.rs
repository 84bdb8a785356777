//! Raw values: empty, binary, large, and the size limit.

use kv_core::{Bytes, ErrorKind, KvStore, KvStoreExt};

use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("values", empty_value, Data),
        case!("values", every_byte_value, Data),
        case!("values", one_kib_value, Data),
        case!("values", ten_mib_value, Data),
        case!("values", overwrite_large_with_small, Data),
        case!("values", value_size_limit_is_enforced_cleanly, ValueLimit),
        case!("values", values_are_not_shared_between_keys, Data),
    ]
}

async fn round_trip(fx: &Fixture, key: &str, value: Bytes) -> CaseResult {
    let s = fx.store();
    s.put_bytes("c", key, value.clone()).await?;
    let back = s.get_bytes("c", key).await?;
    assert_eq!(
        back.as_ref().map(Bytes::len),
        Some(value.len()),
        "length of {key}"
    );
    assert!(back == Some(value), "bytes of {key} changed");
    Ok(())
}

async fn empty_value(fx: Fixture) -> CaseResult {
    round_trip(&fx, "empty", Bytes::new()).await?;
    // An empty value is a value, not a miss.
    assert!(fx.store().exists("c", "empty").await?);
    Ok(())
}

async fn every_byte_value(fx: Fixture) -> CaseResult {
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    round_trip(&fx, "binary", Bytes::from(all)).await?;
    // Bytes that look like an envelope header or JSON must come back untouched too.
    round_trip(&fx, "magic", Bytes::from_static(&[0xC1, 0x01, 0x07, 0, 0])).await?;
    round_trip(
        &fx,
        "json",
        Bytes::from_static(br#"{"value": 1, "version": 1}"#),
    )
    .await
}

async fn one_kib_value(fx: Fixture) -> CaseResult {
    round_trip(&fx, "k", Bytes::from(vec![b'x'; 1024])).await
}

fn pattern(n: usize) -> Bytes {
    Bytes::from((0..n).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
}

async fn ten_mib_value(fx: Fixture) -> CaseResult {
    let n = 10 * 1024 * 1024;
    match fx.cap().max_value_len {
        Some(max) if max < n => {
            let r = fx.store().put_bytes("c", "big", pattern(n)).await;
            match r {
                Err(e) => assert_eq!(e.kind(), ErrorKind::ValueTooLarge, "{e}"),
                Ok(()) => panic!("a value above max_value_len ({max}) was accepted"),
            }
            round_trip(&fx, "fits", pattern(max.min(n))).await
        }
        _ => round_trip(&fx, "big", pattern(n)).await,
    }
}

async fn overwrite_large_with_small(fx: Fixture) -> CaseResult {
    let big = fx
        .cap()
        .max_value_len
        .unwrap_or(usize::MAX)
        .min(1024 * 1024);
    round_trip(&fx, "k", pattern(big)).await?;
    round_trip(&fx, "k", Bytes::from_static(b"small")).await
}

async fn value_size_limit_is_enforced_cleanly(fx: Fixture) -> CaseResult {
    let max = fx
        .cap()
        .max_value_len
        .expect("the ValueLimit need guarantees a limit");
    let r = fx.store().put_bytes("c", "k", pattern(max + 1)).await;
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ValueTooLarge, "{e}");
            assert_eq!(e.key(), Some("k"), "the error names the key: {e}");
        }
        Ok(()) => panic!("a value above max_value_len ({max}) was accepted"),
    }
    if fx.cap().stores_data {
        assert_eq!(fx.store().get_bytes("c", "k").await?, None);
    }
    Ok(())
}

async fn values_are_not_shared_between_keys(fx: Fixture) -> CaseResult {
    let s = fx.store();
    let v = Bytes::from_static(b"same");
    s.put_bytes("c", "a", v.clone()).await?;
    s.put_bytes("c", "b", v).await?;
    s.put_bytes("c", "a", Bytes::from_static(b"changed"))
        .await?;
    assert_eq!(
        s.get_bytes("c", "b").await?,
        Some(Bytes::from_static(b"same"))
    );
    let info = s.info();
    assert!(!info.kind.is_empty());
    Ok(())
}
