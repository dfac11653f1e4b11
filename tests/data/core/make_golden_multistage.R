# Golden values for multistage designs beyond the api data (tests/survey/test_multistage_golden.py).
# Run from the repository root:  Rscript tests/data/core/make_golden_multistage.R
# R 4.2.2 Patched (2022-11-10 r83330), survey 4.1.1; options(digits = 15); values via sprintf("%.17g").
options(digits = 15)
suppressMessages(library(survey))
set.seed(20261129)
# 6 strata; 3-6 PSUs each (ids restart at 1 within a stratum); 2-4 SSUs per PSU; 2-5 households per SSU
rows <- list()
for (h in 1:6) {
  np <- sample(3:6, 1)
  for (p in 1:np) {
    ns <- sample(2:4, 1)
    for (s in 1:ns) {
      nh <- sample(2:5, 1)
      rows[[length(rows) + 1]] <- data.frame(st = h, psu_in = p, ssu = s, hh = seq_len(nh), np = np, ns = ns, nh = nh)
    }
  }
}
df <- do.call(rbind, rows)
df$psu <- df$st * 100 + df$psu_in
df$N1 <- df$np * 4 + df$st               # PSUs in the stratum
df$N2 <- df$ns * 3                        # SSUs in the PSU
df$N3 <- df$nh * 10                       # households in the SSU
df$f1 <- df$np / df$N1                    # the same as fractions
df$sst <- ifelse(df$ssu <= 2, "a", "b")   # a stratum at stage 2 (within PSU)
df$N2s <- ifelse(df$sst == "a", 6, 7)     # SSUs per stage-2 stratum
df$w <- (df$N1 / df$np) * (df$N2 / df$ns) * (df$N3 / df$nh)
df$y1 <- round(rnorm(nrow(df), 50 + 3 * df$st, 10), 3)
df$y2 <- round(rexp(nrow(df), 1 / 200), 3)
df$y2[sample(nrow(df), 15)] <- NA
df$dom <- sample(c("p", "q", "r"), nrow(df), replace = TRUE, prob = c(0.5, 0.4, 0.1))
df$dom[df$st == 6] <- "p"                 # a domain absent from a whole stratum
df$Ncert <- ifelse(df$st == 1, df$np, df$N1)   # stratum 1: every PSU taken (certainty)
write.csv(df, "tests/data/core/multistage.csv", row.names = FALSE)
df <- read.csv("tests/data/core/multistage.csv")

out <- list()
g <- function(x) sprintf("%.17g", x)
add <- function(design, stat, variable, domain, est, se) {
  out[[length(out) + 1]] <<- data.frame(design = design, stat = stat, variable = variable,
    domain = as.character(domain), estimate = g(est), se = g(se), stringsAsFactors = FALSE)
}
run <- function(name, d) {
  for (v in c("y1", "y2")) {
    f <- as.formula(paste0("~", v))
    r <- svymean(f, d, na.rm = TRUE); add(name, "mean", v, "", coef(r), SE(r))
    r <- svytotal(f, d, na.rm = TRUE); add(name, "total", v, "", coef(r), SE(r))
    b <- svyby(f, ~dom, d, svymean, na.rm = TRUE)
    for (i in seq_len(nrow(b))) add(name, "mean_by", v, b$dom[i], coef(b)[i], SE(b)[i])
    b <- svyby(f, ~dom, d, svytotal, na.rm = TRUE)
    for (i in seq_len(nrow(b))) add(name, "total_by", v, b$dom[i], coef(b)[i], SE(b)[i])
  }
  r <- svyratio(~y2, ~y1, d, na.rm = TRUE); add(name, "ratio", "y2/y1", "", coef(r), SE(r))
}
run("two_stage_fpc", svydesign(id = ~psu + ssu, strata = ~st, fpc = ~N1 + N2, weights = ~w, data = df))
# some stage-2 strata hold a single SSU: R fails under "fail", so this one runs under "adjust"
options(survey.lonely.psu = "adjust")
run("two_stage_strata2", svydesign(id = ~psu + ssu, strata = ~st + sst, fpc = ~N1 + N2s, data = df))
options(survey.lonely.psu = "fail")
run("three_stage", svydesign(id = ~psu + ssu + hh, strata = ~st, fpc = ~N1 + N2 + N3, data = df))
run("nest", svydesign(id = ~psu_in + ssu, strata = ~st, fpc = ~N1 + N2, weights = ~w, nest = TRUE, data = df))
run("fractions", svydesign(id = ~psu, strata = ~st, fpc = ~f1, weights = ~w, data = df))
run("certainty", svydesign(id = ~psu + ssu, strata = ~st, fpc = ~Ncert + N2, weights = ~w, data = df))
run("no_fpc_two_ids", svydesign(id = ~psu + ssu, strata = ~st, weights = ~w, data = df))
# lonely units at stage 2: keep one SSU in some PSUs
lone <- df[!(df$psu %% 2 == 0 & df$ssu > 1), ]
write.csv(lone, "tests/data/core/multistage_lonely.csv", row.names = FALSE)
lone <- read.csv("tests/data/core/multistage_lonely.csv")
for (how in c("adjust", "average", "certainty", "remove")) {
  options(survey.lonely.psu = how)
  run(paste0("lonely2_", how), svydesign(id = ~psu + ssu, strata = ~st, fpc = ~N1 + N2, weights = ~w, data = lone))
}
res <- do.call(rbind, out)
write.csv(res, "tests/data/core/golden_multistage.csv", row.names = FALSE)
cat("wrote", nrow(res), "rows\n")
