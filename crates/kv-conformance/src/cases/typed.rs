//! The typed API over every codec.

use kv_core::{Codec, Collection, ErrorKind, KvStoreExt};
use serde::{Deserialize, Serialize};

use super::expect_kind;
use crate::{CaseResult, Fixture};

pub(super) fn cases() -> Vec<crate::Case> {
    vec![
        case!("typed", every_codec_round_trips, Data),
        case!("typed", wrong_type_is_a_serialization_error, Data),
        case!("typed", require_reports_missing_keys, ReadOnlySafe),
        case!("typed", collection_helpers, Data, Scan),
    ]
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct User {
    name: String,
    age: u32,
    tags: Vec<String>,
    score: Option<f64>,
}

fn alice() -> User {
    User {
        name: "Alice ✓".into(),
        age: 30,
        tags: vec!["admin".into(), "".into()],
        score: Some(0.1),
    }
}

async fn every_codec_round_trips(fx: Fixture) -> CaseResult {
    for codec in [Codec::Json, Codec::Postcard, Codec::MessagePack] {
        let users: Collection<User> =
            Collection::new(fx.store().clone(), codec.name()).with_codec(codec);
        users.put("alice", &alice()).await?;
        assert_eq!(users.get("alice").await?, Some(alice()), "{codec}");
        users
            .put_many(&[("bob", alice()), ("carol", alice())], None)
            .await?;
        let got = users.get_many(&["bob", "nobody", "carol"]).await?;
        assert_eq!(got, vec![Some(alice()), None, Some(alice())], "{codec}");
    }
    Ok(())
}

async fn wrong_type_is_a_serialization_error(fx: Fixture) -> CaseResult {
    let s = fx.store();
    s.put("c", "k", &"a string").await?;
    expect_kind(s.get::<User>("c", "k").await, ErrorKind::Serialization);
    s.put_bytes("c", "garbage", vec![0xff, 0xfe, 0x00]).await?;
    for codec in [Codec::Json, Codec::Postcard, Codec::MessagePack] {
        let users: Collection<User> = Collection::new(fx.store().clone(), "c").with_codec(codec);
        expect_kind(users.get("garbage").await, ErrorKind::Serialization);
    }
    Ok(())
}

async fn require_reports_missing_keys(fx: Fixture) -> CaseResult {
    let users: Collection<User> = Collection::new(fx.store().clone(), "users");
    let err = users.require("nobody").await.expect_err("missing key");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.key(), Some("nobody"));
    assert_eq!(err.collection(), Some("users"));
    Ok(())
}

async fn collection_helpers(fx: Fixture) -> CaseResult {
    let users: Collection<User> = Collection::new(fx.store().clone(), "users");
    assert!(users.is_empty().await?);
    users.put("a", &alice()).await?;
    assert!(users.contains("a").await?);
    let made = users
        .get_or_insert_with("b", None, || async { Ok(alice()) })
        .await?;
    assert_eq!(made, alice());
    assert_eq!(users.len().await?, 2);
    let items = super::collect(users.items()).await?;
    assert_eq!(items.len(), 2);
    assert_eq!(users.pop("a").await?, Some(alice()));
    if fx.cap().clear {
        assert_eq!(users.clear().await?, 1);
    }
    Ok(())
}
