library(testthat)
library(nanonext)

test_check("nanonext")
