//! Error codes as R shows them: `"<code> | <text>"` from the engine's one table
//! (`mirai_proto::ErrorCode`), so that R prints the same texts the engine logs and traces.

use mirai::proto::ErrorCode;
use mirai_rapi::{RError, RResult, Scope, Sexp};

/// `.Call(mirai_error_text, code)` → `"<code> | <text>"` for a single integer code (not `NA`);
/// R handles what is not a code before calling.
pub(crate) fn mirai_error_text<'a>(s: &'a Scope, code: Sexp<'a>) -> RResult<Sexp<'a>> {
    let code = match code.ints() {
        Some([c]) if *c != i32::MIN => *c,
        _ => return Err(RError::from("`code` must be a single integer, not NA")),
    };
    Ok(s.string(&ErrorCode::from_code(code).to_string()))
}
