# Golden values for tests/weighting and tests/survey/test_repweights.py.
# Run from this directory:  Rscript make_golden.R
# Produced with R 4.2.2 and survey 4.1.1; options(digits = 15); CSVs written with 17 digits.
suppressMessages(library(survey))
options(digits = 15)
stopifnot(packageVersion("survey") == "4.1.1")
cat(R.version.string, "survey", as.character(packageVersion("survey")), "\n")

data(api)
dclus1 <- svydesign(id = ~dnum, weights = ~pw, data = apiclus1, fpc = ~fpc)
dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat, fpc = ~fpc)
dstratpsu <- svydesign(id = ~dnum, strata = ~stype, weights = ~pw, data = apistrat, nest = TRUE)

pop.types <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop.schwide <- data.frame(sch.wide = c("No", "Yes"), Freq = c(1072, 5122))
pop.compimp <- data.frame(comp.imp = c("No", "Yes"), Freq = c(2200, 3994))
pop.totals <- c(`(Intercept)` = 6194, stypeH = 755, stypeM = 1018, api99 = 3914069)
pop.cross <- data.frame(stype = c("E", "E", "H", "H", "M", "M"),
                        comp.imp = c("No", "Yes", "No", "Yes", "No", "Yes"),
                        Freq = c(1500, 2921, 350, 405, 400, 618))
tight <- list(maxit = 500, epsilon = 1e-14, verbose = FALSE)

weights_out <- list()
est_out <- list()
record <- function(case, design, vars = c("api00", "enroll", "api99")) {
  w <- weights(design)
  weights_out[[case]] <<- data.frame(case = case, row = seq_along(w), weight = w)
  for (v in vars) {
    f <- as.formula(paste0("~", v))
    m <- svymean(f, design)
    t <- svytotal(f, design)
    est_out[[paste(case, v)]] <<- data.frame(
      case = case, variable = v,
      mean = coef(m)[[1]], mean_se = SE(m)[[1]],
      total = coef(t)[[1]], total_se = SE(t)[[1]])
  }
}

record("uncalibrated_clus1", dclus1)
record("ps_clus1", postStratify(dclus1, ~stype, pop.types))
record("ps_cross_strat", postStratify(dstrat, ~stype + comp.imp, pop.cross))
record("rake_clus1", rake(dclus1, list(~stype, ~sch.wide), list(pop.types, pop.schwide), control = tight))
record("rake3_strat", rake(dstrat, list(~stype, ~sch.wide, ~comp.imp),
                           list(pop.types, pop.schwide, pop.compimp), control = tight))
record("cal_linear_clus1", calibrate(dclus1, ~stype + api99, pop.totals))
record("cal_raking_clus1", calibrate(dclus1, ~stype + api99, pop.totals, calfun = "raking", epsilon = 1e-13))
record("cal_logit_clus1", calibrate(dclus1, ~stype + api99, pop.totals, calfun = "logit",
                                    bounds = c(0.7, 1.7), epsilon = 1e-13))
record("cal_linbound_clus1", calibrate(dclus1, ~stype + api99, pop.totals, calfun = "linear",
                                       bounds = c(0.7, 1.7), epsilon = 1e-13, maxit = 200))
pop.strat <- c(`(Intercept)` = 6194, stypeH = 755, stypeM = 1018, sch.wideYes = 5122, api99 = 3914069)
record("cal_linear_strat", calibrate(dstrat, ~stype + sch.wide + api99, pop.strat))
record("cal_raking_strat", calibrate(dstrat, ~stype + sch.wide + api99, pop.strat, calfun = "raking",
                                     epsilon = 1e-13))

# trimming of calibrated weights (calibration kept, as R does)
dcal <- calibrate(dclus1, ~stype + api99, pop.totals, calfun = "raking", epsilon = 1e-13)
record("trim_single", trimWeights(dcal, upper = 36, lower = 31))
record("trim_strict", trimWeights(dcal, upper = 36, lower = 31, strict = TRUE))

write.csv(do.call(rbind, weights_out), "golden_weights.csv", row.names = FALSE)
write.csv(do.call(rbind, est_out), "golden_estimates.csv", row.names = FALSE)

# ---- replicate weights -------------------------------------------------------------
rep_out <- list()
rep_est <- list()
reprecord <- function(case, rd, vars = c("api00", "enroll")) {
  W <- weights(rd, "analysis")
  colnames(W) <- paste0("r", seq_len(ncol(W)))
  rep_out[[case]] <<- W
  for (v in vars) {
    f <- as.formula(paste0("~", v))
    m <- svymean(f, rd)
    t <- svytotal(f, rd)
    rep_est[[paste(case, v)]] <<- data.frame(case = case, variable = v,
      mean = coef(m)[[1]], mean_se = SE(m)[[1]], total = coef(t)[[1]], total_se = SE(t)[[1]],
      scale = rd$scale, n_rep = ncol(W))
  }
}
jk1 <- as.svrepdesign(dclus1, type = "JK1", compress = FALSE)
reprecord("jk1_clus1", jk1)
jkn <- as.svrepdesign(dstratpsu, type = "JKn", compress = FALSE)
reprecord("jkn_stratpsu", jkn)
write.csv(data.frame(rscales = jkn$rscales), "jkn_stratpsu_rscales.csv", row.names = FALSE)
jknf <- as.svrepdesign(dstrat, type = "JKn", compress = FALSE)
reprecord("jkn_strat_fpc", jknf)
write.csv(data.frame(rscales = jknf$rscales), "jkn_strat_fpc_rscales.csv", row.names = FALSE)
for (case in c("jk1_clus1", "jkn_stratpsu", "jkn_strat_fpc"))
  write.csv(rep_out[[case]], paste0(case, "_weights.csv"), row.names = FALSE)

# BRR and Fay: 8 pseudo-strata of 2 PSUs built from apistrat (also written for Python)
brrdata <- apistrat[order(apistrat$snum), c("snum", "api00", "enroll", "pw")]
brrdata$strat <- rep(sprintf("s%d", 1:8), each = 25)
brrdata$psu <- paste0(brrdata$strat, "_", rep(1:2, length.out = 200))
write.csv(brrdata, "brr_data.csv", row.names = FALSE)
dbrr <- svydesign(id = ~psu, strata = ~strat, weights = ~pw, data = brrdata)
H <- survey:::hadamard(8)
write.csv(H, "brr_hadamard.csv", row.names = FALSE)
reprecord("brr", as.svrepdesign(dbrr, type = "BRR", compress = FALSE))
reprecord("fay", as.svrepdesign(dbrr, type = "Fay", fay.rho = 0.3, compress = FALSE))
write.csv(rep_out[["brr"]], "brr_weights.csv", row.names = FALSE)

# Rao-Wu bootstrap (R's subbootstrap): the weights are random, so they are stored
set.seed(20240501)
boot <- as.svrepdesign(dstratpsu, type = "subbootstrap", replicates = 60, compress = FALSE)
reprecord("subboot", boot)
write.csv(rep_out[["subboot"]], "subboot_weights.csv", row.names = FALSE)

# calibration repeated on every replicate (R calibrates svrep designs replicate by replicate)
reprecord("jk1_ps", postStratify(jk1, ~stype, pop.types))
reprecord("jk1_rake", rake(jk1, list(~stype, ~sch.wide), list(pop.types, pop.schwide), control = tight))
reprecord("jk1_cal_linear", calibrate(jk1, ~stype + api99, pop.totals, compress = FALSE))
reprecord("jk1_cal_raking", calibrate(jk1, ~stype + api99, pop.totals, calfun = "raking", epsilon = 1e-13, compress = FALSE))
reprecord("jkn_cal_logit", calibrate(jkn, ~stype + api99, pop.totals, calfun = "logit",
                                     bounds = c(0.5, 2), epsilon = 1e-13, compress = FALSE))
write.csv(do.call(rbind, rep_est), "golden_replicates.csv", row.names = FALSE)
