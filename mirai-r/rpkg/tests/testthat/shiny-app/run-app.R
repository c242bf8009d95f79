# Runs the Shiny app in this directory on 127.0.0.1 with two local daemons. Arguments: the port,
# a file to write this process's pid to, and a number of seconds after which the app stops by
# itself (a guard against being left behind). Stops on SIGINT too, resetting the daemons.
args <- commandArgs(trailingOnly = TRUE)
port <- as.integer(args[1L])
pid_file <- args[2L]
limit <- as.numeric(args[3L])
file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1L])
app_dir <- dirname(normalizePath(file))
mirai::daemons(2)
later::later(function() shiny::stopApp(), limit)
writeLines(as.character(Sys.getpid()), pid_file)
tryCatch(
  shiny::runApp(app_dir, port = port, host = "127.0.0.1", launch.browser = FALSE),
  interrupt = function(e) NULL,
  finally = mirai::daemons(0)
)
