# Golden values for analysis.quantile / glm / ttest / chisq / contrast.
# Run from the repository root:  Rscript tests/data/analysis/make_goldens.R
# Made with R 4.2.2 and survey 4.1.1 (Debian r-cran-survey), options(digits = 15).
# Reads the same CSV files the Python tests read (survey/datasets/*.csv), and writes
# every number with 17 significant digits so nothing is lost in the round trip.
options(digits = 15, warn = 1)
suppressPackageStartupMessages(library(survey))
stopifnot(as.character(packageVersion("survey")) == "4.1.1")
out <- "tests/data/analysis"
rd <- function(n) read.csv(file.path("survey/datasets", paste0(n, ".csv")))
apistrat <- rd("apistrat"); apiclus1 <- rd("apiclus1"); apiclus2 <- rd("apiclus2")
g17 <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
put <- function(df, name) {
  num <- vapply(df, is.numeric, TRUE)
  df[num] <- lapply(df[num], g17)
  write.csv(df, file.path(out, name), row.names = FALSE, quote = TRUE)
}

designs <- list(
  strat = svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat),
  clus1 = svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1),
  clus1nofpc = svydesign(id = ~dnum, weights = ~pw, data = apiclus1),
  clus2 = svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2)
)
# replicate design: JK1 weights of dclus1 written out, then read back by both sides
jk <- as.svrepdesign(designs$clus1, type = "JK1")
rw <- weights(jk, "analysis"); colnames(rw) <- sprintf("rep%02d", seq_len(ncol(rw)))
keep <- c("dnum", "snum", "stype", "api00", "api99", "ell", "meals", "mobility", "enroll",
          "api.stu", "sch.wide", "comp.imp", "awards", "pw")
put(cbind(apiclus1[keep], rw), "apiclus1_jk1.csv")
jkdf <- read.csv(file.path(out, "apiclus1_jk1.csv"))
designs$jk1 <- svrepdesign(data = jkdf, repweights = "^rep[0-9]+$", weights = ~pw,
                           type = "JK1", combined.weights = TRUE,
                           scale = (ncol(rw) - 1) / ncol(rw), rscales = 1, mse = FALSE)

# calibrated designs: estimators must carry the calibration into their variances
pop_types <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
calibrated <- list(
  ps1 = postStratify(designs$clus1, ~stype, pop_types),
  cal1 = calibrate(designs$clus1, ~stype + api99,
                   c(`(Intercept)` = 6194, stypeH = 755, stypeM = 1018, api99 = 3914069))
)

# ---- quantiles: svyquantile (qrule, Woodruff interval.type = "mean") -------------
probs <- c(0.1, 0.25, 0.5, 0.75, 0.9)
rules <- c("math", "school", "shahvaish", "hf1", "hf2", "hf3", "hf4", "hf5", "hf6", "hf7", "hf8", "hf9")
qrows <- list()
for (dn in names(designs)) {
  d <- designs[[dn]]
  doms <- c("", "E", "H", "M")
  for (dom in doms) {
    dd <- if (dom == "") d else subset(d, stype == dom)
    for (v in c("api00", "enroll")) {
      use <- if (dn == "strat" && dom == "") rules else c("math", "hf7")
      for (r in use) {
        q <- svyquantile(as.formula(paste0("~", v)), dd, probs, qrule = r, ci = TRUE, na.rm = TRUE)[[1]]
        nas <- is.na(dd$variables[[v]])
        df <- degf(dd[!nas, ])
        qrows[[length(qrows) + 1]] <- data.frame(design = dn, variable = v, domain = dom, rule = r,
          prob = probs, estimate = q[, 1], ci_low = q[, 2], ci_high = q[, 3], se = q[, 4], df = df)
      }
    }
  }
}
put(do.call(rbind, qrows), "quantile_golden.csv")

# ---- regression: svyglm, summary.svyglm --------------------------------------------
models <- list(
  lin = list(api00 ~ ell + meals + mobility, gaussian()),
  linfac = list(api00 ~ ell + meals + stype, gaussian()),
  linint = list(api00 ~ ell * stype + meals, gaussian()),
  logit = list(factor(sch.wide) ~ ell + meals + mobility, quasibinomial()),
  logitfac = list(factor(comp.imp) ~ meals + stype + api99, quasibinomial()),
  pois = list(enroll ~ ell + meals + mobility, quasipoisson()),
  poisfac = list(api.stu ~ meals + stype, quasipoisson())
)
grows <- list(); vrows <- list()
for (dn in c("strat", "clus1", "clus2", "jk1")) {
  d <- designs[[dn]]
  for (mn in names(models)) {
    m <- svyglm(models[[mn]][[1]], design = d, family = models[[mn]][[2]])
    s <- summary(m)$coefficients
    grows[[length(grows) + 1]] <- data.frame(design = dn, model = mn, term = rownames(s),
      estimate = s[, 1], se = s[, 2], t = s[, 3], p = s[, 4], df = m$df.residual)
    V <- vcov(m)
    vrows[[length(vrows) + 1]] <- data.frame(design = dn, model = mn,
      row = rep(rownames(V), ncol(V)), col = rep(colnames(V), each = nrow(V)), value = as.vector(V))
  }
}
put(do.call(rbind, grows), "glm_golden.csv")
put(do.call(rbind, vrows), "glm_vcov_golden.csv")

# ---- t tests: svyttest ------------------------------------------------------------
trows <- list()
for (dn in names(designs)) {
  d <- designs[[dn]]
  for (f in c("api00 ~ comp.imp", "api00 ~ sch.wide", "enroll ~ awards", "ell ~ 0")) {
    t <- svyttest(as.formula(f), d)
    trows[[length(trows) + 1]] <- data.frame(design = dn, formula = f, estimate = unname(t$estimate),
      statistic = unname(t$statistic), df = unname(t$parameter), p = t$p.value,
      ci_low = t$conf.int[1], ci_high = t$conf.int[2])
  }
}
put(do.call(rbind, trows), "ttest_golden.csv")

# ---- tests of association: svychisq ----------------------------------------------
crows <- list()
for (dn in names(designs)) {
  d <- designs[[dn]]
  for (f in c("~sch.wide + stype", "~comp.imp + awards", "~stype + awards")) {
    for (st in c("F", "Chisq", "Wald", "adjWald")) {
      x <- svychisq(as.formula(f), d, statistic = st)
      par <- x$parameter
      crows[[length(crows) + 1]] <- data.frame(design = dn, formula = f, statistic_type = st,
        statistic = unname(x$statistic), ndf = if (length(par) == 2) par[[1]] else par[[1]],
        ddf = if (length(par) == 2) par[[2]] else NA, p = unname(x$p.value))
    }
  }
}
put(do.call(rbind, crows), "chisq_golden.csv")

# ---- contrasts: svycontrast on domain means (covmat = TRUE) and on coefficients --
krows <- list()
for (dn in names(designs)) {
  d <- designs[[dn]]
  b <- svyby(~api00, ~stype, d, svymean, covmat = TRUE)
  for (nm in c("H-E", "M-E", "M-H", "avg")) {
    w <- switch(nm, "H-E" = c(-1, 1, 0), "M-E" = c(-1, 0, 1), "M-H" = c(0, -1, 1), avg = c(1, 1, 1) / 3)
    k <- svycontrast(b, w)
    krows[[length(krows) + 1]] <- data.frame(design = dn, what = "mean_by_stype", contrast = nm,
      estimate = unname(coef(k)), se = unname(SE(k)))
  }
  m <- svyglm(api00 ~ ell + meals + mobility, design = d)
  # svycontrast() fails on an svrepglm in survey 4.1.1 (crossprod error), so the
  # linear combination of coefficients is written out: L b and sqrt(L V L')
  for (nm in c("ell-meals", "predict")) {
    L <- if (nm == "ell-meals") c(0, 1, -1, 0) else c(1, 20, 50, 10)
    krows[[length(krows) + 1]] <- data.frame(design = dn, what = "glm_lin", contrast = nm,
      estimate = sum(L * coef(m)), se = sqrt(drop(t(L) %*% vcov(m) %*% L)))
  }
}
put(do.call(rbind, krows), "contrast_golden.csv")

# ---- the same estimators on calibrated designs -------------------------------------
krows <- list()
add <- function(dn, what, key, estimate, se, extra = NA) {
  krows[[length(krows) + 1]] <<- data.frame(design = dn, what = what, key = key,
    estimate = estimate, se = se, extra = extra)
}
for (dn in names(calibrated)) {
  d <- calibrated[[dn]]
  for (r in c("math", "hf7")) {
    q <- svyquantile(~api00, d, c(0.25, 0.5, 0.75), qrule = r, ci = TRUE)[[1]]
    add(dn, paste0("quantile_", r), c("0.25", "0.5", "0.75"), q[, 1], q[, 4], q[, 2])
  }
  for (mn in c("lin", "logit")) {
    m <- svyglm(models[[mn]][[1]], design = d, family = models[[mn]][[2]])
    s <- summary(m)$coefficients
    add(dn, paste0("glm_", mn), rownames(s), s[, 1], s[, 2], m$df.residual)
  }
  t <- svyttest(api00 ~ comp.imp, d)
  add(dn, "ttest", "comp.imp", unname(t$estimate), unname(t$statistic), t$p.value)
  x <- svychisq(~sch.wide + stype, d)
  add(dn, "chisq_F", "sch.wide+stype", unname(x$statistic), x$parameter[[1]], x$p.value)
}
put(do.call(rbind, krows), "calibrated_golden.csv")
cat("R", R.version$major, R.version$minor, "survey", as.character(packageVersion("survey")), "\n")
