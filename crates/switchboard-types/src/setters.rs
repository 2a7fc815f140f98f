//! The by-value setters of the switchboard crates' configuration types.

/// Writes one by-value setter per listed field of a configuration struct: `name(value)`
/// sets `self.name` and returns `self`, marked `#[must_use]`, with the doc comment given.
/// Invoked inside the struct's `impl` block, so every configuration type of the
/// workspace (`TransportConfig`, `RedisBackplaneConfig`, `ServerConfig`) has the same
/// builder shape from one definition.
///
/// Support for the switchboard crates, not a stable API of its own.
///
/// ```
/// pub struct Config {
///     pub retries: u32,
///     pub name: String,
/// }
///
/// impl Config {
///     switchboard_types::setters! {
///         /// Sets [`Config::retries`].
///         retries: u32,
///         /// Sets [`Config::name`].
///         name: String,
///     }
/// }
///
/// let config = Config { retries: 0, name: String::new() }.retries(3).name("a".into());
/// assert_eq!((config.retries, config.name.as_str()), (3, "a"));
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}
