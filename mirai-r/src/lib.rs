//! The R bridge. (Written by the R helper.)
