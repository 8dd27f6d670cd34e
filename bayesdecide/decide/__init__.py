"""The decision layer: posterior draws of cell effects to launch decisions.

Pure, vectorised functions over ``tau`` (an ``xarray.DataArray`` of draws with dims
``(*sample_dims, cell, outcome)``, per assigned customer, factor labels as coords on ``cell``;
``(*sample_dims, cell, treatment_arm, outcome)`` with several treatment arms against one control)
and the experiment's ``cell_share``:

* :mod:`.value` - value model (weights on outcomes, benefits scaled by the transport multiplier);
* :mod:`.population` - launch size, mix (post-stratified), fixed cost, transport multiplier;
* :mod:`.policies` - treat none / all, rules over labels, cell sets (as data), restated for a new
  level;
* :mod:`.evaluate` - policy value draws at launch scale and their summary table;
* :mod:`.optimal` - Bayes-optimal targeting under guardrail chance constraints (with several
  treatment arms: the best arm, or none, per cell);
* :mod:`.arms` - several treatment arms: P(best) of none and each arm per cell, group, overall;
* :mod:`.guardrails` - pre-registered rules evaluated as posterior probabilities, on a policy's
  totals or for every level of a factor (group rules);
* :mod:`.fairness` - effects and treated shares by group, the groups a policy leaves out and why;
* :mod:`.breakeven` - break-even draws and decision thresholds;
* :mod:`.sensitivity` - grids over any assumption;
* :mod:`.information` - EVPI / EVPPI;
* :mod:`.compare` - comparison across the levels of a factor;
* :mod:`.heterogeneity` - raw and pooled effects per level of a factor;
* :mod:`.checks` - data and sampler checks that gate a recommendation;
* :mod:`.recommend` - the recommendation rule (the one implementation);
* :mod:`.defaults` - default thresholds (loss, decision threshold, interval probability);
* :mod:`.settings` - :class:`DecisionSettings`;
* :mod:`.decision` - :class:`Decision`, gathering all of it, and pricing a launch in a level with
  no data yet (:meth:`Decision.for_new_level`).
"""

from bayesdecide.decide.arms import best_arm_cells, best_arm_levels, best_arm_overall
from bayesdecide.decide.breakeven import (
    break_even,
    break_even_draws,
    break_even_table,
    linear_coefficients,
    parse_assumption,
    threshold_crossing,
)
from bayesdecide.decide.checks import CheckResult, Checks, CheckThresholds, run_checks
from bayesdecide.decide.compare import LevelComparison, compare_levels
from bayesdecide.decide.decision import Decision
from bayesdecide.decide.defaults import DECISION_DEFAULTS
from bayesdecide.decide.evaluate import (
    LaunchDraws,
    LevelDraws,
    PolicyDraws,
    policy_table,
    policy_values,
)
from bayesdecide.decide.fairness import group_effects, left_out
from bayesdecide.decide.guardrails import (
    EffectBound,
    FairnessFloor,
    Guardrail,
    LevelProbabilities,
    LossLimit,
    ValuePositive,
    group_rule_table,
    guardrail_from_dict,
    guardrail_table,
    retention_guardrails,
)
from bayesdecide.decide.heterogeneity import factor_level_effects
from bayesdecide.decide.information import (
    evpi,
    evpi_values,
    targeting_evpi_cells,
    value_of_information,
)
from bayesdecide.decide.optimal import OptimalResult, optimal_policy
from bayesdecide.decide.policies import (
    OPTIMAL,
    TREAT_ALL,
    TREAT_NONE,
    Policy,
    policy_at_level,
    treat_all,
    treat_all_id,
    treat_none,
)
from bayesdecide.decide.population import Population, resolve_mix
from bayesdecide.decide.recommend import Recommendation, recommend
from bayesdecide.decide.sensitivity import sensitivity, sensitivity_draws, sensitivity_table
from bayesdecide.decide.settings import DecisionSettings, retention_settings
from bayesdecide.decide.value import ValueModel, retention_value_model

__all__ = [
    "DECISION_DEFAULTS",
    "OPTIMAL",
    "TREAT_ALL",
    "TREAT_NONE",
    "CheckResult",
    "CheckThresholds",
    "Checks",
    "Decision",
    "DecisionSettings",
    "EffectBound",
    "FairnessFloor",
    "Guardrail",
    "LaunchDraws",
    "LevelComparison",
    "LevelDraws",
    "LevelProbabilities",
    "LossLimit",
    "OptimalResult",
    "Policy",
    "PolicyDraws",
    "Population",
    "Recommendation",
    "ValueModel",
    "ValuePositive",
    "best_arm_cells",
    "best_arm_levels",
    "best_arm_overall",
    "break_even",
    "break_even_draws",
    "break_even_table",
    "compare_levels",
    "evpi",
    "evpi_values",
    "guardrail_from_dict",
    "guardrail_table",
    "group_effects",
    "group_rule_table",
    "factor_level_effects",
    "left_out",
    "linear_coefficients",
    "optimal_policy",
    "parse_assumption",
    "policy_at_level",
    "policy_table",
    "policy_values",
    "recommend",
    "resolve_mix",
    "retention_guardrails",
    "retention_settings",
    "retention_value_model",
    "run_checks",
    "sensitivity",
    "sensitivity_draws",
    "sensitivity_table",
    "targeting_evpi_cells",
    "threshold_crossing",
    "treat_all",
    "treat_all_id",
    "treat_none",
    "value_of_information",
]
