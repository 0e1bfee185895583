//! The stored names of the vocabulary enums (KV types, categories, engines, devices, stop
//! reasons, priorities, ...): each enum's `as_str` is its one spelling, and [`named_enum!`]
//! derives `ALL`, `Display` and `FromStr` from it, so a name read back from a database or a
//! report becomes the enum again instead of being compared as a string.

/// Implements `ALL`, `Display` and `FromStr` for a fieldless enum with
/// `fn as_str(self) -> &'static str`.
#[macro_export]
macro_rules! named_enum {
    ($ty:ident, $what:literal, [$($variant:ident),+ $(,)?]) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::names::UnknownName {
                        what: $what,
                        name: s.to_owned(),
                        known: Self::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

/// A name none of an enum's values has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` (known: {})", known.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub known: Vec<&'static str>,
}

#[cfg(test)]
mod tests {
    use crate::measure::StopReason;
    use crate::scenario::{BackendKind, Category, Device, KvType};
    use crate::schedule::{Priority, Rejection};

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for &v in all {
            assert_eq!(v.to_string().parse::<T>().expect("its own name"), v);
        }
    }

    #[test]
    fn every_name_reads_back_as_its_value_and_others_are_refused() {
        round_trips(KvType::ALL);
        round_trips(Category::ALL);
        round_trips(BackendKind::ALL);
        round_trips(Device::ALL);
        round_trips(StopReason::ALL);
        round_trips(Priority::ALL);
        round_trips(Rejection::ALL);
        round_trips(crate::goodput::SweepEnd::ALL);
        let err = "q6_k".parse::<KvType>().expect_err("no such KV type");
        assert_eq!(
            err.to_string(),
            "unknown KV cache type `q6_k` (known: f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1)"
        );
        assert!("F16".parse::<KvType>().is_err(), "names are exact");
        assert_eq!(Category::ALL.len(), 7);
    }
}
