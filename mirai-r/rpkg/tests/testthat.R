library(testthat)
library(mirai)

test_check("mirai")
