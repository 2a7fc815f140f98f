#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error_code;
mod priority;
mod setters;

pub use error_code::ErrorCode;
pub use priority::{Priority, UnknownName};
