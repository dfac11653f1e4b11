"""Stages of a survey project beyond the sample design (see :mod:`survey.pipeline`).

Each module wires one part of the chain to the package that does the work:
:mod:`~survey.stages.fieldwork` (listing, household selection, import),
:mod:`~survey.stages.weights` (the weighting chain and replicate weights) and
:mod:`~survey.stages.export` (labelled data files). :mod:`survey.pipeline` re-exports
the stage functions; use them from there.
"""
