//! A private macro that forwards the `KvStore` methods a layer does not change to its inner
//! store, so each layer only writes what it changes.

/// `forward!(inner; get_opts, scan_opts, ...)` inside an `impl KvStore for X<S>` block writes
/// each listed method as a plain call on `self.inner` (no boxing, no extra future).
macro_rules! forward {
    ($field:ident; $($method:ident),* $(,)?) => {
        $( forward!(@one $field $method); )*
    };
    (@one $f:ident info) => {
        #[inline]
        fn info(&self) -> &::kv_core::StoreInfo {
            self.$f.info()
        }
    };
    (@one $f:ident get_opts) => {
        #[inline]
        fn get_opts(
            &self,
            collection: &str,
            key: &str,
            opts: ::kv_core::GetOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<Option<::kv_core::Entry>>> + Send {
            self.$f.get_opts(collection, key, opts)
        }
    };
    (@one $f:ident get_many_opts) => {
        #[inline]
        fn get_many_opts(
            &self,
            collection: &str,
            keys: &[&str],
            opts: ::kv_core::GetOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<Vec<Option<::kv_core::Entry>>>> + Send {
            self.$f.get_many_opts(collection, keys, opts)
        }
    };
    (@one $f:ident put_opts) => {
        #[inline]
        fn put_opts(
            &self,
            collection: &str,
            key: &str,
            value: ::bytes::Bytes,
            opts: ::kv_core::PutOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
            self.$f.put_opts(collection, key, value, opts)
        }
    };
    (@one $f:ident put_many_opts) => {
        #[inline]
        fn put_many_opts(
            &self,
            collection: &str,
            entries: &[(&str, ::bytes::Bytes)],
            opts: ::kv_core::PutManyOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
            self.$f.put_many_opts(collection, entries, opts)
        }
    };
    (@one $f:ident delete_opts) => {
        #[inline]
        fn delete_opts(
            &self,
            collection: &str,
            key: &str,
            opts: ::kv_core::DeleteOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<bool>> + Send {
            self.$f.delete_opts(collection, key, opts)
        }
    };
    (@one $f:ident delete_many_opts) => {
        #[inline]
        fn delete_many_opts(
            &self,
            collection: &str,
            keys: &[&str],
            opts: ::kv_core::DeleteOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<u64>> + Send {
            self.$f.delete_many_opts(collection, keys, opts)
        }
    };
    (@one $f:ident ttl_opts) => {
        #[inline]
        fn ttl_opts(
            &self,
            collection: &str,
            key: &str,
            opts: ::kv_core::GetOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<Option<::kv_core::Ttl>>> + Send {
            self.$f.ttl_opts(collection, key, opts)
        }
    };
    (@one $f:ident scan_opts) => {
        #[inline]
        fn scan_opts(
            &self,
            collection: &str,
            opts: ::kv_core::ScanOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<::kv_core::ScanPage>> + Send {
            self.$f.scan_opts(collection, opts)
        }
    };
    (@one $f:ident collections_opts) => {
        #[inline]
        fn collections_opts(
            &self,
            opts: ::kv_core::CollectionsOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<Vec<String>>> + Send {
            self.$f.collections_opts(opts)
        }
    };
    (@one $f:ident clear_opts) => {
        #[inline]
        fn clear_opts(
            &self,
            collection: &str,
            opts: ::kv_core::ClearOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<u64>> + Send {
            self.$f.clear_opts(collection, opts)
        }
    };
    (@one $f:ident destroy_opts) => {
        #[inline]
        fn destroy_opts(
            &self,
            opts: ::kv_core::DestroyOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
            self.$f.destroy_opts(opts)
        }
    };
    (@one $f:ident cull_opts) => {
        #[inline]
        fn cull_opts(
            &self,
            opts: ::kv_core::CullOptions,
        ) -> impl ::std::future::Future<Output = ::kv_core::Result<u64>> + Send {
            self.$f.cull_opts(opts)
        }
    };
    (@one $f:ident close) => {
        #[inline]
        fn close(&self) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
            self.$f.close()
        }
    };
}
