//! Integration tests of the protocol core: golden vectors and properties.

mod attacks;
mod evidence;
mod golden;
mod governance;
mod properties;
mod support;
