suppressPackageStartupMessages({library(mirai); library(parallel)})
daemons(1); cl <- makePSOCKcluster(1)
for (i in 1:200) { mirai(1)[]; clusterCall(cl, function() 1) }
now <- function() as.numeric(Sys.time())
x <- numeric(5000); y <- numeric(5000); e <- numeric(5000)
for (i in 1:5000) { t <- now(); mirai(1)[]; x[i] <- now() - t; t <- now(); clusterCall(cl, function() 1); y[i] <- now() - t; t <- now(); e[i] <- now() - t }
q <- function(v) round(quantile(v * 1e6, c(.1, .25, .5, .75, .9, .99)), 1)
print(rbind(mirai = q(x), psock = q(y), timer = q(e)))
daemons(0); stopCluster(cl)
