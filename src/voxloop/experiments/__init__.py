"""Experiments: assign users to arms by hashing, and decide from sufficient statistics.

=================  =====================================================================
``config``         the experiments TOML file, validated at load (`load_config`)
``assign``         deterministic hashing into arms, coverage, layers, holdout
``stats``          statistics (`SampleMean`, `Proportion`, `RatioStatistic`,
                   `RegressionAdjusted`), lifts with delta-method CIs, SRM, Holm / BH
``sequential``     always-valid confidence sequences and p-values (peek any time)
``bayes``          chance to beat control, expected loss, credible intervals
``power``          power, sample size, minimum detectable effect
``analyze``        `analyze` → `ExperimentResult` with a plain-words verdict
``aggregate``      the SQL that reduces a per-user table to sufficient statistics
``simulate``       synthetic experiments for A/A validation and benchmarks
=================  =====================================================================
"""

from voxloop.experiments.aggregate import statistics_from_rows, sufficient_statistics_sql
from voxloop.experiments.analyze import ExperimentResult, MetricResult, analyze, format_result
from voxloop.experiments.assign import Assigner, Assignment, assign, unit_hash
from voxloop.experiments.config import (
    ExperimentConfig,
    ExperimentsConfig,
    load_config,
    loads_config,
)
from voxloop.experiments.stats import (
    Proportion,
    RatioStatistic,
    RegressionAdjusted,
    SampleMean,
    SRMResult,
    srm_check,
)

__all__ = [
    "Assigner",
    "Assignment",
    "ExperimentConfig",
    "ExperimentResult",
    "ExperimentsConfig",
    "MetricResult",
    "Proportion",
    "RatioStatistic",
    "RegressionAdjusted",
    "SRMResult",
    "SampleMean",
    "analyze",
    "assign",
    "format_result",
    "load_config",
    "loads_config",
    "srm_check",
    "statistics_from_rows",
    "sufficient_statistics_sql",
    "unit_hash",
]
