# Golden values for the estimation core (tests/survey/test_golden_r.py, tests/analysis/test_estimators_golden.py).
# Run from the repository root:  Rscript tests/data/core/make_golden.R
# Made with R 4.2.2 Patched (2022-11-10 r83330) and survey 4.1.1 (Debian r-cran-survey).
# Reads the same CSV files that survey.datasets.load_api() reads, so the data are identical.
options(digits = 15)
suppressMessages(library(survey))
rd <- function(nm) read.csv(file.path("survey/datasets", paste0(nm, ".csv")), stringsAsFactors = FALSE,
                            colClasses = c(cds = "character"))
apistrat <- rd("apistrat"); apiclus1 <- rd("apiclus1"); apiclus2 <- rd("apiclus2"); apisrs <- rd("apisrs")
out <- list()
g <- function(x) sprintf("%.17g", x)
add <- function(design, stat, variable, domain, est, se, deff = NA, lo = NA, hi = NA, df = NA) {
  out[[length(out) + 1]] <<- data.frame(design = design, stat = stat, variable = variable,
    domain = as.character(domain), estimate = g(est), se = g(se), deff = g(deff),
    ci_low = g(lo), ci_high = g(hi), df = g(df), stringsAsFactors = FALSE)
}
designs <- list(
  strat = svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat),
  strat_nofpc = svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat),
  clus1 = svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1),
  clus1_nofpc = svydesign(id = ~dnum, weights = ~pw, data = apiclus1),
  clus2 = svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2),
  clus2_nofpc = svydesign(id = ~dnum + snum, weights = ~pw, data = apiclus2),
  srs = svydesign(id = ~1, fpc = ~fpc, data = apisrs)
)
one <- function(name, d) {
  for (v in c("api00", "enroll", "api99")) {
    for (stat in c("mean", "total")) {
      f <- if (stat == "mean") svymean else svytotal
      r <- f(as.formula(paste0("~", v)), d, na.rm = TRUE, deff = TRUE)
      rr <- f(as.formula(paste0("~", v)), d, na.rm = TRUE, deff = "replace")
      add(name, stat, v, "", coef(r), SE(r), deff(r), df = degf(d))
      add(name, paste0(stat, "_replace"), v, "", coef(rr), SE(rr), deff(rr))
      b <- svyby(as.formula(paste0("~", v)), ~stype, d, f, na.rm = TRUE, deff = TRUE)
      for (i in seq_len(nrow(b))) add(name, paste0(stat, "_by"), v, b$stype[i], coef(b)[i], SE(b)[i], deff(b)[i],
                                      df = degf(subset(d, stype == b$stype[i])))
    }
  }
  # complete cases across two variables (na="complete")
  r <- svymean(~api00 + enroll, d, na.rm = TRUE)
  add(name, "mean_complete", c("api00", "enroll"), "", coef(r), SE(r))
  # ratio, overall and by domain
  r <- svyratio(~api00, ~api99, d, deff = TRUE)
  add(name, "ratio", "api00/api99", "", coef(r), SE(r), deff(r))
  r <- svyratio(~enroll, ~api.stu, d, na.rm = TRUE, deff = "replace")
  add(name, "ratio_replace", "enroll/api.stu", "", coef(r), SE(r), deff(r))
  b <- svyby(~api00, ~stype, d, svyratio, denominator = ~api99, deff = TRUE)
  for (i in seq_len(nrow(b))) add(name, "ratio_by", "api00/api99", b$stype[i], coef(b)[i], SE(b)[i], deff(b)[i])
  # proportions of every level, and logit intervals
  r <- svymean(~factor(sch.wide), d)
  add(name, "prop", c("No", "Yes"), "", coef(r), SE(r))
  for (lev in c("No", "Yes")) {
    ci <- svyciprop(as.formula(sprintf("~I(sch.wide == '%s')", lev)), d, method = "logit")
    add(name, "prop_logit", lev, "", coef(ci), SE(ci), lo = confint(ci)[1], hi = confint(ci)[2], df = degf(d))
  }
  # svyciprop's logit interval at convergence, in closed form (svyciprop itself stops IRLS at
  # glm's tolerance, about 1e-9 off): expit(logit(p) +/- t_df se / (p (1 - p)))
  lci <- function(p, se, df) plogis(qlogis(p) + c(-1, 1) * qt(0.975, df) * se / (p * (1 - p)))
  for (lev in c("No", "Yes")) {
    r <- svymean(as.formula(sprintf("~I(sch.wide == '%s')", lev)), d)
    p <- coef(r)[2]; se <- SE(r)[2]; ci <- lci(p, se, degf(d))
    add(name, "prop_logit_exact", lev, "", p, se, lo = ci[1], hi = ci[2], df = degf(d))
    for (s in sort(unique(d$variables$stype))) {
      ds <- subset(d, stype == s)
      r <- svymean(as.formula(sprintf("~I(sch.wide == '%s')", lev)), ds)
      p <- coef(r)[2]; se <- SE(r)[2]; ci <- lci(p, se, degf(ds))
      add(name, "prop_logit_exact_by", lev, s, p, se, lo = ci[1], hi = ci[2], df = degf(ds))
    }
  }
  b <- svyby(~I(sch.wide == "Yes"), ~stype, d, svyciprop, vartype = c("se", "ci"), method = "logit")
  for (i in seq_len(nrow(b))) add(name, "prop_logit_by", "Yes", b$stype[i], coef(b)[i], SE(b)[i],
                                  lo = b$ci_l[i], hi = b$ci_u[i])
  # a domain given as a subset equals the by= domain
  r <- svymean(~api00, subset(d, both == "Yes"))
  add(name, "mean_subset_both", "api00", "Yes", coef(r), SE(r))
}
for (nm in names(designs)) one(nm, designs[[nm]])

# Lonely PSUs: apiclus1 with districts grouped into strata, one of which has a single district.
lon <- apiclus1
ds <- sort(unique(lon$dnum))
lon$st <- ifelse(lon$dnum == ds[1], "A", ifelse(lon$dnum %in% ds[2:6], "B", ifelse(lon$dnum %in% ds[7:11], "C", "D")))
lon$N <- ifelse(lon$st == "A", 3, ifelse(lon$st == "B", 40, ifelse(lon$st == "C", 50, 60)))
# a certainty stratum: one district, population one district
lon$Ncert <- ifelse(lon$st == "A", 1, lon$N)
write.csv(lon[, c("cds", "dnum", "snum", "stype", "st", "N", "Ncert", "pw", "api00", "api99", "enroll", "sch.wide", "both")],
          "tests/data/core/lonely.csv", row.names = FALSE, na = "")
for (how in c("adjust", "average", "certainty", "remove")) {
  options(survey.lonely.psu = how)
  for (fp in c("none", "N")) {
    d <- if (fp == "none") svydesign(id = ~dnum, strata = ~st, weights = ~pw, data = lon)
         else svydesign(id = ~dnum, strata = ~st, weights = ~pw, fpc = ~N, data = lon)
    nm <- paste0("lonely_", how, "_", fp)
    for (v in c("api00", "enroll")) {
      r <- svymean(as.formula(paste0("~", v)), d, na.rm = TRUE); add(nm, "mean", v, "", coef(r), SE(r))
      r <- svytotal(as.formula(paste0("~", v)), d, na.rm = TRUE); add(nm, "total", v, "", coef(r), SE(r))
      b <- svyby(as.formula(paste0("~", v)), ~stype, d, svymean, na.rm = TRUE)
      for (i in seq_len(nrow(b))) add(nm, "mean_by", v, b$stype[i], coef(b)[i], SE(b)[i])
      b <- svyby(as.formula(paste0("~", v)), ~stype, d, svytotal, na.rm = TRUE)
      for (i in seq_len(nrow(b))) add(nm, "total_by", v, b$stype[i], coef(b)[i], SE(b)[i])
    }
  }
}
options(survey.lonely.psu = "fail")
d <- svydesign(id = ~dnum, strata = ~st, weights = ~pw, fpc = ~Ncert, data = lon)
r <- svytotal(~api00, d); add("lonely_fail_certainty", "total", "api00", "", coef(r), SE(r))
r <- svymean(~api00, d); add("lonely_fail_certainty", "mean", "api00", "", coef(r), SE(r))

# Replicate designs: weights exported so Python builds the same design with from_replicates.
dclus1 <- designs$clus1_nofpc
jk1 <- as.svrepdesign(dclus1, type = "JK1", compress = FALSE)
rw <- unclass(weights(jk1, "analysis")); rw <- matrix(as.numeric(rw), nrow = nrow(rw)); colnames(rw) <- paste0("rep", seq_len(ncol(rw)))
write.csv(data.frame(apiclus1[, c("cds", "stype", "api00", "api99", "enroll", "sch.wide", "pw")], rw),
          "tests/data/core/jk1_weights.csv", row.names = FALSE, na = "")
strat2 <- apistrat[apistrat$stype %in% c("E", "H", "M"), ]
ds <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat)
jkn <- as.svrepdesign(ds, type = "JKn", compress = FALSE)
rw <- unclass(weights(jkn, "analysis")); rw <- matrix(as.numeric(rw), nrow = nrow(rw)); colnames(rw) <- paste0("rep", seq_len(ncol(rw)))
write.csv(data.frame(apistrat[, c("cds", "stype", "api00", "api99", "enroll", "sch.wide", "pw")], rw),
          "tests/data/core/jkn_weights.csv", row.names = FALSE, na = "")
write.csv(data.frame(rscales = jkn$rscales), "tests/data/core/jkn_rscales.csv", row.names = FALSE)
set.seed(20261129)
bs <- as.svrepdesign(dclus1, type = "bootstrap", replicates = 50)
rw <- unclass(weights(bs, "analysis")); rw <- matrix(as.numeric(rw), nrow = nrow(rw)); colnames(rw) <- paste0("rep", seq_len(ncol(rw)))
write.csv(data.frame(apiclus1[, c("cds", "stype", "api00", "api99", "enroll", "sch.wide", "pw")], rw),
          "tests/data/core/boot_weights.csv", row.names = FALSE, na = "")
# svrepdesign's default bootstrap scale is 1/(R-1) (as.svrepdesign sets its own), and that is
# what Design.from_replicates(method="bootstrap") defaults to as well
reps <- list(jk1 = jk1, jkn = jkn,
             boot = svrepdesign(data = read.csv("tests/data/core/boot_weights.csv"), weights = ~pw,
                                repweights = "rep[0-9]+", type = "bootstrap"),
             jk1_mse = svrepdesign(data = read.csv("tests/data/core/jk1_weights.csv"), weights = ~pw,
                                   repweights = "rep[0-9]+", type = "JK1", scale = 14/15, mse = TRUE),
             fay = svrepdesign(data = read.csv("tests/data/core/jkn_weights.csv"), weights = ~pw,
                               repweights = "rep[0-9]+", type = "Fay", rho = 0.3))
for (nm in names(reps)) {
  d <- reps[[nm]]
  for (v in c("api00", "enroll")) {
    r <- svymean(as.formula(paste0("~", v)), d, na.rm = TRUE); add(paste0("rep_", nm), "mean", v, "", coef(r), SE(r))
    r <- svytotal(as.formula(paste0("~", v)), d, na.rm = TRUE); add(paste0("rep_", nm), "total", v, "", coef(r), SE(r))
    b <- svyby(as.formula(paste0("~", v)), ~stype, d, svymean, na.rm = TRUE)
    for (i in seq_len(nrow(b))) add(paste0("rep_", nm), "mean_by", v, b$stype[i], coef(b)[i], SE(b)[i])
  }
  r <- svyratio(~api00, ~api99, d); add(paste0("rep_", nm), "ratio", "api00/api99", "", coef(r), SE(r))
  r <- svymean(~factor(sch.wide), d); add(paste0("rep_", nm), "prop", c("No", "Yes"), "", coef(r), SE(r))
}
res <- do.call(rbind, out)
write.csv(res, "tests/data/core/golden.csv", row.names = FALSE)
cat("wrote", nrow(res), "rows\n")
