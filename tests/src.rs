//! Cross-layer tests of the mirai engine: real hosts, real daemon processes (the `test-daemon`
//! binary of this package, `mirai-daemon` with its built-in evaluator) and both transport
//! backends. The tests live in `tests/`; this library is empty.
