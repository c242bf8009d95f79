/* Entry point of nanonext.so. The routines live in the Rust static library libnanonext_r.a
 * (crate nanonext-r); calling into it from here is also what makes the linker pull the Rust
 * objects out of the archive. */
#include <R_ext/Rdynload.h>

int nanonext_rust_init(DllInfo *dll);

void R_init_nanonext(DllInfo *dll) {
  nanonext_rust_init(dll);
}
