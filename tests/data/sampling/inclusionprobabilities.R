# Golden values for sampling.pps.pps_probabilities (iterative certainty units).
# R 4.2.2, package sampling 2.9. Run from the repository root:
#   Rscript tests/data/sampling/inclusionprobabilities.R
options(digits = 15)
library(sampling)
set.seed(20260101)
out <- list()
for (case in 1:4) {
  N <- c(12, 30, 50, 200)[case]
  n <- c(3, 8, 10, 40)[case]
  size <- round(rlnorm(N, meanlog = 4, sdlog = c(0.5, 1.2, 1.5, 2)[case]))
  size[size < 1] <- 1
  pik <- inclusionprobabilities(size, n)
  out[[case]] <- data.frame(case = case, n = n, size = size, pik = pik)
}
res <- do.call(rbind, out)
write.csv(res, "tests/data/sampling/inclusionprobabilities.csv", row.names = FALSE)
cat(R.version.string, "sampling", as.character(packageVersion("sampling")), "\n")
