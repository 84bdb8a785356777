//! For layers that do the same thing around every operation — a deadline, a retry loop, a
//! permit, a token, a fault — whatever the operation is: the layer writes one
//! `async fn around(&self, call: Call<'_>, run: F) -> Result<T>` and [`around!`] writes the
//! `KvStore` impl that sends every operation through it.

use kv_core::Operation;

/// An operation as a layer sees it before running it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call<'a> {
    /// Which operation.
    pub op: Operation,
    /// Its collection, if it has one.
    pub collection: Option<&'a str>,
    /// Its key, if it names exactly one.
    pub key: Option<&'a str>,
    /// How many keys or entries it names: the batch size of a batch, 1 otherwise.
    pub items: usize,
    /// A conditional put (if-absent, if-version): running it twice is not the same as once.
    pub conditional: bool,
}

/// `around!(Layer { get_opts, put_opts, ... } forward { info, close })` writes
/// `impl<S: KvStore> KvStore for Layer<S>`: each method in braces becomes
/// `self.around(call, move || self.inner.method(args...))` — the closure may be called again
/// (a retry), so it clones the options (and the value's `Bytes` handle) for each call — and
/// each method after `forward` goes straight to the inner store.
macro_rules! around {
    ($ty:ident { $($method:ident),* $(,)? } forward { $($fwd:ident),* $(,)? }) => {
        impl<S: ::kv_core::KvStore> ::kv_core::KvStore for $ty<S> {
            $( around!(@one $method); )*
            forward!(inner; $($fwd),*);
        }
    };
    (@call $op:ident, $c:expr, $k:expr, $n:expr) => {
        $crate::around::Call {
            op: ::kv_core::Operation::$op,
            collection: $c,
            key: $k,
            items: $n,
            conditional: false,
        }
    };
    (@one get_opts) => {
        async fn get_opts(
            &self,
            collection: &str,
            key: &str,
            opts: ::kv_core::GetOptions,
        ) -> ::kv_core::Result<Option<::kv_core::Entry>> {
            let call = around!(@call Get, Some(collection), Some(key), 1);
            self.around(call, move || self.inner.get_opts(collection, key, opts.clone()))
            .await
        }
    };
    (@one get_many_opts) => {
        async fn get_many_opts(
            &self,
            collection: &str,
            keys: &[&str],
            opts: ::kv_core::GetOptions,
        ) -> ::kv_core::Result<Vec<Option<::kv_core::Entry>>> {
            let call = around!(@call GetMany, Some(collection), None, keys.len());
            self.around(call, move || self.inner.get_many_opts(collection, keys, opts.clone()))
            .await
        }
    };
    (@one put_opts) => {
        async fn put_opts(
            &self,
            collection: &str,
            key: &str,
            value: ::bytes::Bytes,
            opts: ::kv_core::PutOptions,
        ) -> ::kv_core::Result<()> {
            let call = $crate::around::Call {
                conditional: !matches!(opts.mode, ::kv_core::PutMode::Upsert),
                ..around!(@call Put, Some(collection), Some(key), 1)
            };
            self.around(call, move || {
                self.inner.put_opts(collection, key, value.clone(), opts.clone())
            })
            .await
        }
    };
    (@one put_many_opts) => {
        async fn put_many_opts(
            &self,
            collection: &str,
            entries: &[(&str, ::bytes::Bytes)],
            opts: ::kv_core::PutManyOptions,
        ) -> ::kv_core::Result<()> {
            let call = around!(@call PutMany, Some(collection), None, entries.len());
            self.around(call, move || self.inner.put_many_opts(collection, entries, opts.clone()))
            .await
        }
    };
    (@one delete_opts) => {
        async fn delete_opts(
            &self,
            collection: &str,
            key: &str,
            opts: ::kv_core::DeleteOptions,
        ) -> ::kv_core::Result<bool> {
            let call = around!(@call Delete, Some(collection), Some(key), 1);
            self.around(call, move || self.inner.delete_opts(collection, key, opts.clone()))
            .await
        }
    };
    (@one delete_many_opts) => {
        async fn delete_many_opts(
            &self,
            collection: &str,
            keys: &[&str],
            opts: ::kv_core::DeleteOptions,
        ) -> ::kv_core::Result<u64> {
            let call = around!(@call DeleteMany, Some(collection), None, keys.len());
            self.around(call, move || self.inner.delete_many_opts(collection, keys, opts.clone()))
            .await
        }
    };
    (@one ttl_opts) => {
        async fn ttl_opts(
            &self,
            collection: &str,
            key: &str,
            opts: ::kv_core::GetOptions,
        ) -> ::kv_core::Result<Option<::kv_core::Ttl>> {
            let call = around!(@call Ttl, Some(collection), Some(key), 1);
            self.around(call, move || self.inner.ttl_opts(collection, key, opts.clone()))
            .await
        }
    };
    (@one scan_opts) => {
        async fn scan_opts(
            &self,
            collection: &str,
            opts: ::kv_core::ScanOptions,
        ) -> ::kv_core::Result<::kv_core::ScanPage> {
            let call = around!(@call Scan, Some(collection), None, 1);
            self.around(call, move || self.inner.scan_opts(collection, opts.clone()))
            .await
        }
    };
    (@one collections_opts) => {
        async fn collections_opts(
            &self,
            opts: ::kv_core::CollectionsOptions,
        ) -> ::kv_core::Result<Vec<String>> {
            let call = around!(@call Collections, None, None, 1);
            self.around(call, move || self.inner.collections_opts(opts.clone()))
            .await
        }
    };
    (@one clear_opts) => {
        async fn clear_opts(
            &self,
            collection: &str,
            opts: ::kv_core::ClearOptions,
        ) -> ::kv_core::Result<u64> {
            let call = around!(@call Clear, Some(collection), None, 1);
            self.around(call, move || self.inner.clear_opts(collection, opts.clone()))
            .await
        }
    };
    (@one destroy_opts) => {
        async fn destroy_opts(
            &self,
            opts: ::kv_core::DestroyOptions,
        ) -> ::kv_core::Result<()> {
            let call = around!(@call Destroy, None, None, 1);
            self.around(call, move || self.inner.destroy_opts(opts.clone()))
            .await
        }
    };
    (@one cull_opts) => {
        async fn cull_opts(
            &self,
            opts: ::kv_core::CullOptions,
        ) -> ::kv_core::Result<u64> {
            let call = around!(@call Cull, None, None, 1);
            self.around(call, move || self.inner.cull_opts(opts.clone()))
            .await
        }
    };
    (@one close) => {
        async fn close(&self) -> ::kv_core::Result<()> {
            let call = around!(@call Close, None, None, 1);
            self.around(call, move || self.inner.close())
            .await
        }
    };
}
