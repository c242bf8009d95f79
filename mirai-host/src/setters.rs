//! `setters!`: the `with_*` builder methods of the config structs (`HostConfig`,
//! `SessionConfig`, `RepairPolicy`, `SubmitOptions`), each setting one field and returning the
//! struct, written once here instead of by hand for every field.

/// Inside an `impl`, one `#[must_use] pub fn with_x(mut self, x: T) -> Self` for each
/// `/// doc with_x(x: T);` entry, setting the field `x`.
macro_rules! setters {
    ($($(#[$doc:meta])* $with:ident($field:ident: $ty:ty);)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $with(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}
