//! Closed sets of values that the database stores as `text` (statuses, kinds, roles):
//! `text_enum!` gives the enum `as_str`, `FromStr`, `Display` and sqlx `Type`, `Encode` and
//! `Decode` as PostgreSQL `text`, so queries bind and read the enum itself instead of string
//! literals (compile-checked queries name it: `status as "status: ItemStatus"`). The
//! table's `CHECK (status in (...))` keeps the same set on the database's side.

/// A text that is none of the enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {type_name}")]
pub struct Unknown {
    pub type_name: &'static str,
    pub value: String,
}

/// Declares a text-backed enum: `text_enum! { pub enum Tracking { Bulk => "BULK", ... } }`.
/// Attributes before `enum` (docs, extra derives such as serde's) are kept.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text_enum::Unknown;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::text_enum::Unknown { type_name: stringify!($name), value: other.to_owned() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__sqlx::Type<$crate::__sqlx::Postgres> for $name {
            fn type_info() -> $crate::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::__sqlx::Type<$crate::__sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &$crate::__sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::__sqlx::Type<$crate::__sqlx::Postgres>>::compatible(ty)
            }
        }

        impl $crate::__sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> $crate::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::__sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl<'q> $crate::__sqlx::Encode<'q, $crate::__sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::__sqlx::postgres::PgArgumentBuffer,
            ) -> ::std::result::Result<$crate::__sqlx::encode::IsNull, $crate::__sqlx::error::BoxDynError> {
                <&str as $crate::__sqlx::Encode<'q, $crate::__sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> $crate::__sqlx::Decode<'r, $crate::__sqlx::Postgres> for $name {
            fn decode(
                value: $crate::__sqlx::postgres::PgValueRef<'r>,
            ) -> ::std::result::Result<Self, $crate::__sqlx::error::BoxDynError> {
                let text = <&str as $crate::__sqlx::Decode<'r, $crate::__sqlx::Postgres>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        /// A test set.
        enum Light { Red => "RED", Green => "GREEN" }
    }

    #[test]
    fn every_value_round_trips_through_its_text_and_others_are_refused() {
        for v in Light::ALL {
            assert_eq!(v.as_str().parse::<Light>(), Ok(*v));
            assert_eq!(v.to_string(), v.as_str());
        }
        let e = "BLUE".parse::<Light>().unwrap_err();
        assert_eq!(e.to_string(), "\"BLUE\" is not a Light");
    }
}
