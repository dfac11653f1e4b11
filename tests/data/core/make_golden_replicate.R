# Golden values for replicate designs made from a design (as.svrepdesign), with missing
# values, domains, design effects and ratios (tests/analysis/test_replicate_golden.py).
# Run from the repository root:  Rscript tests/data/core/make_golden_replicate.R
# R 4.2.2 Patched (2022-11-10 r83330), survey 4.1.1 (Debian r-cran-survey); options(digits = 15);
# values via sprintf("%.17g"). Reads the CSVs that survey.datasets.load_api() reads.
options(digits = 15)
suppressMessages(library(survey))
rd <- function(nm) read.csv(file.path("survey/datasets", paste0(nm, ".csv")), stringsAsFactors = FALSE,
                            colClasses = c(cds = "character"))
apistrat <- rd("apistrat"); apiclus1 <- rd("apiclus1")
out <- list()
g <- function(x) sprintf("%.17g", x)
add <- function(design, stat, variable, domain, est, se, deff = NA) {
  out[[length(out) + 1]] <<- data.frame(design = design, stat = stat, variable = variable,
    domain = as.character(domain), estimate = g(est), se = g(se), deff = g(deff), stringsAsFactors = FALSE)
}
designs <- list(
  jkn = as.svrepdesign(svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat), type = "JKn"),
  jk1 = as.svrepdesign(svydesign(id = ~dnum, weights = ~pw, data = apiclus1), type = "JK1"),
  jkn_clus = as.svrepdesign(svydesign(id = ~dnum, strata = ~stype, weights = ~pw, data = apistrat,
                                      nest = TRUE), type = "JKn")
)
vars <- c("api00", "acs.k3", "acs.46", "target")  # the last three have missing values
for (nm in names(designs)) {
  d <- designs[[nm]]
  for (v in vars) {
    f <- as.formula(paste0("~", v))
    r <- svymean(f, d, na.rm = TRUE, deff = TRUE); add(nm, "mean_deff", v, "", coef(r), SE(r), deff(r))
    r <- svymean(f, d, na.rm = TRUE, deff = "replace"); add(nm, "mean_replace", v, "", coef(r), SE(r), deff(r))
    r <- svytotal(f, d, na.rm = TRUE, deff = TRUE); add(nm, "total_deff", v, "", coef(r), SE(r), deff(r))
    b <- svyby(f, ~sch.wide, d, svymean, na.rm = TRUE)
    for (i in seq_len(nrow(b))) add(nm, "mean_by", v, b$sch.wide[i], coef(b)[i], SE(b)[i])
  }
  r <- svyratio(~api00, ~api99, d); add(nm, "ratio", "api00/api99", "", coef(r), SE(r))
  r <- svyratio(~acs.k3, ~acs.46, d, na.rm = TRUE); add(nm, "ratio", "acs.k3/acs.46", "", coef(r), SE(r))
  r <- svymean(~api00 + meals, d, deff = TRUE)  # several variables in one call
  for (i in 1:2) add(nm, "mean_two", names(coef(r))[i], "", coef(r)[i], SE(r)[i], deff(r)[i])
}
write.csv(do.call(rbind, out), "tests/data/core/golden_replicate.csv", row.names = FALSE)
