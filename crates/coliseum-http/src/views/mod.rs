//! Views: the body of every read, built by one function from its request.
//! The REST handler serves it, and so will everything else that serves the
//! same data (the live push, reports): "the same body as the REST read"
//! holds by construction. A view's request is read and checked against the
//! caller once; its body is a typed, serializable value.

pub mod kpis;
