//! [`impl_kv_store!`](crate::impl_kv_store): the `KvStore` impl of a store built on [`Core`](crate::Core).

/// Implements `kv_core::KvStore` for a store type that holds its `StoreInfo` and its
/// [`Core`](crate::Core): every operation resolves the collection name and calls the core.
/// (A macro, not a blanket impl: `KvStore` is kv-core's trait and the store type is yours.)
///
/// ```
/// use kv_core::StoreInfo;
/// use kv_engine::{Core, Engine, Visit, WriteOp};
///
/// # struct MyEngine;
/// # impl Engine for MyEngine {
/// #     const ORDERED: bool = true;
/// #     fn get(&mut self, _: &[u8]) -> kv_core::Result<Option<Vec<u8>>> { Ok(None) }
/// #     fn write(&mut self, _: Vec<WriteOp>) -> kv_core::Result<()> { Ok(()) }
/// #     fn range(&mut self, _: &[u8], _: &[u8], _: Visit<'_>) -> kv_core::Result<()> { Ok(()) }
/// #     fn close(&mut self) -> kv_core::Result<()> { Ok(()) }
/// # }
/// struct MyStore {
///     info: StoreInfo,
///     core: Core<MyEngine>,
/// }
///
/// kv_engine::impl_kv_store!(MyStore, info: info, core: core);
/// ```
#[macro_export]
macro_rules! impl_kv_store {
    ($store:ty, info: $($info:ident).+, core: $($core:ident).+ $(,)?) => {
        impl ::kv_core::KvStore for $store {
            fn info(&self) -> &::kv_core::StoreInfo {
                &self.$($info).+
            }

            fn get_opts(
                &self,
                collection: &str,
                key: &str,
                _opts: ::kv_core::GetOptions,
            ) -> impl ::std::future::Future<
                Output = ::kv_core::Result<::std::option::Option<::kv_core::Entry>>,
            > + Send {
                self.$($core).+.get(self.$($info).+.resolve(collection), key)
            }

            fn get_many_opts(
                &self,
                collection: &str,
                keys: &[&str],
                _opts: ::kv_core::GetOptions,
            ) -> impl ::std::future::Future<
                Output = ::kv_core::Result<::std::vec::Vec<::std::option::Option<::kv_core::Entry>>>,
            > + Send {
                self.$($core).+.get_many(self.$($info).+.resolve(collection), keys)
            }

            fn put_opts(
                &self,
                collection: &str,
                key: &str,
                value: ::kv_core::Bytes,
                opts: ::kv_core::PutOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
                self.$($core).+.put(self.$($info).+.resolve(collection), key, value, opts.ttl, opts.mode)
            }

            fn put_many_opts(
                &self,
                collection: &str,
                entries: &[(&str, ::kv_core::Bytes)],
                opts: ::kv_core::PutManyOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
                self.$($core).+.put_many(self.$($info).+.resolve(collection), entries, opts.ttl)
            }

            fn delete_opts(
                &self,
                collection: &str,
                key: &str,
                _opts: ::kv_core::DeleteOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<bool>> + Send {
                self.$($core).+.delete(self.$($info).+.resolve(collection), key)
            }

            fn delete_many_opts(
                &self,
                collection: &str,
                keys: &[&str],
                _opts: ::kv_core::DeleteOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<u64>> + Send {
                self.$($core).+.delete_many(self.$($info).+.resolve(collection), keys)
            }

            fn ttl_opts(
                &self,
                collection: &str,
                key: &str,
                _opts: ::kv_core::GetOptions,
            ) -> impl ::std::future::Future<
                Output = ::kv_core::Result<::std::option::Option<::kv_core::Ttl>>,
            > + Send {
                self.$($core).+.ttl(self.$($info).+.resolve(collection), key)
            }

            fn scan_opts(
                &self,
                collection: &str,
                opts: ::kv_core::ScanOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<::kv_core::ScanPage>> + Send
            {
                self.$($core).+.scan(self.$($info).+.resolve(collection), opts)
            }

            fn collections_opts(
                &self,
                _opts: ::kv_core::CollectionsOptions,
            ) -> impl ::std::future::Future<
                Output = ::kv_core::Result<::std::vec::Vec<::std::string::String>>,
            > + Send {
                self.$($core).+.collections()
            }

            fn clear_opts(
                &self,
                collection: &str,
                _opts: ::kv_core::ClearOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<u64>> + Send {
                self.$($core).+.clear(self.$($info).+.resolve(collection))
            }

            fn destroy_opts(
                &self,
                _opts: ::kv_core::DestroyOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
                self.$($core).+.destroy()
            }

            fn cull_opts(
                &self,
                _opts: ::kv_core::CullOptions,
            ) -> impl ::std::future::Future<Output = ::kv_core::Result<u64>> + Send {
                self.$($core).+.cull()
            }

            fn close(&self) -> impl ::std::future::Future<Output = ::kv_core::Result<()>> + Send {
                self.$($core).+.close()
            }
        }
    };
}
