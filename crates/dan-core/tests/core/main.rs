//! Integration tests of the protocol core: golden vectors and properties.

mod attacks;
mod causal;
mod evidence;
mod golden;
mod governance;
mod properties;
mod support;
