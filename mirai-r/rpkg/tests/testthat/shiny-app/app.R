# A Shiny app whose render function awaits a mirai: each session's output waits for a slow task
# (2 s) evaluated by one of two daemons. Run by run-app.R (see test-shiny.R); www/pair.html
# shows two sessions side by side in one page.
library(shiny)
library(promises)
library(mirai)

log_file <- Sys.getenv("MIRAI_SHINY_LOG")

ui <- fluidPage(
  tags$h4("mirai + Shiny"),
  tags$p("Session ", tags$b(textOutput("who", inline = TRUE))),
  tags$p(id = "res", textOutput("result", inline = TRUE))
)

server <- function(input, output, session) {
  label <- isolate(parseQueryString(session$clientData$url_search)$s)
  if (is.null(label)) label <- "?"
  output$who <- renderText(label)
  output$result <- renderText({
    # The render function returns a promise chained on the mirai: the session's output waits
    # for it while the R process stays free to serve the other session.
    m <- mirai({
      start <- Sys.time()
      Sys.sleep(2)
      list(pid = Sys.getpid(), start = as.numeric(start), end = as.numeric(Sys.time()))
    })
    m %...>% (function(v) {
      line <- sprintf("%s\t%d\t%.3f\t%.3f\t%d", label, v$pid, v$start, v$end, Sys.getpid())
      if (nzchar(log_file)) cat(line, "\n", sep = "", file = log_file, append = TRUE)
      sprintf("session %s: slow task done by daemon %d after %.1f s", label, v$pid, v$end - v$start)
    })
  })
}

shinyApp(ui, server)
