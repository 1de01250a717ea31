//! Typed ids: a `ShopId` cannot be passed where a `ProductId` is expected.

/// Declares a UUID-backed id type with serde, sqlx and OpenAPI support.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                 serde::Serialize, serde::Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7), friendly to B-tree indexes.
            pub fn new() -> Self { Self(uuid::Uuid::now_v7()) }
            pub fn as_uuid(&self) -> &uuid::Uuid { &self.0 }
        }
        impl Default for $name { fn default() -> Self { Self::new() } }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { self.0.fmt(f) }
        }
        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { uuid::Uuid::parse_str(s).map(Self) }
        }
        impl From<uuid::Uuid> for $name { fn from(u: uuid::Uuid) -> Self { Self(u) } }
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(/// A user of any role.
    UserId);
typed_id!(/// A shop (tenant).
    ShopId);
typed_id!(/// A catalog product.
    ProductId);
typed_id!(/// A sales order.
    OrderId);
typed_id!(/// A stock reservation.
    ReservationId);
typed_id!(/// A customer wallet.
    WalletId);
