//! L'Ecuyer-CMRG streams, as R's `parallel::nextRNGStream`. (Filled in by the host helper.)
