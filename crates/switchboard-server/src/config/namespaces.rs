//! Channel namespaces in the configuration file: one `[namespaces.<name>]` table each.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_hub::NamespaceOptions;
use switchboard_protocol::ChannelName;

/// One channel namespace's settings: what the channels named `<name>:…` keep and allow.
/// Every option left unset inherits the global setting (`HISTORY_SIZE`, `HISTORY_TTL_MS`)
/// or, for the switches, on.
///
/// In the configuration file:
///
/// ```toml
/// [namespaces.chat]
/// history_size = 500
/// history_ttl_ms = 3600000
/// presence = true
/// join_leave = false
/// client_publish = true
/// anonymous = false
/// recover = true
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Namespace {
    /// How many messages each channel's history keeps (`history_size`; 0 keeps none).
    pub history_size: Option<usize>,
    /// How long a message stays recoverable (`history_ttl_ms`, at least 1 ms).
    pub history_ttl: Option<Duration>,
    /// `presence`, `join_leave`, `client_publish`, `anonymous`, `recover`: see
    /// [`NamespaceOptions`].
    pub options: NamespaceOptions,
}

impl Namespace {
    /// Sets [`history_size`](Self::history_size).
    #[must_use]
    pub fn history_size(mut self, size: usize) -> Self {
        self.history_size = Some(size);
        self
    }

    /// Sets [`history_ttl`](Self::history_ttl).
    #[must_use]
    pub fn history_ttl(mut self, ttl: Duration) -> Self {
        self.history_ttl = Some(ttl);
        self
    }

    /// Sets [`options`](Self::options).
    #[must_use]
    pub fn options(mut self, options: NamespaceOptions) -> Self {
        self.options = options;
        self
    }
}

/// Why `name` cannot name a namespace, if it cannot: it must be a valid channel name
/// without `:`.
pub(crate) fn invalid_name(name: &str) -> Option<String> {
    if name.contains(':') {
        return Some(format!("namespace {name:?} must not contain ':'"));
    }
    ChannelName::new(name)
        .err()
        .map(|e| format!("namespace {name:?} is not a valid channel name prefix: {e}"))
}

/// The `namespaces` table of a configuration file; the error is the reason.
pub(crate) fn from_toml(value: toml::Value) -> Result<BTreeMap<String, Namespace>, String> {
    let toml::Value::Table(tables) = value else {
        return Err("`namespaces` must be a table of `[namespaces.<name>]` tables".into());
    };
    let mut namespaces = BTreeMap::new();
    for (name, table) in tables {
        if let Some(reason) = invalid_name(&name) {
            return Err(reason);
        }
        let toml::Value::Table(table) = table else {
            return Err(format!("`namespaces.{name}` must be a table"));
        };
        let mut namespace = Namespace::default();
        for (key, value) in table {
            let at = format!("`namespaces.{name}.{key}`");
            let switch = |value: &toml::Value| {
                value
                    .as_bool()
                    .ok_or_else(|| format!("{at} must be true or false"))
            };
            let options = &mut namespace.options;
            match key.as_str() {
                "history_size" => {
                    let size = value
                        .as_integer()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| format!("{at} must be a whole number of messages"))?;
                    namespace.history_size = Some(size);
                }
                "history_ttl_ms" => {
                    let ms = value
                        .as_integer()
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|&ms| ms >= 1)
                        .ok_or_else(|| {
                            format!("{at} must be a number of milliseconds, at least 1")
                        })?;
                    namespace.history_ttl = Some(Duration::from_millis(ms));
                }
                "presence" => options.presence = Some(switch(&value)?),
                "join_leave" => options.join_leave = Some(switch(&value)?),
                "client_publish" => options.client_publish = Some(switch(&value)?),
                "anonymous" => options.anonymous = Some(switch(&value)?),
                "recover" => options.recover = Some(switch(&value)?),
                _ => {
                    return Err(format!(
                        "unknown namespace option {at} (the options: history_size, \
                         history_ttl_ms, presence, join_leave, client_publish, anonymous, recover)"
                    ));
                }
            }
        }
        namespaces.insert(name, namespace);
    }
    Ok(namespaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, Namespace>, String> {
        let mut table: toml::Table = text.parse().unwrap();
        from_toml(table.remove("namespaces").unwrap())
    }

    #[test]
    fn each_table_sets_its_options_and_leaves_the_rest_unset() {
        let namespaces = parse(
            "[namespaces.chat]\nhistory_size = 500\nhistory_ttl_ms = 60000\njoin_leave = false\n\
             [namespaces.live]\nrecover = false\nanonymous = true\n",
        )
        .unwrap();
        let chat = &namespaces["chat"];
        assert_eq!(chat.history_size, Some(500));
        assert_eq!(chat.history_ttl, Some(Duration::from_secs(60)));
        assert_eq!(chat.options, NamespaceOptions::default().join_leave(false));
        let live = &namespaces["live"];
        assert_eq!((live.history_size, live.history_ttl), (None, None));
        assert_eq!(
            live.options,
            NamespaceOptions::default().recover(false).anonymous(true)
        );
    }

    #[test]
    fn bad_names_values_and_keys_are_refused_with_where_they_are() {
        for (text, needle) in [
            ("[namespaces.\"a:b\"]\n", "must not contain ':'"),
            ("[namespaces.\"a b\"]\n", "not a valid channel name"),
            (
                "[namespaces.chat]\nhistory_size = -1\n",
                "namespaces.chat.history_size",
            ),
            ("[namespaces.chat]\nhistory_ttl_ms = 0\n", "at least 1"),
            ("[namespaces.chat]\npresence = \"yes\"\n", "true or false"),
            (
                "[namespaces.chat]\nhistory = 5\n",
                "unknown namespace option",
            ),
            ("namespaces = 3\n", "must be a table"),
            (
                "[namespaces]\nchat = 1\n",
                "`namespaces.chat` must be a table",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
