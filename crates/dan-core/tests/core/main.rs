//! Integration tests of the protocol core: golden vectors and properties.

mod attacks;
mod causal;
mod checkpoint;
mod evidence;
mod golden;
mod governance;
mod properties;
mod support;
