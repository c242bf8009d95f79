/* Entry point of mirai.so. The routines live in the Rust static library libmirai_r.a
 * (crate mirai-r); calling into it from here is also what makes the linker pull the Rust
 * objects out of the archive. */
#include <R_ext/Rdynload.h>

int mirai_rust_init(DllInfo *dll);

void R_init_mirai(DllInfo *dll) {
  mirai_rust_init(dll);
}
