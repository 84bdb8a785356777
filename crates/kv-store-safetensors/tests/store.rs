//! Behaviour of the safetensors store beyond the conformance suite: read-only access to
//! foreign files, damaged files, export/import and bytes round trips, locking.

use std::collections::HashMap;
use std::time::Duration;

use kv_core::{Codec, Collection, ErrorKind, KvStore, KvStoreExt, PutOptions};
use kv_store_safetensors::safetensors;
use kv_store_safetensors::{
    Dtype, Durability, SafetensorsStore, Tensor, export, export_bytes, format,
};

async fn keys(store: &SafetensorsStore) -> Vec<String> {
    let opts = kv_core::ScanOptions::default()
        .keys_only()
        .with_page_size(2);
    let mut out = Vec::new();
    let mut page = store.scan_opts("", opts.clone()).await.unwrap();
    loop {
        out.extend(page.items.into_iter().map(|i| i.key));
        match page.cursor {
            Some(c) => {
                page = store
                    .scan_opts("", opts.clone().with_cursor(Some(c)))
                    .await
                    .unwrap()
            }
            None => return out,
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A model file written by the safetensors crate itself (no kv metadata).
fn foreign_file(path: &std::path::Path) -> (Tensor, Tensor) {
    let w = Tensor::from_slice(&[2, 2], &[1.0f32, -2.0, 3.5, f32::NAN]).unwrap();
    let ids = Tensor::from_slice(&[3], &[7i64, 8, 9]).unwrap();
    let bf = Tensor::new(Dtype::BF16, vec![2], vec![0x80, 0x3f, 0x00, 0x40]).unwrap();
    let meta: HashMap<String, String> = [("format".to_owned(), "pt".to_owned())].into();
    let bytes = safetensors::serialize(
        [("model.w", &w), ("ids", &ids), ("half/bf", &bf)],
        Some(meta),
    )
    .unwrap();
    std::fs::write(path, bytes).unwrap();
    (w, ids)
}

#[test]
fn read_only_store_reads_a_foreign_file_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let (w, ids) = foreign_file(&path);
    let url = format!("safetensors://{}", path.display());
    let store = SafetensorsStore::open(&url).unwrap();
    assert!(store.is_read_only());
    let cap = store.info().capability;
    assert!(cap.read_only && !cap.clear && !cap.destroy && !cap.compare_and_swap);
    assert!(!cap.ttl, "a foreign file has no TTLs");
    block_on(async {
        let got: Tensor = store.get("", "model.w").await.unwrap().unwrap();
        assert_eq!(got.dtype(), Dtype::F32);
        assert_eq!(got.data(), w.data(), "NaN survives bit for bit");
        assert_eq!(
            store.get_tensor("default_collection", "ids").unwrap(),
            Some(ids)
        );
        // A name with a slash is a plain key in a foreign file.
        let bf = store.get_tensor("", "half/bf").unwrap().unwrap();
        assert_eq!(bf.dtype(), Dtype::BF16);
        assert_eq!(keys(&store).await, ["half/bf", "ids", "model.w"]);
        assert_eq!(store.collections().await.unwrap(), ["default_collection"]);
        assert_eq!(store.get_bytes("", "missing").await.unwrap(), None);
        assert_eq!(store.get_bytes("other", "ids").await.unwrap(), None);
        let m = store.metadata().unwrap();
        assert_eq!(m.get("format").map(String::as_str), Some("pt"));
        // Every write is a ReadOnly error with context.
        let e = store.put("", "x", &1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ReadOnly, "{e}");
        assert_eq!(e.key(), Some("x"));
        assert!(e.to_string().contains("mode=rw"), "{e}");
        for e in [
            store.delete("", "ids").await.map(|_| ()).unwrap_err(),
            store.put_many("", &[("a", 1)]).await.unwrap_err(),
            store
                .delete_many("", &["ids"])
                .await
                .map(|_| ())
                .unwrap_err(),
            store.clear("").await.map(|_| ()).unwrap_err(),
            store.destroy().await.unwrap_err(),
            store.cull().await.map(|_| ()).unwrap_err(),
            store
                .put_tensor("", "t", Tensor::vector(&[1u8]))
                .unwrap_err(),
            store.set_metadata("a", Some("b".into())).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::ReadOnly, "{e}");
        }
        // Nothing changed.
        assert_eq!(store.len("").await.unwrap(), 3);
        store.close().await.unwrap();
        let e = store.get_bytes("", "ids").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed);
    });
    // The file is untouched by a read-only store.
    let again = SafetensorsStore::open_read_only(&path).unwrap();
    assert_eq!(again.metadata().unwrap().len(), 1);
}

#[test]
fn read_only_reads_fetch_data_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    foreign_file(&path);
    let store = SafetensorsStore::open_read_only(&path).unwrap();
    // Truncating the file after open: the header was read, the data was not.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 4)
        .unwrap();
    // safetensors orders data by decreasing alignment: the BF16 tensor is last.
    assert!(store.get_tensor("", "ids").unwrap().is_some());
    let e = store.get_tensor("", "half/bf").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_eq!(e.key(), Some("half/bf"));
    // Reopening now refuses the damaged file.
    let e = SafetensorsStore::open_read_only(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
}

#[test]
fn damaged_files_are_corrupt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let header = |json: &str, data: usize| {
        let mut v = (json.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(json.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data));
        v
    };
    for (what, bytes) in [
        ("huge declared header", u64::MAX.to_le_bytes().to_vec()),
        (
            "header of 99 MB in a tiny file",
            99_000_000u64.to_le_bytes().to_vec(),
        ),
        ("too short", vec![0u8; 5]),
        (
            "offsets beyond the file",
            header(
                r#"{"w":{"dtype":"U8","shape":[1000000000],"data_offsets":[0,1000000000]}}"#,
                8,
            ),
        ),
        ("not json", header("nope", 0)),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        for rw in [false, true] {
            let r = if rw {
                SafetensorsStore::open_read_write(&path)
            } else {
                SafetensorsStore::open_read_only(&path)
            };
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{what}: {e}");
            assert!(e.to_string().contains("bad.safetensors"), "{what}: {e}");
        }
        // The damaged file is left as it was.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
    let e = SafetensorsStore::open_read_only(dir.path().join("missing.safetensors")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let e =
        SafetensorsStore::open_read_write(dir.path().join("no/such/dir.safetensors")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[test]
fn tensors_are_real_tensors_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.safetensors");
    let store = SafetensorsStore::open_read_write(&path).unwrap();
    let t = Tensor::from_slice(&[2, 3], &[1i32, 2, 3, 4, 5, 6]).unwrap();
    block_on(async {
        store.put("", "t", &t).await.unwrap();
        store
            .put("", "a/b", &Tensor::vector(&[1.0f64]))
            .await
            .unwrap();
        store.put("layers", "t", &t).await.unwrap();
        store
            .put("", "json", &serde_json::json!({"x": 1}))
            .await
            .unwrap();
        store.put_bytes("", "raw", vec![1u8, 2, 3]).await.unwrap();
        // With another codec a tensor is an opaque value, still round-tripping.
        let pc: Collection<Tensor, SafetensorsStore> =
            Collection::new(store.clone(), "pc").with_codec(Codec::Postcard);
        pc.put("t", &t).await.unwrap();
        assert_eq!(pc.get("t").await.unwrap(), Some(t.clone()));
        store
            .put_opts(
                "",
                "ttl",
                Tensor::vector(&[1u8]).to_json_for_tests(),
                PutOptions::default().with_ttl(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    // Read with the safetensors crate directly.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        ["/a/b", "json", "layers/t", "pc/t", "raw", "t", "ttl"]
    );
    let v = st.tensor("t").unwrap();
    assert_eq!(v.dtype(), safetensors::Dtype::I32);
    assert_eq!(v.shape(), &[2, 3]);
    assert_eq!(v.data(), t.data().as_ref());
    let raw = st.tensor("raw").unwrap();
    assert_eq!(
        (raw.dtype(), raw.shape(), raw.data()),
        (safetensors::Dtype::U8, &[3][..], &[1u8, 2, 3][..])
    );
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta[format::META_FORMAT], format::FORMAT_VERSION);
    // Read back through the read-only store, with collections and TTLs.
    let ro = SafetensorsStore::open_read_only(&path).unwrap();
    assert!(ro.info().capability.ttl);
    block_on(async {
        assert_eq!(ro.get::<Tensor>("", "t").await.unwrap(), Some(t.clone()));
        assert_eq!(
            ro.get::<Tensor>("layers", "t").await.unwrap(),
            Some(t.clone())
        );
        assert_eq!(
            ro.get_bytes("", "raw").await.unwrap().as_deref(),
            Some(&[1u8, 2, 3][..])
        );
        assert_eq!(
            ro.get::<serde_json::Value>("", "json").await.unwrap(),
            Some(serde_json::json!({"x": 1}))
        );
        assert!(
            ro.ttl("", "ttl")
                .await
                .unwrap()
                .unwrap()
                .remaining()
                .unwrap()
                > Duration::from_secs(3000)
        );
        assert_eq!(
            ro.collections().await.unwrap(),
            ["default_collection", "layers", "pc"]
        );
        assert_eq!(keys(&ro).await, ["a/b", "json", "raw", "t", "ttl"]);
    });
}

trait ToJson {
    fn to_json_for_tests(&self) -> kv_core::Bytes;
}

impl ToJson for Tensor {
    fn to_json_for_tests(&self) -> kv_core::Bytes {
        kv_core::Bytes::from(serde_json::to_vec(self).unwrap())
    }
}

#[test]
fn export_and_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SafetensorsStore::in_memory();
    let a = Tensor::from_slice(&[2], &[1.5f32, 2.5]).unwrap();
    let b = Tensor::from_slice(&[1, 2], &[true, false]).unwrap();
    block_on(async {
        store.put("w", "layer/a", &a).await.unwrap();
        store.put("w", "b", &b).await.unwrap();
        store.put_bytes("w", "blob", vec![9u8; 5]).await.unwrap();
        store.put("other", "x", &a).await.unwrap();
        let path = dir.path().join("w.safetensors");
        assert_eq!(export(&store, "w", &path).await.unwrap(), 3);
        // A plain tensor file: names are the keys, no kv metadata.
        let bytes = std::fs::read(&path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert!(meta.metadata().is_none());
        let file = SafetensorsStore::open_read_only(&path).unwrap();
        assert_eq!(keys(&file).await, ["b", "blob", "layer/a"]);
        assert_eq!(
            file.get::<Tensor>("", "layer/a").await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(file.get_tensor("", "b").unwrap(), Some(b.clone()));
        assert_eq!(
            file.get_tensor("", "blob").unwrap(),
            Some(Tensor::from_bytes(vec![9u8; 5]))
        );
        // Import: a read-write store over the exported file, and from bytes.
        let imported =
            SafetensorsStore::from_bytes(export_bytes(&store, "w").await.unwrap()).unwrap();
        assert_eq!(
            imported.get::<Tensor>("", "layer/a").await.unwrap(),
            Some(a.clone())
        );
        // Export works from any store, e.g. the read-only one.
        assert_eq!(export_bytes(&file, "").await.unwrap(), bytes);
        // A key that cannot be a tensor name.
        store.put("bad", "__metadata__", &a).await.unwrap();
        let e = export_bytes(&store, "bad").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
    });
}

#[test]
fn whole_store_to_bytes_and_back() {
    let store = SafetensorsStore::in_memory();
    block_on(async {
        store.put("a", "k", &1).await.unwrap();
        store.put("", "__metadata__", &2).await.unwrap();
        store
            .put_with_ttl("b", "t", &"x", Duration::from_secs(600))
            .await
            .unwrap();
        store
            .put("b", "tensor", &Tensor::vector(&[1u16, 2]))
            .await
            .unwrap();
        store.set_metadata("author", Some("me".into())).unwrap();
        let v = store.get_entry("a", "k").await.unwrap().unwrap().version;
        let copy = SafetensorsStore::from_bytes(store.to_bytes().unwrap()).unwrap();
        assert_eq!(copy.get::<i32>("a", "k").await.unwrap(), Some(1));
        assert_eq!(copy.get::<i32>("", "__metadata__").await.unwrap(), Some(2));
        assert!(
            copy.ttl("b", "t")
                .await
                .unwrap()
                .unwrap()
                .remaining()
                .is_some()
        );
        assert_eq!(
            copy.get::<Tensor>("b", "tensor").await.unwrap(),
            Some(Tensor::vector(&[1u16, 2]))
        );
        assert_eq!(copy.get_entry("a", "k").await.unwrap().unwrap().version, v);
        assert_eq!(copy.metadata().unwrap()["author"], "me");
        // New versions never repeat old ones.
        copy.put("a", "k2", &1).await.unwrap();
        assert!(
            copy.get_entry("a", "k2")
                .await
                .unwrap()
                .unwrap()
                .version
                .unwrap()
                .as_u64()
                > v.unwrap().as_u64()
        );
        let e = store
            .set_metadata("kv.format", Some("9".into()))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
        assert!(SafetensorsStore::from_bytes(vec![1u8, 2, 3]).is_err());
    });
}

#[test]
fn flush_mode_writes_on_close_and_drop_and_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.safetensors");
    let store = SafetensorsStore::open_read_write(&path).unwrap();
    assert!(!store.info().capability.durable);
    let e = SafetensorsStore::open_read_write(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("locked by another process"), "{e}");
    // A reader may open it at any time (nothing written yet: no file).
    block_on(store.put("c", "k", &1)).unwrap();
    assert!(!path.exists(), "flush mode writes nothing before flush");
    store.flush().unwrap();
    assert!(SafetensorsStore::open_read_only(&path).is_ok());
    block_on(store.put("c", "k2", &2)).unwrap();
    drop(store); // best-effort write on drop, and the lock is released
    let store = SafetensorsStore::open_read_write(&path).unwrap();
    assert_eq!(block_on(store.get::<i32>("c", "k2")).unwrap(), Some(2));
    // reload() drops unflushed changes.
    block_on(store.put("c", "k3", &3)).unwrap();
    store.reload().unwrap();
    assert_eq!(block_on(store.get::<i32>("c", "k3")).unwrap(), None);
    block_on(store.close()).unwrap();
    block_on(store.close()).unwrap();
    assert_eq!(store.flush().unwrap_err().kind(), ErrorKind::Closed);
    // Immediate mode: on disk when put returns; no temp files left behind.
    let store = SafetensorsStore::builder(&path)
        .read_write()
        .durability(Durability::Immediate)
        .open()
        .unwrap();
    assert!(store.info().capability.durable);
    block_on(store.put("c", "now", &4)).unwrap();
    let ro = SafetensorsStore::open_read_only(&path).unwrap();
    assert_eq!(block_on(ro.get::<i32>("c", "now")).unwrap(), Some(4));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("kv-tmp")), "{names:?}");
}

#[test]
fn works_without_a_tokio_runtime() {
    fn poll_once<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("an operation needed a runtime"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SafetensorsStore::builder(dir.path().join("kv.safetensors"))
        .read_write()
        .durability(Durability::Immediate)
        .open()
        .unwrap();
    poll_once(store.put("c", "k", &1)).unwrap();
    assert_eq!(poll_once(store.get::<i32>("c", "k")).unwrap(), Some(1));
    poll_once(store.close()).unwrap();
    let s = SafetensorsStore::in_memory().sync();
    s.put("c", "k", &Tensor::vector(&[1i8])).unwrap();
    assert_eq!(
        s.get::<Tensor>("c", "k").unwrap(),
        Some(Tensor::vector(&[1i8]))
    );
}
