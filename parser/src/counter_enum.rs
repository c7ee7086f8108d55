//! The shape every hot-path error shares: a fieldless `Copy` enum whose variants index a fixed
//! array of counters, each with a stable snake_case name for reports and JSON.

/// Declares a counter enum: the variants, `COUNT`, `ALL` (in index order), `index()` and
/// `name()`. Doc comments on variants are kept; the name string is what reports print.
macro_rules! counter_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in counter-index order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// How many counters an array indexed by [`Self::index`] needs.
            pub const COUNT: usize = Self::ALL.len();

            /// This variant's slot in a `[u64; Self::COUNT]` counter array.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// A stable snake_case name, as reports and JSON print it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use counter_enum;
