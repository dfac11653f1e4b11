# Golden values for analysis.impact (regression-adjusted, IPW and AIPW differences).
# Run from the repository root:  Rscript tests/data/analysis/impact_goldens.R
# Made with R 4.2.2 and survey 4.1.1 (Debian r-cran-survey), options(digits = 15).
# Data: tests/data/analysis/impact_data.csv, a stratified cluster sample (strata
# region, PSUs ea, weights w) of a synthetic population, written by the test module's
# generator; migrants oversampled within each EA.
options(digits = 15, warn = 1)
suppressPackageStartupMessages(library(survey))
stopifnot(as.character(packageVersion("survey")) == "4.1.1")
out <- "tests/data/analysis"
dat <- read.csv(file.path(out, "impact_data.csv"))
g17 <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
des <- svydesign(ids = ~ea, strata = ~region, weights = ~w, data = dat)
controls <- "region + hh_size + female_head"
rows <- list()
# ci_low, ci_high: 95% t interval on df; p: two-sided t p-value on df. For svyglm fits
# they are R's own confint(m) (t on m$df.residual in survey 4.1.1) and summary(m)'s
# Pr(>|t|); for the raw difference svyttest's conf.int and p.value (df = degf - 1);
# for the stacked IPW/AIPW, est -/+ qt(0.975, df) se with df = degf(support) - 1.
add <- function(outcome, method, variance, est, se, df, n_t, n_c, ci = NULL, p = NULL) {
  est <- as.numeric(est); se <- as.numeric(se)
  if (is.null(ci)) ci <- est + c(-1, 1) * qt(0.975, df) * se
  if (is.null(p)) p <- 2 * pt(-abs(est / se), df)
  rows[[length(rows) + 1]] <<- data.frame(outcome = outcome, method = method, variance = variance,
    estimate = g17(est), se = g17(se), df = g17(as.numeric(df)),
    n_treated = n_t, n_control = n_c, ci_low = g17(as.numeric(ci[1])),
    ci_high = g17(as.numeric(ci[2])), p = g17(as.numeric(p)))
}
tci <- function(m) confint(m)["migrant", ]  # Wald, t quantile on m$df.residual
tp <- function(m) summary(m)$coefficients["migrant", "Pr(>|t|)"]
w <- dat$w; t <- dat$migrant
X <- model.matrix(as.formula(paste("~", controls)), dat)
for (y in c("spend", "insured")) {
  yy <- dat[[y]]
  # raw difference: svyglm(y ~ migrant) is the difference of the domain means
  # (svyttest: the same fit; df = m$df.residual = degf(des) - 1)
  m <- svyglm(as.formula(paste(y, "~ migrant")), des)
  tt <- svyttest(as.formula(paste(y, "~ migrant")), des)
  stopifnot(isTRUE(all.equal(unname(tt$parameter), m$df.residual)),
            isTRUE(all.equal(unname(tt$conf.int[1:2]), unname(tci(m)))))
  add(y, "raw", "linearization", coef(m)["migrant"], SE(m)["migrant"], tt$parameter,
      sum(t == 1), sum(t == 0), ci = tt$conf.int, p = tt$p.value)
  # regression-adjusted difference
  m <- svyglm(as.formula(paste(y, "~ migrant +", controls)), des)
  add(y, "regression", "linearization", coef(m)["migrant"], SE(m)["migrant"], m$df.residual,
      sum(t == 1), sum(t == 0), ci = tci(m), p = tp(m))
  # propensity with design weights; min-max common support; refit on the support
  ps <- svyglm(as.formula(paste("migrant ~", controls)), des, family = quasibinomial())
  p <- fitted(ps)
  lo <- max(min(p[t == 1]), min(p[t == 0])); hi <- min(max(p[t == 1]), max(p[t == 0]))
  S <- p >= lo & p <= hi
  if (!all(S)) {
    ps <- svyglm(as.formula(paste("migrant ~", controls)), subset(des, S), family = quasibinomial())
    p <- rep(0.5, nrow(dat)); p[S] <- fitted(ps)
  }
  odds <- p / (1 - p)
  dat$ipw_w <- ifelse(t == 1, w, w * odds)
  # IPW with the weights treated as fixed: svyglm on a design with the IPW weights
  des_ipw <- svydesign(ids = ~ea, strata = ~region, weights = ~ipw_w, data = dat)
  m <- svyglm(as.formula(paste(y, "~ migrant")), subset(des_ipw, S))
  add(y, "ipw", "fixed", coef(m)["migrant"], SE(m)["migrant"], m$df.residual,
      sum(S & t == 1), sum(S & t == 0), ci = tci(m), p = tp(m))
  # IPW and AIPW with stacked estimating equations (propensity, outcome model, means),
  # sandwich influence values, their total's SE from svytotal on the design
  for (aipw in c(FALSE, TRUE)) {
    wS <- ifelse(S, w, 0); c0 <- 1 - t
    k_g <- ncol(X); k_b <- if (aipw) ncol(X) else 0; k <- k_g + k_b + 2
    if (aipw) {
      a <- wS * c0
      beta <- solve(crossprod(X * a, X), crossprod(X * a, yy))
      e <- yy - drop(X %*% beta)
    } else e <- yy
    e <- ifelse(S, e, 0)
    mu1 <- sum(wS * t * e) / sum(wS * t)
    mu0 <- sum(wS * c0 * odds * e) / sum(wS * c0 * odds)
    U <- X * (wS * (t - p))
    M <- matrix(0, k, k)
    M[1:k_g, 1:k_g] <- -crossprod(X * (wS * p * (1 - p)), X)
    if (aipw) {
      U <- cbind(U, X * (wS * c0 * e))
      M[k_g + 1:k_b, k_g + 1:k_b] <- -crossprod(X * (wS * c0), X)
      M[k - 1, k_g + 1:k_b] <- -colSums(X * (wS * t))
      M[k, k_g + 1:k_b] <- -colSums(X * (wS * c0 * odds))
    }
    U <- cbind(U, wS * t * (e - mu1), wS * c0 * odds * (e - mu0))
    M[k - 1, k - 1] <- -sum(wS * t); M[k, k] <- -sum(wS * c0 * odds)
    M[k, 1:k_g] <- colSums(X * (wS * c0 * odds * (e - mu0)))
    Z <- -t(solve(M, t(U)))
    dat$z <- (Z[, k - 1] - Z[, k]) / w  # svytotal weights by w: z holds weighted values
    des_z <- svydesign(ids = ~ea, strata = ~region, weights = ~w, data = dat)
    se <- SE(svytotal(~z, des_z))
    # df of a difference of two weighted means on the support (as svyglm(y ~ migrant)
    # on the IPW-weighted design above): degf(support) - 1
    add(y, if (aipw) "aipw" else "ipw", "linearization", mu1 - mu0, se,
        degf(subset(des_z, S)) - 1, sum(S & t == 1), sum(S & t == 0))
  }
}
res <- do.call(rbind, rows)
write.csv(res, file.path(out, "impact_golden.csv"), row.names = FALSE, quote = TRUE)
print(res)

# ---- replicate variance: JKn replicates that refit the propensity (and outcome) model ----
# The common support S (after the refit) is fixed from the full sample, as in Python.
rep <- as.svrepdesign(des, type = "JKn")
rrows <- list()
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
for (y in c("spend", "insured")) {
  ps <- svyglm(as.formula(paste("migrant ~", controls)), des, family = quasibinomial())
  p <- fitted(ps)
  lo <- max(min(p[t == 1]), min(p[t == 0])); hi <- min(max(p[t == 1]), max(p[t == 0]))
  S <- p >= lo & p <= hi
  for (aipw in c(FALSE, TRUE)) {
    theta <- function(wr, data) {
      wr <- wr / mean(wr)
      m <- suppressWarnings(glm(as.formula(paste("migrant ~", controls)), data = data[S, ],
                                weights = wr[S], family = quasibinomial(), control = ctl))
      odds <- exp(drop(X[S, ] %*% coef(m)))
      e <- data[[y]][S]
      if (aipw) {
        a <- wr[S] * (1 - t[S])
        beta <- solve(crossprod(X[S, ] * a, X[S, ]), crossprod(X[S, ] * a, e))
        e <- e - drop(X[S, ] %*% beta)
      }
      a1 <- wr[S] * t[S]; a0 <- wr[S] * (1 - t[S]) * odds
      sum(a1 * e) / sum(a1) - sum(a0 * e) / sum(a0)
    }
    r <- withReplicates(rep, theta, return.replicates = FALSE)
    rrows[[length(rrows) + 1]] <- data.frame(outcome = y, method = if (aipw) "aipw" else "ipw",
      estimate = g17(as.numeric(coef(r))), se = g17(as.numeric(SE(r))))
  }
}
rres <- do.call(rbind, rrows)
write.csv(rres, file.path(out, "impact_replicate_golden.csv"), row.names = FALSE, quote = TRUE)
print(rres)
